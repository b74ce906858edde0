"""Hypothesis strategies shared by the plan tests: random small portfolios with quotas."""

from __future__ import annotations

from hypothesis import strategies as st

TYPES = ["g4dn.xlarge", "g6.xlarge", "g5.xlarge"]


@st.composite
def portfolios(draw, n_jobs: tuple[int, int] = (1, 4), releases: tuple[float, ...] = (0.0, 0.5, 1.0),
               requests: tuple[int, int] = (50, 60000), windows: tuple[float, ...] = (0.5, 1.0, 2.0),
               slots: tuple[float, ...] = (0.5, 1.0)):
    """Returns a plan document: ``n_jobs`` jobs of OPT-1.3B/2.7B on up to three instance types, each
    released at one of ``releases`` (h) with a window of one of ``windows`` (h), ``requests`` requests;
    instance quotas of 1-3 on some of the types; a slot length from ``slots`` (h)."""
    jobs = []
    for k in range(draw(st.integers(*n_jobs))):
        release = draw(st.sampled_from(releases))
        jobs.append({"name": f"j{k}", "model": draw(st.sampled_from(["OPT-1.3B", "OPT-2.7B"])),
                     "num_requests": draw(st.integers(*requests)), "input_len": 128,
                     "output_len": draw(st.sampled_from([32, 64])), "batch_size": draw(st.sampled_from([16, 64, "auto"])),
                     "release_h": release, "deadline_h": release + draw(st.sampled_from(windows)),
                     "instances": draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True))})
    quota_types = draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True))
    return {"jobs": jobs, "quotas": {"instances": {t: draw(st.integers(1, 3)) for t in quota_types}},
            "startup_s": 240, "slot_h": draw(st.sampled_from(slots)) if len(slots) > 1 else slots[0],
            "offload_step": 0.5}
