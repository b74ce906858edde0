"""Presenters for ``llmopt plan``: a text report (per-job table, totals, per-slot usage) and JSON."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from llmopt_solver.plan.data import quota_limits
from llmopt_solver.plan.result import Assignment, PlanResult
from llmopt_solver.present.console import TextTable, fill


def _r(x: float, nd: int = 6) -> float:
    return round(float(x), nd)


def assignment_doc(res: PlanResult, a: Assignment) -> dict[str, Any]:
    """Returns one assignment as its JSON record (times in hours, batch time in seconds)."""
    jo = res.jobs[a.job]
    t, i = jo.table, a.option
    option = t.record(i)  # the same option record as `llmopt solve` / `predict`
    doc = {k: option[k] for k in ("instance", "provider", "gpu", "gpu_count", "engine", "offload_ratio", "offload_mode",
                                  "weight_offload_ratio", "batch_size", "hourly_cost_usd")}
    doc.update({
        "count": a.count,
        "start_h": _r(a.start_h),
        "end_h": _r(a.end_h),
        "batches_per_instance": a.batches,
        "requests": a.requests,
        "batch_time_s": option["total_s"],
        "planned_batch_time_s": _r(t.planning_total_s[i], 9),  # = batch_time_s unless confidence is set
        "startup_s": _r(jo.startup_s),
        "instance_hours": _r(a.count * (a.end_h - a.start_h)),
        "cost_usd": _r(res.cost(a)),
    })
    return doc


def plan_json(res: PlanResult) -> dict[str, Any]:
    """Returns the ``llmopt plan --json`` document (issue 3's keys, plus model size and inputs)."""
    plan = res.plan
    jobs = []
    for j, jo in enumerate(res.jobs):
        mine = res.job_assignments(j)
        jobs.append({
            "name": jo.job.name,
            "model": jo.card.name,
            "num_requests": jo.job.num_requests,
            "release_h": jo.job.release_h,
            "deadline_h": jo.job.deadline_h,
            "cost_usd": _r(sum(res.cost(a) for a in mine)),
            "finish_h": _r(max((a.end_h for a in mine), default=jo.job.release_h)),
            "assignments": [assignment_doc(res, a) for a in mine],
        })
    usage = []
    for row in res.usage():
        if row["instances"]:
            usage.append({"slot": row["slot"], "start_h": _r(row["start_h"]), "end_h": _r(row["end_h"]),
                          "instances": row["instances"], "gpus": row["gpus"]})
    s = res.solve
    return {
        "status": str(res.status),
        "objective": plan.objective,
        "total_cost_usd": _r(res.total_cost_usd),
        "lower_bound_usd": _r(res.lower_bound_usd),
        "lower_bound_of": res.bound_of,
        "gap": _r(res.gap),
        "makespan_h": _r(res.makespan_h),
        "budget_usd": plan.budget_usd,
        "slot_h": plan.slot_h,
        "quotas": {"instances": dict(sorted(plan.quotas.instances.items())),
                   "gpus": dict(sorted(plan.quotas.gpus.items()))},
        "jobs": jobs,
        "usage": usage,
        "solver": {
            "name": s.solver,
            "status": str(s.status),
            "wall_s": _r(sum(p.wall_s for p in res.phases) or s.wall_s, 3),
            "build_s": _r(res.build_s, 3),
            "mip_gap": None if s.gap is None else _r(s.gap),
            "start_usd": None if res.start_usd is None else _r(res.start_usd),
            "greedy_usd": None if res.greedy_usd is None else _r(res.greedy_usd),
            "options": sum(len(jo) for jo in res.jobs),
            **res.model_size,
            **({} if res.lns is None else {"lns": {
                "searched_usd": _r(res.lns.start_usd), "lns_usd": _r(res.lns.end_usd), "neighbourhoods": res.lns.tried,
                "improved": res.lns.improved, "wall_s": _r(res.lns.wall_s, 3), "stopped_by_time": res.lns.stopped_by_time}}),
        },
    }


def infeasible_json(reasons: Sequence[str]) -> dict[str, Any]:
    """Returns the ``--json`` document of a plan that cannot be met (``InfeasibleError.reasons``)."""
    return {"status": "infeasible", "reasons": list(reasons), "jobs": [], "usage": [],
            "total_cost_usd": None, "lower_bound_usd": None, "makespan_h": None}


def plan_text(res: PlanResult) -> str:
    """Returns the text report, at most TERMINAL_WIDTH columns: totals, a table of jobs, a table of
    their runs (instance-hours and start-up times in --json), and usage per slot."""
    buf = io.StringIO()
    w = buf.write
    plan, s = res.plan, res.solve
    w(f"Plan: {len(res.jobs)} jobs, objective {plan.objective}, slots of {plan.slot_h:g} h\n")
    proven = f" (within {100 * res.gap:.2f}% of the lower bound; --gap stops the search)" if res.gap > 1e-9 else ""
    w(fill(f"Status: {res.status}{proven}") + "\n")
    budget = f" (budget ${plan.budget_usd:,.2f})" if plan.budget_usd is not None else ""
    w(f"Total cost: ${res.total_cost_usd:,.2f}{budget}\n")
    scope = "" if res.bound_of == "problem" else (f"; of the slotted model: quota runs start on {plan.slot_h:g} h "
                                                  "slots and count in every slot they touch")
    w(fill(f"Lower bound: ${res.lower_bound_usd:,.2f} (gap {100 * res.gap:.2f}%{scope})") + "\n")
    w(f"Makespan: {res.makespan_h:.2f} h\n")
    size = res.model_size
    wall = sum(p.wall_s for p in res.phases) or s.wall_s
    opts = sum(len(j) for j in res.jobs)
    if size["variables"] == 0:  # plan.run._bound_first: the searched greedy plan, within the gap of the bound
        lns = "" if res.lns is None else (f" + {res.lns.improved} of {res.lns.tried} MILP neighbourhoods "
                                          f"improved ({res.lns.solver})")
        line = (f"Solver: no {'MILP' if res.lns is None else 'full MILP'}, {wall:.2f} s (build {res.build_s:.2f} s); "
                f"{opts} options; greedy plan + local search{lns}, gap to the quota-free bound")
    else:
        line = (f"Solver: {s.solver}, {wall:.2f} s (build {res.build_s:.2f} s); {opts} options, "
                f"{size['variables']} variables ({size['integer_variables']} integer), {size['constraints']} constraints")
    w(fill(line) + "\n")
    w("\nJobs\n" + jobs_table(res).render())
    w("\nRuns (# = job; one row per group of identical instances)\n" + runs_table(res).render())
    w("\nUsage per slot (running / quota)\n" + usage_table(res).render())
    return buf.getvalue()


def jobs_table(res: PlanResult) -> TextTable:
    """Returns one row per job: its model, requests, deadline, when its last run ends, and its cost."""
    t = TextTable()
    for col, just in (("#", "right"), ("job", "left"), ("model", "left"), ("requests", "right"),
                      ("deadline h", "right"), ("finish h", "right"), ("cost $", "right")):
        t.add_column(col, just)  # type: ignore[arg-type]
    for j, jo in enumerate(res.jobs):
        mine = res.job_assignments(j)
        finish_h = max((a.end_h for a in mine), default=jo.job.release_h)
        t.add_row(str(j + 1), jo.job.name, jo.card.name, str(jo.job.num_requests), f"{jo.job.deadline_h:g}",
                  f"{finish_h:.2f}", f"{sum(res.cost(a) for a in mine):.2f}")
    return t


def runs_table(res: PlanResult) -> TextTable:
    """Returns one row per assignment (``count`` identical instances running one option), by job."""
    t = TextTable()
    for col, just in (("#", "right"), ("engine", "left"), ("instance", "left"), ("count", "right"), ("KV off", "right"),
                      ("batch", "right"), ("batch s", "right"), ("start h", "right"), ("end h", "right"),
                      ("requests", "right"), ("cost $", "right")):
        t.add_column(col, just)  # type: ignore[arg-type]
    for j, jo in enumerate(res.jobs):
        for a in res.job_assignments(j):
            tb, i = jo.table, a.option
            t.add_row(str(j + 1), str(tb.engine[i]), tb.instances[i].name, str(a.count), f"{tb.offload_ratio[i]:.0%}",
                      str(int(tb.batch_size[i])), f"{tb.pred.total_s[i]:.1f}", f"{a.start_h:.2f}", f"{a.end_h:.2f}",
                      str(a.requests), f"{res.cost(a):.2f}")
    return t


def usage_table(res: PlanResult) -> TextTable:
    """Returns running instances (and GPUs under a GPU quota) per slot, as 'used/quota'."""
    limits = quota_limits(res.plan)
    rows = [r for r in res.usage() if r["instances"]]
    names = sorted({n for r in rows for n in r["instances"]})
    gpus = sorted({g for (kind, g) in limits if kind == "gpu" and any(r["gpus"].get(g) for r in rows)})
    t = TextTable()
    t.add_column("hours", "right")
    for n in names:
        t.add_column(n, "right")
    for g in gpus:
        t.add_column(f"{g} GPUs", "right")
    for r in rows:
        cells = [f"{r['start_h']:g}-{r['end_h']:g}"]
        for n in names:
            c = r["instances"].get(n, 0)
            q = limits.get(("instance", n))
            cells.append("" if not c else (f"{c}/{q}" if q is not None else str(c)))
        for g in gpus:
            c = r["gpus"].get(g, 0)
            cells.append(f"{c}/{limits[('gpu', g)]}" if c else "")
        t.add_row(*cells)
    return t
