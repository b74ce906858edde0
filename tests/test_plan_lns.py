"""The MILP large-neighbourhood search (``milp/plan_lns.py``) on random small portfolios with quotas.

Laws (Hypothesis, derandomized): the plan after the LNS satisfies every row of the full MILP,
never costs more than the searched greedy plan it started from, nor less than the quota-free
bound; its figures match the plan; CBC and HiGHS sub-MILPs (same warm start, node limits, no
clock) give the same cost within the gap. Through ``run_plan`` beyond MAX_MILP_JOBS the plan
passes the plain re-check (``check_plan``) and the bound is the quota-free one, unchanged.
"""

from __future__ import annotations

from functools import partial

import plan_strategies
import pytest
from hypothesis import HealthCheck, assume, given, settings

from llmopt_solver.milp.plan_greedy import greedy_and_search, values_cost_usd
from llmopt_solver.milp.plan_lns import LnsBudget, lns
from llmopt_solver.milp.plan_model import OptionData, PlanData, build_plan_milp
from llmopt_solver.plan import run as plan_run
from llmopt_solver.plan.bound import quota_free_bound_usd
from llmopt_solver.plan.data import canonical_quotas, plan_data
from llmopt_solver.plan.input import parse_plan
from llmopt_solver.plan.options import TableCache, build_job_options
from llmopt_solver.plan.run import check_plan, run_plan
from llmopt_solver.plan.solving import solve_model
from llmopt_solver.present.plan import plan_json

PROPS = settings(max_examples=25, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
_CACHE: dict[int, TableCache] = {}


lns_portfolios = partial(plan_strategies.portfolios, n_jobs=(2, 6), releases=(0.0, 0.0, 1.0, 2.0),
                         requests=(2000, 200000), windows=(1.0, 2.0, 3.0), slots=(1.0,))


def _data(catalog, doc):
    plan = canonical_quotas(catalog, parse_plan(doc))
    jobs = build_job_options(catalog, plan, tables=_CACHE.setdefault(id(catalog), TableCache(catalog)))
    assume(all(len(jo) for jo in jobs))
    return jobs, plan_data(plan, jobs)[0]


def _rows_hold(data: PlanData, values: dict) -> bool:
    model = build_plan_milp(data)
    for key, v in model.variables.items():
        v.varValue = values.get(key, 0.0)
    return all(c.valid(1e-9) for c in model.rows)


@PROPS
@given(doc=lns_portfolios())
def test_lns_keeps_the_plan_feasible_and_never_dearer(catalog, doc):
    pytest.importorskip("highspy")
    jobs, data = _data(catalog, doc)
    pair = greedy_and_search(data)
    assume(pair is not None)
    assert pair is not None
    searched = values_cost_usd(data, pair[1])
    costs = {}
    for solver in ("cbc", "highs"):
        values, stats = lns(data, pair[1], solver, solve_model, LnsBudget(neighbourhoods=6, node_limit=50))
        cost = values_cost_usd(data, values)
        assert _rows_hold(data, values)
        assert cost <= searched * (1 + 1e-12) <= values_cost_usd(data, pair[0]) * (1 + 1e-9)
        assert cost >= quota_free_bound_usd(jobs) * (1 - 1e-9) - 1e-12
        assert stats.start_usd == pytest.approx(searched) and stats.end_usd == pytest.approx(cost)
        assert stats.improved <= stats.tried <= 6 and (stats.improved > 0) == (cost < searched * (1 - 1e-9))
        costs[solver] = cost
    assert costs["cbc"] == pytest.approx(costs["highs"], rel=0.005)


def test_lns_frees_a_slot_by_moving_a_job():
    # Quota x: 1 instance per 1-h slot, 2 slots. In the start, job 0 holds x in slot 0 although it
    # could run in slot 1; job 1 can only use slot 0 and pays 3x on the quota-free option. The
    # neighbourhood of job 1 (the most regret) holds job 0; its sub-MILP moves job 0 to slot 1.
    def opt(job, price, timed_slots, quota):
        return OptionData(job=job, price_usd_h=price, batch_h=0.25, startup_h=0.0, requests_per_batch=10,
                          max_batches=2, cap_batches=4, quota=quota, slots=timed_slots)
    x = {("instance", "x"): 1}
    data = PlanData(num_requests=(20, 20), quotas=dict(x), n_slots=2, slot_h=1.0, options=(
        opt(0, 1.0, ((0, 1.0), (1, 1.0)), x), opt(0, 9.0, (), {}),
        opt(1, 1.0, ((0, 1.0),), x), opt(1, 3.0, (), {})))
    start = {("m", 0): 2, ("n", 0, 0): 1, ("s", 0, 0): 1, ("m", 3): 2, ("k", 3): 1}
    assert _rows_hold(data, start)
    for solver in ("cbc", "highs"):
        if solver == "highs":
            pytest.importorskip("highspy")
        values, stats = lns(data, start, solver, solve_model)
        assert stats.tried == stats.improved == 1
        assert values_cost_usd(data, values) == pytest.approx(1.0) and values_cost_usd(data, start) == pytest.approx(2.0)
        assert values[("n", 0, 1)] == 1 and values[("n", 2, 0)] == 1 and _rows_hold(data, values)


def test_beyond_the_milp_limit_the_lns_plan_passes_the_recheck(catalog, monkeypatch):
    doc = {"jobs": [{"name": f"j{k}", "model": "OPT-1.3B", "num_requests": 20000 + 7000 * k, "input_len": 128,
                     "output_len": 32, "batch_size": "auto", "release_h": k % 2, "deadline_h": 2 + k % 2,
                     "instances": ["g4dn.xlarge", "g5.xlarge", "g6.xlarge"]} for k in range(6)],
           "quotas": {"instances": {"g4dn.xlarge": 1, "g6.xlarge": 1}}, "startup_s": 240, "offload_step": 0.5}
    monkeypatch.setattr(plan_run, "MAX_MILP_JOBS", 2)
    for solver in ("cbc", "highs"):
        res = run_plan(parse_plan(doc), catalog, time_limit_s=20, gap_rel=0.0, repredict=False, solver=solver)
        check_plan(res, repredict=False)
        assert res.lns is not None and res.lns.tried > 0 and res.greedy_usd is not None
        assert res.total_cost_usd <= res.lns.start_usd * (1 + 1e-9) <= res.greedy_usd * (1 + 1e-9)
        assert res.lower_bound_usd == pytest.approx(min(quota_free_bound_usd(res.jobs), res.total_cost_usd))
        assert plan_json(res)["solver"]["lns"]["neighbourhoods"] == res.lns.tried
