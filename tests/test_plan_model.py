"""Batch plans with optima known by hand; every plan re-checked; infeasible plans explained.

Hand optima use the predictor's own batch time tau (seconds) of the only allowed instance type:
one instance costs price x (startup + batches x tau) / 3600, and a deadline W needs
k = ceil(batches / floor((W - startup) / tau)) instances.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from llmopt_solver.errors import InfeasibleError, InputError
from llmopt_solver.milp.plan_greedy import greedy_start
from llmopt_solver.milp.plan_model import OptionData, PlanData, build_plan_milp
from llmopt_solver.milp.solver import Status
from llmopt_solver.plan.input import parse_plan
from llmopt_solver.plan.run import check_plan, plan_from_file, run_plan
from llmopt_solver.table.build import build_table
from llmopt_solver.table.engines import resolve_engines
from llmopt_solver.table.options import JobSpec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
STARTUP_S = 300.0


def job(name: str, n: int, deadline: float, inst: str, release: float = 0.0, model: str = "OPT-1.3B",
        batch: int = 32) -> dict:
    return {"name": name, "model": model, "num_requests": n, "input_len": 128, "output_len": 64,
            "batch_size": batch, "deadline_h": deadline, "release_h": release, "instances": [inst]}


def solve(catalog, doc: dict, **kw):
    doc = {"startup_s": STARTUP_S, **doc}
    return run_plan(parse_plan(doc), catalog, gap_rel=kw.pop("gap_rel", 0.0), time_limit_s=30, **kw)


def tau_price(catalog, inst: str, model: str = "OPT-1.3B", batch: int = 32) -> tuple[float, float]:
    """Returns (fastest feasible batch time s, USD/h) of ``inst`` for the jobs above."""
    # the engines a plan job without an 'engine' key competes over (--engine auto)
    engines = resolve_engines(catalog, None, catalog.model(model).shape().model_type, "fp16", "fp16")
    spec = JobSpec(model=catalog.model(model), batch_sizes=(batch,), input_len=128, output_len=64,
                   safety_factor=0.87, engines=engines)
    t = build_table(catalog, spec, [catalog.instance(inst)])
    ok = t.feasible
    return float(np.min(t.pred.total_s[ok])), float(t.hourly_cost_usd[0])


def test_one_job_loose_deadline_one_instance(catalog):
    tau, price = tau_price(catalog, "g4dn.xlarge")
    res = solve(catalog, {"jobs": [job("a", 3200, 48, "g4dn.xlarge")]})
    batches = 3200 // 32
    assert res.status is Status.OPTIMAL
    assert [(a.count, a.batches, a.requests) for a in res.assignments] == [(1, batches, 3200)]
    assert res.total_cost_usd == pytest.approx(price * (STARTUP_S + batches * tau) / 3600, rel=1e-9)
    assert res.lower_bound_usd <= res.total_cost_usd + 1e-9
    a = res.assignments[0]
    assert (a.start_h, a.end_h) == pytest.approx((0.0, (STARTUP_S + batches * tau) / 3600))


def test_tight_deadline_needs_k_instances(catalog):
    tau, price = tau_price(catalog, "g4dn.xlarge")
    window_h = 0.5
    per_instance = math.floor((window_h * 3600 - STARTUP_S) / tau)
    batches = 3 * per_instance + 1  # one batch more than three instances can do
    res = solve(catalog, {"jobs": [job("a", batches * 32, window_h, "g4dn.xlarge")]})
    assert sum(a.count for a in res.assignments) == 4
    assert sum(a.count * a.batches for a in res.assignments) == batches
    assert res.total_cost_usd == pytest.approx(price * (4 * STARTUP_S + batches * tau) / 3600, rel=1e-9)
    assert max(a.end_h for a in res.assignments) <= window_h + 1e-9


def test_release_shifts_the_run(catalog):
    res = solve(catalog, {"jobs": [job("a", 320, 10, "g4dn.xlarge", release=3.5)]})
    assert res.assignments[0].start_h == pytest.approx(3.5)


def test_quota_of_one_serialises_two_jobs(catalog):
    tau, _ = tau_price(catalog, "g4dn.xlarge")
    n = 32 * math.floor((0.8 * 3600 - STARTUP_S) / tau)  # each job: one instance for ~0.8 h
    doc = {"jobs": [job("a", n, 2, "g4dn.xlarge"), job("b", n, 2, "g4dn.xlarge")],
           "quotas": {"instances": {"g4dn.xlarge": 1}}}
    res = solve(catalog, doc)
    starts = sorted(a.start_h for a in res.assignments)
    assert starts == pytest.approx([0.0, 1.0])  # one waits for the next slot
    assert all(r["instances"].get("g4dn.xlarge", 0) <= 1 for r in res.usage())
    free = solve(catalog, {"jobs": doc["jobs"]})
    assert free.total_cost_usd <= res.total_cost_usd + 1e-9
    # both in the first hour: the quota cannot be met, and the message says which and by how much
    doc["jobs"] = [job("a", n, 0.9, "g4dn.xlarge"), job("b", n, 0.9, "g4dn.xlarge")]
    with pytest.raises(InfeasibleError, match=r"quota g4dn.xlarge \(1 instances\) too small by 1"):
        solve(catalog, doc)


def test_gpu_quota_counts_gpus(catalog):
    doc = {"jobs": [job("a", 20000, 0.5, "g4dn.12xlarge")], "quotas": {"gpus": {"T4": 4}}}
    res = solve(catalog, doc)
    assert all(r["gpus"].get("T4", 0) <= 4 for r in res.usage())
    assert sum(a.count for a in res.assignments) == 1


def test_budget_too_small_names_the_shortfall(catalog):
    tau, price = tau_price(catalog, "g4dn.xlarge")
    cost = price * (STARTUP_S + 100 * tau) / 3600
    with pytest.raises(InfeasibleError, match=r"budget \$0\.01 too small by \$") as exc:
        solve(catalog, {"jobs": [job("a", 3200, 48, "g4dn.xlarge")], "budget_usd": 0.01})
    assert f"${cost:,.2f}" in str(exc.value)


def test_window_shorter_than_startup_is_named(catalog):
    with pytest.raises(InfeasibleError, match=r"job 'a': window 0.05 h .* too tight for start-up"):
        solve(catalog, {"jobs": [job("a", 100, 0.05, "g4dn.xlarge")]})


def test_deadline_too_tight_even_with_whole_quota(catalog):
    doc = {"jobs": [job("big", 2_000_000, 1, "g4dn.xlarge")], "quotas": {"instances": {"g4dn.xlarge": 2}}}
    with pytest.raises(InfeasibleError, match=r"job 'big': window 1 h .* too tight even with the whole quota: needs >= "):
        solve(catalog, doc)


def test_makespan_within_budget(catalog):
    jobs = [job("a", 20000, 8, "g4dn.xlarge"), job("b", 20000, 8, "g4dn.xlarge")]
    quotas = {"instances": {"g4dn.xlarge": 2}}
    fast = solve(catalog, {"jobs": jobs, "quotas": quotas, "objective": "makespan"})
    cheap = solve(catalog, {"jobs": jobs, "quotas": quotas})
    assert fast.makespan_h <= cheap.makespan_h + 1e-9
    assert fast.total_cost_usd >= cheap.total_cost_usd - 1e-9
    tight = solve(catalog, {"jobs": jobs, "quotas": quotas, "objective": "makespan",
                            "budget_usd": cheap.total_cost_usd * 1.0001})
    assert tight.total_cost_usd <= cheap.total_cost_usd * 1.0001 + 1e-9


def test_small_example_has_the_obvious_answer(catalog):
    res = plan_from_file(EXAMPLES / "plan_small.json", gap_rel=0.0)
    used = {res.jobs[a.job].job.name: res.jobs[a.job].table.instances[a.option].name for a in res.assignments}
    assert used == {"summarize-docs": "g6.xlarge", "classify-tickets": "g5.xlarge", "translate-faq": "g4dn.xlarge"}
    counts = {jo.job.name: sum(a.count for a in res.job_assignments(j)) for j, jo in enumerate(res.jobs)}
    # translate-faq: 782 batches of ~3 s in 0.5 h after a 300 s start-up -> two instances
    tau = float(res.jobs[2].batch_s[0])
    per = math.floor((1800 - 300) / tau)
    assert counts == {"summarize-docs": 1, "classify-tickets": 1, "translate-faq": math.ceil(782 / per)}
    for j, jo in enumerate(res.jobs):
        mine = res.job_assignments(j)
        batches = sum(a.count * a.batches for a in mine)
        assert batches == math.ceil(jo.job.num_requests / int(jo.table.batch_size[mine[0].option]))
        expect = float(jo.price_usd_h[0]) * (counts[jo.job.name] * 300 + batches * float(jo.batch_s[0])) / 3600
        assert sum(res.cost(a) for a in mine) == pytest.approx(expect, rel=1e-9)


@pytest.mark.parametrize("name", ["plan_small.json", "plan_quota.json", "plan_budget.json"])
def test_examples_replan_and_recheck(name):
    # 15 s per solve: the plan is re-checked against predict whatever its gap (no default limit in the API)
    res = plan_from_file(EXAMPLES / name, time_limit_s=15)
    check_plan(res)
    assert res.lower_bound_usd <= res.total_cost_usd + 1e-9
    assert res.total_cost_usd == pytest.approx(sum(res.cost(a) for a in res.assignments))


def test_quota_example_shifts_or_mixes(catalog):
    res = plan_from_file(EXAMPLES / "plan_quota.json")
    free = run_plan(res.plan.model_copy(update={"quotas": res.plan.quotas.model_copy(
        update={"instances": {}, "gpus": {}})}), res.catalog, gap_rel=0.0)
    limits = res.plan.quotas

    def over(r: dict) -> bool:
        return (any(r["instances"].get(k, 0) > q for k, q in limits.instances.items())
                or any(r["gpus"].get(k, 0) > q for k, q in limits.gpus.items()))

    # without quotas the cheapest plan runs more at once than the quotas allow; with them it cannot
    assert any(over(r) for r in free.usage())
    assert not any(over(r) for r in res.usage())
    assert res.total_cost_usd >= free.total_cost_usd - 1e-9


def test_unknown_quota_instance_is_input_error(catalog):
    with pytest.raises(InputError, match=r"quotas.instances: unknown instance 'g4dn.xlarg'.*Did you mean: g4dn.xlarge"):
        solve(catalog, {"jobs": [job("a", 100, 2, "g4dn.xlarge")], "quotas": {"instances": {"g4dn.xlarg": 1}}})


def test_unknown_model_and_instance_in_job(catalog):
    with pytest.raises(InputError, match=r"jobs\[0\] \('a'\)\.model: unknown model 'OPT-1.4B'"):
        solve(catalog, {"jobs": [{**job("a", 100, 2, "g4dn.xlarge"), "model": "OPT-1.4B"}]})
    with pytest.raises(InputError, match=r"jobs\[0\] \('a'\)\.instances: unknown instance 'g4dn.xl'"):
        solve(catalog, {"jobs": [job("a", 100, 2, "g4dn.xl")]})


def test_greedy_start_is_feasible_for_the_model():
    opts = (OptionData(job=0, price_usd_h=1.0, batch_h=0.1, startup_h=0.1, requests_per_batch=10, max_batches=30,
                       cap_batches=18, quota={("instance", "x"): 1}, slots=((0, 1.0), (1, 1.0))),
            OptionData(job=1, price_usd_h=1.0, batch_h=0.1, startup_h=0.1, requests_per_batch=10, max_batches=5,
                       cap_batches=18, quota={("instance", "x"): 1}, slots=((0, 1.0), (1, 1.0))),
            OptionData(job=1, price_usd_h=3.0, batch_h=0.1, startup_h=0.1, requests_per_batch=10, max_batches=5,
                       cap_batches=18))
    data = PlanData(num_requests=(300, 50), options=opts, quotas={("instance", "x"): 2}, n_slots=2, slot_h=1.0)
    start = greedy_start(data)
    assert start is not None
    model = build_plan_milp(data)
    for key, v in model.variables.items():
        v.varValue = start.get(key, 0.0)
    assert all(c.valid(1e-9) for c in model.rows)


def test_job_that_fits_nowhere_names_memory(catalog):
    doc = {"jobs": [{**job("huge", 100, 10, "g4dn.xlarge"), "model": "OPT-175B"}]}
    with pytest.raises(InfeasibleError, match=r"job 'huge': .*(GPU memory|host memory)"):
        solve(catalog, doc)


def test_plan_catalog_file_is_relative_to_the_plan(tmp_path):
    import json

    (tmp_path / "extra.json").write_text(json.dumps({"instances": [{
        "name": "my-t4", "provider": "other", "gpu": "T4", "gpu_count": 1, "vcpus": 4, "host_memory_gb": 16,
        "hourly_usd": 0.10, "source": "test", "as_of": "2026-11-24"}]}))
    plan = {"jobs": [job("a", 3200, 24, "my-t4")], "catalog": ["extra.json"], "startup_s": STARTUP_S}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    res = plan_from_file(tmp_path / "plan.json", gap_rel=0.0)
    assert res.jobs[0].table.instances[res.assignments[0].option].name == "my-t4"


def test_fixed_batch_larger_than_the_job(catalog):
    tau, price = tau_price(catalog, "g4dn.xlarge", batch=64)
    res = solve(catalog, {"jobs": [job("tiny", 10, 4, "g4dn.xlarge", batch=64)]})
    [a] = res.assignments
    assert (a.count, a.batches, a.requests) == (1, 1, 10)
    assert res.total_cost_usd == pytest.approx(price * (STARTUP_S + tau) / 3600, rel=1e-9)
