"""``plan --report FILE.html``: one self-contained page with the plan, its Gantt and assumptions."""

from __future__ import annotations

import json

from llmopt_solver.plan.run import PlanResult
from llmopt_solver.predictor.uncertainty import BAND_CONFIDENCE, band_factors
from llmopt_solver.present.html import e, figure, kv_list, page, table
from llmopt_solver.present.plan import plan_json
from llmopt_solver.present.plotting import have_matplotlib, svg_inline


def _assignments(res: PlanResult) -> str:
    doc = plan_json(res)
    rows = []
    for job in doc["jobs"]:
        for a in job["assignments"]:
            rows.append((job["name"], a["engine"], a["instance"], f"{a['gpu_count']}x {a['gpu']}", a["count"],
                         f"{a['offload_ratio']:.0%}", a["batch_size"], f"{a['batch_time_s']:.1f}",
                         f"{a['start_h']:.2f}", f"{a['end_h']:.2f}", a["requests"], f"{a['cost_usd']:.2f}",
                         f"{job['deadline_h']:g}"))
    return table(("job", "engine", "instance", "GPUs", "count", "KV off", "batch", "batch s", "start h", "end h",
                  "requests", "cost $", "deadline h"), rows,
                 (False, False, False, False, True, True, True, True, True, True, True, True, True), table_id="assignments")


def _usage(res: PlanResult) -> str:
    doc = plan_json(res)
    names = sorted({n for u in doc["usage"] for n in u["instances"]})
    quotas = doc["quotas"]["instances"]
    rows = [[f"{u['start_h']:g}-{u['end_h']:g}"] +
            [f"{u['instances'].get(n, 0)}" + (f"/{quotas[n]}" if n in quotas else "") for n in names]
            for u in doc["usage"]]
    return table(["hours"] + names, rows, [True] * (1 + len(names)), table_id="usage")


def _assumptions(res: PlanResult) -> str:
    used = sorted({res.jobs[a.job].table.instances[a.option].gpu for a in res.assignments})
    insts = {res.jobs[a.job].table.instances[a.option].name: res.jobs[a.job].table.instances[a.option]
             for a in res.assignments}
    as_of = sorted({x.as_of for x in insts.values()})
    cat = res.catalog
    rows = []
    for g in used:
        u = cat.uncertainty(g)
        lo, hi = band_factors(u)
        rows.append((g, "calibrated" if g in cat.calibrated_gpus else "spec-only (parameters transferred)", u.rows,
                     f"{100 * (lo - 1):+.0f}% / {100 * (hi - 1):+.0f}%"))
    conf = res.plan.confidence
    items = [("Prices", f"{'spot' if res.plan.spot else 'on-demand'} list prices of the instances used, as of "
                        f"{', '.join(as_of) or 'n/a'}"),
             ("Billing", "per second, start-up (boot + model load) included in each assignment's interval"),
             ("Batch times", "median predictions" if conf is None else f"scheduled at the pessimistic {conf:g} quantile"),
             ("Calibration", ", ".join(f"{g}: {cat.calibrated_gpus[g]}" for g in used if g in cat.calibrated_gpus) or "none")]
    band = table(("GPU", "predictor", "measurements",
                  f"{1 - BAND_CONFIDENCE:.0%}-{BAND_CONFIDENCE:.0%} band of measured/predicted throughput - 1"),
                 rows, (False, False, True, True))
    return kv_list(items) + "<p>Accuracy band of the GPU types used (batch times scale inversely):</p>" + band


def plan_report_html(res: PlanResult, plan_file: str) -> str:
    """Returns the HTML report of a plan: inputs, totals, Gantt, assignments, usage, assumptions."""
    doc = plan_json(res)
    totals = [("Status", doc["status"]), ("Objective", doc["objective"]),
              ("Total cost", f"${doc['total_cost_usd']:,.2f}"
               + (f" (budget ${doc['budget_usd']:,.2f})" if doc["budget_usd"] is not None else "")),
              ("Lower bound", f"${doc['lower_bound_usd']:,.2f} (gap {100 * doc['gap']:.2f}%)"),
              ("Makespan", f"{doc['makespan_h']:.2f} h"),
              ("Solver", f"{doc['solver']['name']}, {doc['solver']['options']} options")]
    svg = None
    if have_matplotlib():
        from llmopt_solver.present.plot_plan import gantt_figure

        svg = svg_inline(gantt_figure(res, "--report"))
    plan_in = json.dumps(res.plan.model_dump(mode="json", exclude_none=True), indent=1, sort_keys=True)
    parts = [f"<h1>llmopt plan: {len(res.jobs)} jobs, ${doc['total_cost_usd']:,.2f}</h1>",
             f'<div class="pick-box" id="pick"><b>Plan {e(doc["status"])}</b>{kv_list(totals)}</div>',
             "<h2>Who runs where and when</h2>",
             figure(svg, "Top: assignments per instance type over time (dashed: deadlines, dotted: releases). "
                         "Bottom: instances and GPUs in use against each quota."),
             "<h2>Assignments</h2>", _assignments(res),
             "<h2>Instances running per slot (running/quota)</h2>", _usage(res),
             "<h2>Assumptions and accuracy</h2>", _assumptions(res),
             f"<h2>Input: {e(plan_file)}</h2>", f"<pre>{e(plan_in)}</pre>"]
    return page(f"llmopt plan: {plan_file}", "\n".join(parts))
