"""Text for ``solve --frontier`` and ``solve --sweep-slo``: the Pareto options and the SLO sweep."""

from __future__ import annotations

import io
from typing import Any

from rich import box
from rich.table import Table

from llmopt_solver.frontier import JOB_ASSUMPTION, Frontier, SweepRow, job_cost_usd, job_time_h
from llmopt_solver.present.console import TERMINAL_WIDTH, console
from llmopt_solver.present.solve import WIDE_WIDTH, option_rows_table
from llmopt_solver.table.options import OptionTable

FRONTIER_COLUMNS = ("instance", "GPUs", "KV off", "W off", "batch", "TPS", "TPS band", "$/M tok")
JOB_COLUMNS = ("instance", "GPUs", "KV off", "batch", "TPS band")


def frontier_text(f: Frontier, wide: bool = False) -> str:
    """Returns the frontier tables: over (cost per million tokens, TPS), and over (job cost, job
    time) when a request count was given; the pick is marked '*'."""
    buf = io.StringIO()
    con = console(buf, WIDE_WIDTH if wide else TERMINAL_WIDTH)
    t = f.table
    marks = ["*" if i == f.pick else str(k) for k, i in enumerate(f.points, 1)]
    n = len(f.points)
    buf.write(f"\nFrontier: {n} Pareto-optimal of the feasible options over (cost per million tokens, TPS); "
              f"* = the pick\n")
    con.print(option_rows_table(t, f.points, "", wide, only=FRONTIER_COLUMNS, marks=marks))
    if f.num_requests is not None and f.job_points is not None:
        pts = f.job_points
        hours, cost = job_time_h(t, f.num_requests), job_cost_usd(t, f.num_requests)
        buf.write(f"\nJob frontier for {f.num_requests} requests over (job cost, job time)\n"
                  f"(assumption: {JOB_ASSUMPTION})\n")
        extra = [("job h", [f"{hours[i]:.2f}" for i in pts]), ("job $", [f"{cost[i]:.2f}" for i in pts])]
        marks = ["*" if i == f.pick else str(k) for k, i in enumerate(pts, 1)]
        con.print(option_rows_table(t, pts, "", wide, only=JOB_COLUMNS, extra=extra, marks=marks))
    if f.pick is not None and f.pick not in f.points:  # only on exact cost ties; said, not hidden
        buf.write("Note: the pick ties in cost with a faster option on the frontier.\n")
    return buf.getvalue()


def sweep_text(table: OptionTable, rows: list[SweepRow]) -> str:
    """Returns the SLO sweep: the cheapest option for each SLO (tokens/s)."""
    buf = io.StringIO()
    con = console(buf)
    buf.write(f"\nSLO sweep: the cheapest option per throughput SLO (one MILP, SLO right-hand side changed "
              f"between {len(rows)} solves)\n")
    tb = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for col, just in (("SLO tok/s", "right"), ("instance", "left"), ("GPUs", "left"), ("KV off", "right"),
                      ("batch", "right"), ("TPS", "right"), ("$/hour", "right"), ("$/M tok", "right")):
        tb.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        if r.option is None:
            tb.add_row(f"{r.slo_tps:g}", f"({r.status})", "", "", "", "", "", "")
            continue
        i = r.option
        inst = table.instances[i]
        kv = f"{table.offload_ratio[i]:.0%}"
        tb.add_row(f"{r.slo_tps:g}", inst.name, f"{inst.gpu_count}x {inst.gpu}", kv, str(int(table.batch_size[i])),
                   f"{table.pred.tps[i]:.1f}", f"{table.hourly_cost_usd[i]:.3f}",
                   f"{table.cost_per_million_tokens_usd[i]:.4f}")
    con.print(tb)
    return buf.getvalue()


def sweep_json(table: OptionTable, rows: list[SweepRow]) -> list[dict[str, Any]]:
    """Returns the ``sweep_slo`` key of ``solve --json``: per SLO, the cheapest option or null."""
    out = []
    for r in rows:
        rec = table.record(r.option) if r.option is not None else None
        out.append({"slo_tps": r.slo_tps, "status": r.status, "option": rec})
    return out
