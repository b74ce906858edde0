"""The plain-Python re-check of a plan (``check_plan``): no solver, no model, only the rules."""

from __future__ import annotations

from llmopt_solver.errors import SolverError
from llmopt_solver.optimize import recheck
from llmopt_solver.plan.data import TIME_EPS_H, quota_limits
from llmopt_solver.plan.result import PlanResult
from llmopt_solver.table.build import BuildMemo

COST_EPS_USD = 1e-6


def check_plan(res: PlanResult, repredict: bool = True) -> None:
    """Re-checks a plan in plain Python; raises SolverError naming the first violation.

    Requests covered, release and deadline, run length = start-up + batches x batch time, quotas
    in every slot, budget, and (``repredict``) each option's batch time against the predictor.
    """
    plan, jobs = res.plan, res.jobs
    for j, jo in enumerate(jobs):
        got = sum(a.requests for a in res.job_assignments(j))
        if got != jo.job.num_requests:
            raise SolverError(f"re-check failed: {jo.label}: {got} requests planned of {jo.job.num_requests}.")
    seen: set[tuple[int, int]] = set()
    memo = BuildMemo()  # the re-check's own hardware arrays, shared across its re-predictions only
    for a in res.assignments:
        jo = jobs[a.job]
        ts = float(jo.batch_s[a.option])
        b = int(jo.requests_per_batch[a.option])
        if a.start_h < jo.job.release_h - TIME_EPS_H or a.end_h > jo.job.deadline_h + TIME_EPS_H:
            raise SolverError(f"re-check failed: {jo.label}: run {a.start_h:.4f}-{a.end_h:.4f} h outside its window.")
        if abs((a.end_h - a.start_h) * 3600.0 - (jo.startup_s + a.batches * ts)) > 1e-6 * max(1.0, a.end_h * 3600):
            raise SolverError(f"re-check failed: {jo.label}: run length is not start-up + batches x batch time.")
        if a.requests > a.count * a.batches * b or a.requests <= a.count * (a.batches - 1) * b:
            raise SolverError(f"re-check failed: {jo.label}: {a.requests} requests do not match {a.count} x {a.batches} batches of {b}.")
        if repredict and (a.job, a.option) not in seen:
            seen.add((a.job, a.option))
            recheck(res.catalog, jo.table, a.option, memo)
    limits = quota_limits(plan)
    for row in res.usage():
        for name, c in row["instances"].items():
            q = limits.get(("instance", name))
            if q is not None and c > q:
                raise SolverError(f"re-check failed: quota {name}: {c} running in slot {row['slot']} > {q}.")
        for name, c in row["gpus"].items():
            q = limits.get(("gpu", name))
            if q is not None and c > q:
                raise SolverError(f"re-check failed: GPU quota {name}: {c} GPUs in slot {row['slot']} > {q}.")
    if plan.budget_usd is not None and res.total_cost_usd > plan.budget_usd + COST_EPS_USD:
        raise SolverError(f"re-check failed: cost ${res.total_cost_usd:.2f} exceeds the budget ${plan.budget_usd:.2f}.")
