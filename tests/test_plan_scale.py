"""Plans at scale: the searched greedy plan, the quota-free bound, the no-MILP paths.

Laws checked on random small portfolios with quotas (Hypothesis, derandomized):
- the quota-free bound never exceeds the optimum (solved at a zero gap) — it bounds the problem;
- a plan never costs more than the greedy plan it started from, nor less than its lower bound;
- the greedy plan after the search is feasible for the MILP and never dearer than before it;
- CBC and HiGHS agree on the optimum.
Beyond MAX_MILP_JOBS no MILP is built: the plan is the searched greedy one, with its honest gap.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from plan_strategies import portfolios

from llmopt_solver.errors import InfeasibleError, InputError
from llmopt_solver.milp.plan_greedy import Greedy, greedy_placements, improve, plan_values, values_cost_usd
from llmopt_solver.milp.plan_model import build_plan_milp
from llmopt_solver.plan import run as plan_run
from llmopt_solver.plan.bound import quota_free_bound_usd
from llmopt_solver.plan.data import canonical_quotas, plan_data
from llmopt_solver.plan.input import MAX_MILP_JOBS, parse_plan
from llmopt_solver.plan.options import TableCache, build_job_options
from llmopt_solver.plan.run import check_plan, run_plan
from llmopt_solver.present.plan import plan_json

PROPS = settings(max_examples=40, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
_CACHE: dict[int, TableCache] = {}


def tables(catalog) -> TableCache:
    return _CACHE.setdefault(id(catalog), TableCache(catalog))


def solve(catalog, doc, **kw):
    return run_plan(parse_plan(doc), catalog, time_limit_s=20, repredict=False, tables=tables(catalog), **kw)


@PROPS
@given(doc=portfolios())
def test_bound_and_greedy_bracket_the_optimum(catalog, doc):
    try:
        exact = solve(catalog, doc, gap_rel=0.0)
    except InfeasibleError:
        assume(False)
        return
    check_plan(exact, repredict=False)
    assert quota_free_bound_usd(exact.jobs) <= exact.total_cost_usd * (1 + 1e-9) + 1e-12
    assert exact.lower_bound_usd <= exact.total_cost_usd + 1e-9
    if exact.greedy_usd is not None:
        assert exact.total_cost_usd <= exact.greedy_usd * (1 + 1e-9) + 1e-12
    for res in (exact,):  # the label says which bound is quoted: the quota-free one bounds the problem
        free = quota_free_bound_usd(res.jobs)
        solver_bound = res.solve.best_bound if res.solve.best_bound is not None else 0.0
        if free >= solver_bound:
            assert res.bound_of == "problem"
        assert res.solve.solver.startswith(plan_run.NO_SOLVER) == (res.model_size["variables"] == 0)
    fast = solve(catalog, doc, gap_rel=0.005)
    assert exact.total_cost_usd * (1 - 1e-9) - 1e-12 <= fast.total_cost_usd
    assert fast.total_cost_usd <= max(fast.lower_bound_usd, 1e-12) / (1 - 0.005) * (1 + 1e-9) + 1e-12
    if fast.greedy_usd is not None:
        assert fast.total_cost_usd <= fast.greedy_usd * (1 + 1e-9) + 1e-12


@PROPS
@given(doc=portfolios())
def test_search_keeps_the_plan_feasible_and_never_dearer(catalog, doc):
    plan = canonical_quotas(catalog, parse_plan(doc))
    jobs = build_job_options(catalog, plan, tables=tables(catalog))
    assume(all(len(jo) for jo in jobs))
    data, _ = plan_data(plan, jobs)
    g = Greedy(data)
    first = greedy_placements(g)
    assume(first is not None)
    assert first is not None
    searched = improve(g, first)
    before, after = values_cost_usd(data, plan_values(data, first)), values_cost_usd(data, plan_values(data, searched))
    assert after <= before * (1 + 1e-12)
    assert after >= quota_free_bound_usd(jobs) * (1 - 1e-9) - 1e-12
    model = build_plan_milp(data)
    values = plan_values(data, searched)
    for key, v in model.variables.items():
        v.varValue = values.get(key, 0.0)
    assert all(c.valid(1e-9) for c in model.rows)


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(doc=portfolios())
def test_cbc_and_highs_agree_on_the_optimum(catalog, doc):
    pytest.importorskip("highspy")
    try:
        cbc = solve(catalog, doc, gap_rel=0.0)
    except InfeasibleError:
        assume(False)
        return
    highs = solve(catalog, doc, gap_rel=0.0, solver="highs")
    assert highs.total_cost_usd == pytest.approx(cbc.total_cost_usd, rel=1e-6, abs=1e-6)


def test_beyond_the_milp_limit_the_searched_plan_is_returned_with_its_gap(catalog, monkeypatch):
    doc = {"jobs": [{"name": f"j{k}", "model": "OPT-1.3B", "num_requests": 20000 + 1000 * k, "input_len": 128,
                     "output_len": 32, "batch_size": "auto", "deadline_h": 2, "instances": ["g4dn.xlarge", "g5.xlarge"]}
                    for k in range(3)],
           "quotas": {"instances": {"g4dn.xlarge": 1}}, "startup_s": 240, "offload_step": 0.5}
    monkeypatch.setattr(plan_run, "MAX_MILP_JOBS", 2)
    res = solve(catalog, doc, gap_rel=0.0)
    check_plan(res, repredict=False)
    assert res.model_size["variables"] == 0  # no MILP built
    # what ran, not the solver asked for: the searched plan, and MILP neighbourhoods (plan_lns) if any was solved
    assert plan_json(res)["solver"]["name"] == "greedy+search" + ("" if res.lns is None else "+lns-cbc")
    assert res.lower_bound_usd == pytest.approx(min(quota_free_bound_usd(res.jobs), res.total_cost_usd))
    assert res.gap == pytest.approx((res.total_cost_usd - res.lower_bound_usd) / res.total_cost_usd, abs=1e-9)
    with pytest.raises(InfeasibleError, match=r"budget \$0.01 too small"):
        solve(catalog, {**doc, "budget_usd": 0.01}, gap_rel=0.0)


def test_makespan_beyond_the_milp_limit_is_bad_input():
    jobs = [{"name": f"j{k}", "model": "OPT-1.3B", "num_requests": 10, "input_len": 8, "output_len": 8,
             "deadline_h": 1} for k in range(MAX_MILP_JOBS + 1)]
    with pytest.raises(InputError, match=rf"jobs: {MAX_MILP_JOBS + 1} jobs with objective 'makespan'.*allowed: at most"):
        parse_plan({"jobs": jobs, "objective": "makespan"})
    parse_plan({"jobs": jobs})  # the cost objective takes them


@pytest.mark.parametrize("batch", [1, 32, 1024])
def test_fixed_batch_table_cut_from_auto_equals_its_own_build(catalog, batch):
    import dataclasses

    import numpy as np

    from llmopt_solver.plan.options import job_spec
    from llmopt_solver.selection import select_instances
    from llmopt_solver.table.build import build_table

    doc = {"jobs": [{"name": "a", "model": "OPT-2.7B", "num_requests": 1000, "input_len": 512, "output_len": 64,
                     "batch_size": "auto", "deadline_h": 4},
                    {"name": "b", "model": "OPT-2.7B", "num_requests": 1000, "input_len": 512, "output_len": 64,
                     "batch_size": batch, "deadline_h": 4}], "offload_step": 0.5}
    plan = parse_plan(doc)
    pool = select_instances(catalog, None, None, None)
    cache = TableCache(catalog)
    cache.want(job_spec(catalog, catalog.model("OPT-2.7B"), plan.jobs[0], plan, "a"), pool)
    spec = job_spec(catalog, catalog.model("OPT-2.7B"), plan.jobs[1], plan, "b")
    cut, built = cache.get(spec, pool), build_table(catalog, spec, pool)
    assert len(cache) == 2 and len(cut) == len(built) > 0 and cut.job == spec
    for f in dataclasses.fields(built):
        a, b = getattr(cut, f.name), getattr(built, f.name)
        if isinstance(a, np.ndarray):
            assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), f.name
    for f in dataclasses.fields(built.pred):
        assert np.array_equal(getattr(cut.pred, f.name), getattr(built.pred, f.name), equal_nan=True), f.name


def _rows_hold(data, values) -> bool:
    model = build_plan_milp(data)
    for key, v in model.variables.items():
        v.varValue = values.get(key, 0.0)
    return all(c.valid(1e-9) for c in model.rows)


def test_split_free_replaces_a_nearly_empty_last_instance():
    from llmopt_solver.milp.plan_model import OptionData, PlanData
    from llmopt_solver.milp.solver import Status

    # A: 9 of its 10 batches per instance, so alone 2 instances: 10 (0.5 x 2 + 0.1 x 10) = $20;
    # B alone: 2 (0.5 + 0.1 x 100) = $21; A's full instance + B for the last 100 requests: 14 + 3 = $17
    a = OptionData(job=0, price_usd_h=10.0, batch_h=0.1, startup_h=0.5, requests_per_batch=100, max_batches=10, cap_batches=9)
    b = OptionData(job=0, price_usd_h=2.0, batch_h=0.1, startup_h=0.5, requests_per_batch=10, max_batches=100, cap_batches=100)
    data = PlanData(num_requests=(1000,), options=(a, b), quotas={}, n_slots=1, slot_h=1.0)
    g = Greedy(data)
    first = greedy_placements(g)
    assert first is not None and first[0].cost_usd == pytest.approx(20.0)
    searched = improve(g, first)
    values = plan_values(data, searched)
    assert values_cost_usd(data, values) == pytest.approx(17.0)
    assert _rows_hold(data, values)
    from llmopt_solver.plan.solving import solve_model

    best = solve_model(build_plan_milp(data), "cbc", 20, 0.0)
    assert best.status is Status.OPTIMAL and best.objective == pytest.approx(17.0)


def test_split_uses_the_quota_left_for_part_of_a_job():
    from llmopt_solver.milp.plan_model import OptionData, PlanData

    # job 0 takes the only quota instance of A in slot 0 and 1 first (it gains most); job 1 finds A
    # busy in slots 0-1 and free in 2-3: its cheap part there, the rest on the dearer free option B
    slots = ((0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0))
    q = {("instance", "A"): 1}
    a0 = OptionData(job=0, price_usd_h=1.0, batch_h=0.1, startup_h=0.1, requests_per_batch=10, max_batches=18,
                    cap_batches=39, quota=q, slots=slots[:2])
    b0 = OptionData(job=0, price_usd_h=50.0, batch_h=0.1, startup_h=0.1, requests_per_batch=10, max_batches=18, cap_batches=39)
    a1 = OptionData(job=1, price_usd_h=1.0, batch_h=0.1, startup_h=0.1, requests_per_batch=10, max_batches=30,
                    cap_batches=39, quota=q, slots=slots)
    b1 = OptionData(job=1, price_usd_h=3.0, batch_h=0.1, startup_h=0.1, requests_per_batch=10, max_batches=30, cap_batches=39)
    data = PlanData(num_requests=(180, 300), options=(a0, b0, a1, b1), quotas=q, n_slots=4, slot_h=1.0)
    g = Greedy(data)
    first = greedy_placements(g)
    assert first is not None
    before = values_cost_usd(data, plan_values(data, first))
    searched = improve(g, first)
    values = plan_values(data, searched)
    assert values_cost_usd(data, values) < before * (1 - 1e-9)
    assert searched[1].rest is not None and _rows_hold(data, values)


def test_bound_label_names_the_quota_free_bound_when_it_is_quoted(monkeypatch):
    from pathlib import Path

    from llmopt_solver.plan.run import plan_from_file

    path = Path(__file__).resolve().parent.parent / "examples" / "plan_quota.json"
    res = plan_from_file(path, gap_rel=0.0, time_limit_s=30, repredict=False)
    assert res.model_size["variables"] > 0 and res.solve.best_bound is not None  # the MILP ran
    assert res.bound_of == "slotted model"  # its bound, above the quota-free one, is quoted
    solver_bound = res.solve.best_bound
    calls = []

    def free_bound(jobs):  # 0 where the MILP is decided on (so it runs), then as large as the solver's
        calls.append(1)
        return 0.0 if len(calls) == 1 else solver_bound

    monkeypatch.setattr(plan_run, "quota_free_bound_usd", free_bound)
    again = plan_from_file(path, gap_rel=0.0, time_limit_s=30, repredict=False)
    assert again.model_size["variables"] > 0 and again.bound_of == "problem"
