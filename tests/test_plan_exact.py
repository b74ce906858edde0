"""Pruning is exact: a plan equals a brute-force optimum over every (unpruned) option.

Brute force, for one job without quotas (every instance starts at the release): an instance of
option o carrying k <= u_o batches costs p_o (sigma + k tau_o) and carries k b_o requests, so the
cheapest way to carry r requests on o alone is c_o(r) = p_o (sigma i + tau_o B) with B =
ceil(r / b_o) batches on i = ceil(B / u_o) instances; the optimum over all options is the min-plus
convolution of the c_o over the requests (every split of the requests among options).
With quotas, the plan equals the MILP over every option (pruning turned off), both at a zero gap.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmopt_solver.errors import InfeasibleError
from llmopt_solver.milp.solver import Status
from llmopt_solver.plan import options as plan_options
from llmopt_solver.plan.bound import quota_free_bound_usd
from llmopt_solver.plan.input import parse_plan
from llmopt_solver.plan.options import FIT_EPS, TableCache, batches_in
from llmopt_solver.plan.run import check_plan, run_plan

TYPES = ["g4dn.xlarge", "g6.xlarge", "g5.xlarge", "g4dn.2xlarge"]
PROPS = settings(max_examples=100, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
_CACHE: dict[int, TableCache] = {}


def tables(catalog) -> TableCache:
    return _CACHE.setdefault(id(catalog), TableCache(catalog))


def unpruned(jo) -> list[tuple[float, int, float, int]]:
    """Returns (USD/h, requests per batch, batch s, batches per instance) of every usable option."""
    t, n, window_s = jo.full, jo.job.num_requests, jo.window_h * 3600.0
    ok = t.feasible & np.isfinite(t.hourly_cost_usd) & np.isfinite(t.planning_total_s)
    out = []
    for i in np.nonzero(ok)[0]:
        ts = float(t.planning_total_s[i])
        b = min(int(t.batch_size[i]), n)
        u = min(-(-n // b), batches_in(window_s, jo.startup_s, ts))
        if jo.startup_s + ts <= window_s * (1 + FIT_EPS) and u > 0:
            out.append((float(t.hourly_cost_usd[i]), b, ts, u))
    return out


def brute_force_usd(n: int, startup_s: float, opts: list[tuple[float, int, float, int]]) -> float:
    """Returns the cheapest cost of ``n`` requests over ``opts`` (min-plus convolution), USD."""
    r = np.arange(n + 1)
    best = np.full(n + 1, np.inf)
    best[0] = 0.0
    for p, b, ts, u in opts:
        batches = -(-r // b)
        alone = p * (startup_s * -(-batches // u) + ts * batches) / 3600.0  # c_o(r)
        # best'(x) = min_{r <= x} best(x - r) + c_o(r)
        mat = best[None, :] + np.where(r[:, None] >= r[None, :], alone[np.clip(r[:, None] - r[None, :], 0, n)], np.inf)
        best = np.minimum(best, mat.min(axis=1))
    return float(best[n])


@st.composite
def single_jobs(draw):
    window = draw(st.sampled_from([0.3, 0.5, 1.0, 2.0, 6.0]))
    fixed = draw(st.sampled_from([1, 8, 32, 128, 512]))
    return fixed, {"jobs": [{"name": "a", "model": draw(st.sampled_from(["OPT-1.3B", "OPT-2.7B"])),
                      "num_requests": draw(st.integers(1, 400)), "input_len": draw(st.sampled_from([128, 512])),
                      "output_len": draw(st.sampled_from([16, 64, 256])), "batch_size": "auto",
                      "release_h": 0.0, "deadline_h": window,
                      "instances": draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=2, unique=True))}],
            "startup_s": draw(st.sampled_from([60, 240, 900])), "offload_step": 0.5}


@PROPS
@given(case=single_jobs())
def test_one_job_plan_equals_brute_force_over_every_option(catalog, case):
    fixed_b, doc = case
    plan = parse_plan(doc)
    jo = plan_options.build_job_options(catalog, plan, tables=tables(catalog))[0]
    opts = unpruned(jo)
    truth = brute_force_usd(plan.jobs[0].num_requests, jo.startup_s, opts)
    if not np.isfinite(truth):  # nothing fits: the plan must say so
        with pytest.raises(InfeasibleError):
            run_plan(plan, catalog, gap_rel=0.0, time_limit_s=20, repredict=False, tables=tables(catalog))
        return
    res = run_plan(plan, catalog, gap_rel=0.0, time_limit_s=20, repredict=False, tables=tables(catalog))
    check_plan(res, repredict=False)
    assert res.total_cost_usd == pytest.approx(truth, rel=1e-7, abs=1e-9)
    assert res.lower_bound_usd <= res.total_cost_usd + 1e-9
    assert quota_free_bound_usd(res.jobs) <= truth * (1 + 1e-9) + 1e-12  # the integral per-job bound is a bound
    # no fixed batch size beats 'auto' (each fixed plan is a sub-problem)
    fixed = {**doc, "jobs": [{**doc["jobs"][0], "batch_size": fixed_b}]}
    try:
        alt = run_plan(parse_plan(fixed), catalog, gap_rel=0.0, time_limit_s=20, repredict=False,
                       tables=tables(catalog))
    except InfeasibleError:
        return  # that batch size does not fit at all (the equality above was asserted)
    assert res.total_cost_usd <= alt.total_cost_usd * (1 + 1e-9) + 1e-12


def test_issue_example_auto_is_not_beaten_by_batch_128(catalog):
    """The audit's job: 2,100 requests of OPT-1.3B, 128 in / 16 out, window 48-52 h, AWS, quotas."""
    base = {"jobs": [{"name": "a", "model": "OPT-1.3B", "num_requests": 2100, "input_len": 128, "output_len": 16,
                      "release_h": 48, "deadline_h": 52}],
            "providers": ["aws"], "quotas": {"instances": {"g4dn.xlarge": 2, "g5.xlarge": 2, "g6.xlarge": 2}}}
    auto = run_plan(parse_plan(base), catalog, gap_rel=0.0, time_limit_s=30, tables=tables(catalog))
    fixed = {**base, "jobs": [{**base["jobs"][0], "batch_size": 128}]}
    b128 = run_plan(parse_plan(fixed), catalog, gap_rel=0.0, time_limit_s=30, tables=tables(catalog))
    assert auto.total_cost_usd <= b128.total_cost_usd * (1 + 1e-9)
    assert auto.lower_bound_usd <= b128.total_cost_usd * (1 + 1e-9)


