"""Property tests of batch plans (few examples, small catalogs via allow-lists, exact pruning).

- a returned plan re-checks in plain Python and never costs less than its reported lower bound;
- loosening a deadline or raising a quota never raises the optimum (solved to a zero gap).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmopt_solver.errors import InfeasibleError
from llmopt_solver.plan.run import check_plan, run_plan
from llmopt_solver.plan.input import parse_plan

TYPES = ["g4dn.xlarge", "g6.xlarge", "g5.xlarge"]
PROPS = settings(max_examples=15, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@st.composite
def plans(draw):
    n_jobs = draw(st.integers(1, 3))
    jobs = []
    for k in range(n_jobs):
        release = draw(st.sampled_from([0.0, 0.5, 1.0, 2.0]))
        jobs.append({
            "name": f"j{k}", "model": draw(st.sampled_from(["OPT-1.3B", "OPT-2.7B"])),
            "num_requests": draw(st.integers(50, 40000)), "input_len": 128,
            "output_len": draw(st.sampled_from([32, 64])), "batch_size": draw(st.sampled_from([16, 32])),
            "release_h": release, "deadline_h": release + draw(st.sampled_from([0.5, 1.0, 1.5, 3.0])),
            "instances": draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True)),
        })
    quota_types = draw(st.lists(st.sampled_from(TYPES), max_size=2, unique=True))
    return {"jobs": jobs, "quotas": {"instances": {t: draw(st.integers(0, 3)) for t in quota_types}},
            "startup_s": 240, "slot_h": draw(st.sampled_from([0.5, 1.0])), "prune": "exact",
            "offload_step": 0.25}


def optimum(catalog, doc):
    """Returns the optimal plan, or None if infeasible."""
    try:
        return run_plan(parse_plan(doc), catalog, gap_rel=0.0, time_limit_s=20, repredict=False)
    except InfeasibleError:
        return None


@PROPS
@given(doc=plans())
def test_plan_rechecks_and_respects_its_bound(catalog, doc):
    res = optimum(catalog, doc)
    if res is None:
        return
    check_plan(res)
    assert res.total_cost_usd >= res.lower_bound_usd - 1e-9
    assert res.lower_bound_usd > 0


@PROPS
@given(doc=plans(), which=st.integers(0, 2), extra_h=st.sampled_from([0.5, 1.0, 4.0]))
def test_looser_deadline_never_costs_more(catalog, doc, which, extra_h):
    base = optimum(catalog, doc)
    j = doc["jobs"][which % len(doc["jobs"])]
    looser = {**doc, "jobs": [dict(x) for x in doc["jobs"]]}
    looser["jobs"][which % len(doc["jobs"])]["deadline_h"] = j["deadline_h"] + extra_h
    res = optimum(catalog, looser)
    if base is not None:
        assert res is not None
        assert res.total_cost_usd <= base.total_cost_usd * (1 + 1e-9) + 1e-9


@PROPS
@given(doc=plans(), extra=st.integers(1, 3))
def test_higher_quota_never_costs_more(catalog, doc, extra):
    quotas = doc["quotas"]["instances"]
    if not quotas:
        quotas = {TYPES[0]: 0}
        doc = {**doc, "quotas": {"instances": quotas}}
    base = optimum(catalog, doc)
    raised = {**doc, "quotas": {"instances": {k: v + extra for k, v in quotas.items()}}}
    res = optimum(catalog, raised)
    if base is not None:
        assert res is not None
        assert res.total_cost_usd <= base.total_cost_usd * (1 + 1e-9) + 1e-9


@pytest.mark.parametrize("seed", [0, 1])
def test_random_portfolio_rechecks(catalog, seed):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from plan_portfolio import portfolio

    doc = portfolio(12, seed=seed)
    res = run_plan(parse_plan(doc), catalog, gap_rel=0.01, time_limit_s=20)
    check_plan(res)
    assert res.total_cost_usd >= res.lower_bound_usd - 1e-9
    assert res.gap <= 0.01 + 1e-9 or res.status.value == "feasible-with-gap"
