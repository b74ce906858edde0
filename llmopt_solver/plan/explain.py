"""Why a plan is infeasible: which jobs and which constraints (window, quota, budget), by how much."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from llmopt_solver.diagnose import diagnose
from llmopt_solver.milp.plan_model import OptionData, QuotaKey, build_plan_milp, option_limit
from llmopt_solver.milp.solver import SolverName, Status
from llmopt_solver.plan.data import plan_data, quota_limits
from llmopt_solver.plan.input import PlanFile
from llmopt_solver.plan.options import FIT_EPS, JobOptions, batches_in
from llmopt_solver.plan.solving import solve_model


def _no_option_reason(jo: JobOptions) -> str:
    """Returns why a job has no usable option: nothing fits at all, or not one batch in its window."""
    t = jo.full
    ok = t.feasible & np.isfinite(t.hourly_cost_usd) & np.isfinite(t.planning_total_s)
    if not ok.any():
        return f"{jo.label}: {diagnose(t).message}"
    fastest = float(np.min(t.planning_total_s[ok]))
    need_h = (jo.startup_s + fastest) / 3600.0
    return (f"{jo.label}: window {jo.window_h:g} h (release {jo.job.release_h:g} h, deadline {jo.job.deadline_h:g} h) "
            f"too tight for start-up ({jo.startup_s / 60:.1f} min) plus one batch ({fastest:.3g} s): needs >= {need_h:.3g} h")


def _needed_window_h(plan: PlanFile, jo: JobOptions) -> float | None:
    """Returns a lower bound on the window job ``jo`` needs alone with every quota to itself (h).

    Each option runs at its own quota limit at once (shared GPU quotas counted for each option),
    so the capacity is overestimated and the time underestimated. None if some option is unlimited.
    """
    limits = quota_limits(plan)
    rows = []
    for r in range(len(jo)):
        od = OptionData(job=0, price_usd_h=0, batch_h=1, startup_h=0, requests_per_batch=1,
                        max_batches=10**12, cap_batches=1, quota=jo.quota[r])
        u = option_limit(od, limits)
        if not jo.quota[r]:
            return None
        rows.append((u, int(jo.requests_per_batch[r]), float(jo.batch_s[r])))

    def capacity(window_h: float) -> int:
        return sum(u * b * batches_in(window_h * 3600, jo.startup_s, ts) for u, b, ts in rows)

    lo, hi = 0.0, 1.0
    while capacity(hi) < jo.job.num_requests:
        hi *= 2
        if hi > 1e6:
            return math.inf
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if capacity(mid) >= jo.job.num_requests else (mid, hi)
    return hi


def explain_infeasible(plan: PlanFile, jobs: list[JobOptions], solver: SolverName,
                       time_limit_s: float | None) -> list[str]:
    """Returns the reasons (one per job or constraint) that cannot be met, and by how much."""
    reasons = []
    for jo in jobs:
        if len(jo) == 0:
            reasons.append(_no_option_reason(jo))
            continue
        need = _needed_window_h(plan, jo)
        if need is not None and need > jo.window_h * (1 + FIT_EPS):
            what = "quota is 0 for all its options" if math.isinf(need) else f"needs >= {need:.2f} h"
            reasons.append(f"{jo.label}: window {jo.window_h:g} h (deadline {jo.job.deadline_h:g} h) too tight even "
                           f"with the whole quota: {what}")
    if reasons:
        return reasons
    if plan.budget_usd is not None:
        data, _ = plan_data(plan, jobs, budget=False)
        res = solve_model(build_plan_milp(data, "cost"), solver, time_limit_s, 1e-4)
        if res.has_solution and res.objective is not None:
            lb = res.best_bound if res.best_bound is not None else res.objective
            if lb > plan.budget_usd:
                return [f"budget ${plan.budget_usd:,.2f} too small by ${lb - plan.budget_usd:,.2f}: the cheapest plan "
                        f"costs ${res.objective:,.2f}" + ("" if res.status is Status.OPTIMAL else f" (proven >= ${lb:,.2f})")]
            return [f"budget ${plan.budget_usd:,.2f}: the cheapest plan found costs ${res.objective:,.2f} (proven >= ${lb:,.2f})",
                    "the solver found none within the budget in time"]
    return _explain_quotas(plan, jobs, solver, time_limit_s)


def _explain_quotas(plan: PlanFile, jobs: list[JobOptions], solver: SolverName, time_limit_s: float | None) -> list[str]:
    data, index = plan_data(plan, jobs, budget=False)
    model = build_plan_milp(data, "elastic")
    res = solve_model(model, solver, time_limit_s, 1e-4)
    if not res.has_solution:
        return ["no plan meets the deadlines within the quotas (the solver found no relaxation either)"]
    short: dict[QuotaKey, list[tuple[int, float]]] = defaultdict(list)
    for key, v in res.values.items():
        if key[0] == "e" and v > 1e-6:
            short[key[1]].append((key[2], v))
    limits = quota_limits(plan)
    parts = []
    for q, rows in sorted(short.items()):
        slots = sorted(t for t, _ in rows)
        excess = max(v for _, v in rows)
        users = sorted({jobs[index[o][0]].job.name for o, od in enumerate(data.options)
                        if q in od.quota and any(res.values.get(("n", o, t), 0) > 0.5 for t in slots)})
        unit = "instances" if q[0] == "instance" else "GPUs"
        parts.append(f"quota {q[1]} ({limits[q]} {unit}) too small by {math.ceil(excess - 1e-6)} {unit} in hours "
                     f"{slots[0] * plan.slot_h:g}-{(slots[-1] + 1) * plan.slot_h:g} for jobs {', '.join(users)}")
    if not parts:
        return ["no plan meets every deadline within the quotas"]
    # one reason per quota; the first says what they share, the last how to fix them
    parts[0] = "the jobs fit alone but not together: " + parts[0]
    parts[-1] += " (raise the quota or loosen deadlines)"
    return parts