@st.composite
def quota_portfolios(draw):
    jobs = []
    for k in range(draw(st.integers(1, 2))):
        release = draw(st.sampled_from([0.0, 0.5, 1.0]))
        jobs.append({"name": f"j{k}", "model": "OPT-1.3B", "num_requests": draw(st.integers(20, 3000)),
                     "input_len": 128, "output_len": draw(st.sampled_from([32, 128])),
                     "batch_size": draw(st.sampled_from(["auto", 32])), "release_h": release,
                     "deadline_h": release + draw(st.sampled_from([0.5, 1.0, 2.0])),
                     "instances": draw(st.lists(st.sampled_from(TYPES[:3]), min_size=1, max_size=2, unique=True))})
    quota = {t: draw(st.integers(1, 2)) for t in draw(st.lists(st.sampled_from(TYPES[:3]), min_size=1, max_size=2,
                                                               unique=True))}
    return {"jobs": jobs, "quotas": {"instances": quota}, "startup_s": 240, "slot_h": 0.5, "offload_step": 1.0}


def _keep_all(table, num_requests, startup_s, window_h, weights, **_kw):
    """Pruning turned off: every feasible option where start-up plus one batch fits."""
    ts = table.planning_total_s
    ok = table.feasible & np.isfinite(table.hourly_cost_usd) & np.isfinite(ts) & (ts > 0)
    fits = startup_s + ts <= window_h * 3600.0 * (1 + FIT_EPS)
    return np.nonzero(ok & fits)[0], int(np.count_nonzero(ok & ~fits))


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(doc=quota_portfolios())
def test_pruned_plan_equals_unpruned_milp_under_quotas(catalog, doc, monkeypatch):
    plan = parse_plan(doc)
    try:
        res = run_plan(plan, catalog, gap_rel=0.0, time_limit_s=20, repredict=False, tables=tables(catalog))
    except InfeasibleError:
        res = None
    with monkeypatch.context() as m:
        m.setattr(plan_options, "prune", _keep_all)
        try:
            full = run_plan(plan, catalog, gap_rel=0.0, time_limit_s=20, repredict=False, tables=tables(catalog))
        except InfeasibleError:
            full = None
    assert (res is None) == (full is None)  # pruning never makes a feasible plan infeasible
    if res is not None:
        assert sum(len(j) for j in full.jobs) >= sum(len(j) for j in res.jobs)
        # pruning never loses the optimum: the pruned plan is no dearer than the unpruned one, and
        # (a plan of the unpruned model too) no cheaper than its proven bound; equal when proven
        assert res.total_cost_usd <= full.total_cost_usd * (1 + 1e-7) + 1e-9
        assert res.total_cost_usd >= full.lower_bound_usd * (1 - 1e-7) - 1e-9
        if full.solve.status is Status.OPTIMAL and res.solve.status is Status.OPTIMAL:
            assert res.total_cost_usd == pytest.approx(full.total_cost_usd, rel=1e-7, abs=1e-9)


def test_cbc_closes_the_gap_on_a_plan_of_a_few_cents(catalog, monkeypatch):
    """Regression: CBC's default cutoff increment (1e-4 USD) let it prove "optimal" a $0.08296 plan
    whose optimum is $0.08291 (found by the pruned model and by HiGHS on the unpruned one)."""
    job = {"model": "OPT-1.3B", "input_len": 128, "output_len": 32, "release_h": 0.5, "instances": ["g4dn.xlarge"]}
    doc = {"jobs": [{**job, "name": "j0", "num_requests": 2703, "batch_size": 32, "deadline_h": 1.5},
                    {**job, "name": "j1", "num_requests": 200, "batch_size": "auto", "deadline_h": 1.0}],
           "quotas": {"instances": {"g6.xlarge": 1, "g4dn.xlarge": 1}}, "startup_s": 240, "slot_h": 0.5,
           "offload_step": 1.0}
    plan = parse_plan(doc)
    res = run_plan(plan, catalog, gap_rel=0.0, time_limit_s=60, repredict=False, tables=tables(catalog))
    monkeypatch.setattr(plan_options, "prune", _keep_all)
    full = run_plan(plan, catalog, gap_rel=0.0, time_limit_s=60, repredict=False, tables=tables(catalog))
    # HiGHS (its own tolerances, no cutoff increment) on the unpruned model is the reference.
    ref = run_plan(plan, catalog, solver="highs", gap_rel=0.0, time_limit_s=60, repredict=False, tables=tables(catalog))
    assert full.total_cost_usd == pytest.approx(ref.total_cost_usd, rel=1e-9)
    # Known, open (issue 11): on the pruned model CBC still stops 3e-5 (relative) above the optimum
    # that HiGHS finds on the same pruned model, while reporting "optimal"; the default increment
    # made it 6e-4. This bounds the remaining error; it fails if the increment fix is lost.
    assert res.total_cost_usd == pytest.approx(ref.total_cost_usd, rel=1e-4)
