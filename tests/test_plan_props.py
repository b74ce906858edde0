"""Property tests of batch plans (100 examples each, small catalogs via allow-lists, exact pruning).

- a returned plan re-checks in plain Python and never costs less than its reported lower bound;
  an infeasible one names the job and the window or quota that cannot be met;
- loosening a deadline or raising a quota never raises the optimum (solved to a zero gap), and
  never makes a feasible portfolio infeasible.
Option tables are shared across examples through one TableCache (same catalog).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from llmopt_solver.errors import InfeasibleError
from llmopt_solver.plan.input import parse_plan
from llmopt_solver.plan.options import TableCache
from llmopt_solver.plan.run import check_plan, run_plan

TYPES = ["g4dn.xlarge", "g6.xlarge", "g5.xlarge"]
PROPS = settings(max_examples=100, deadline=None, derandomize=True,
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


_TABLES: dict[int, TableCache] = {}


def solved(catalog, doc):
    """Returns (the optimal plan, None) or (None, the infeasibility reason)."""
    tables = _TABLES.setdefault(id(catalog), TableCache(catalog))
    try:
        return run_plan(parse_plan(doc), catalog, gap_rel=0.0, time_limit_s=20, repredict=False, tables=tables), None
    except InfeasibleError as exc:
        return None, str(exc)


def optimum(catalog, doc):
    """Returns the optimal plan, or None if infeasible."""
    return solved(catalog, doc)[0]


@PROPS
@given(doc=plans())
def test_plan_rechecks_and_respects_its_bound(catalog, doc):
    res, reason = solved(catalog, doc)
    if res is None:  # infeasible: the reason names a job of the plan and what binds
        assert any(f"'{j['name']}'" in reason for j in doc["jobs"]) or "quota" in reason, reason
        assert any(w in reason for w in ("window", "quota", "deadline", "memory", "fits")), reason
        return
    check_plan(res, repredict=False)
    assert res.total_cost_usd >= res.lower_bound_usd - 1e-9
    assert res.lower_bound_usd > 0


@PROPS
@given(doc=plans(), which=st.integers(0, 2), extra_h=st.sampled_from([0.5, 1.0, 4.0]))
def test_looser_deadline_never_costs_more(catalog, doc, which, extra_h):
    base = optimum(catalog, doc)
    assume(base is not None)
    j = doc["jobs"][which % len(doc["jobs"])]
    looser = {**doc, "jobs": [dict(x) for x in doc["jobs"]]}
    looser["jobs"][which % len(doc["jobs"])]["deadline_h"] = j["deadline_h"] + extra_h
    res = optimum(catalog, looser)
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
    assume(base is not None)
    raised = {**doc, "quotas": {"instances": {k: v + extra for k, v in quotas.items()}}}
    res = optimum(catalog, raised)
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
