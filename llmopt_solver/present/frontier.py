"""Text for ``solve --frontier`` and ``solve --sweep-slo``: the Pareto options and the SLO sweep."""

from __future__ import annotations

import io
from typing import Any

from llmopt_solver.frontier import JOB_ASSUMPTION, Frontier, SweepRow, job_cost_usd, job_time_h
from llmopt_solver.present.console import TERMINAL_WIDTH, TextTable
from llmopt_solver.present.solve import OPTION_COLUMNS, WIDE_WIDTH, option_rows_table
from llmopt_solver.table.options import OptionTable

# Narrow (100 columns): weight offload and $/hour only with --wide (and in --json); the engine
# column only when the rows use more than one engine (else one line names it), see ``engine_cols``.
FRONTIER_COLUMNS = ("engine", "instance", "GPUs", "KV off", "batch", "TPS", "TPS band", "$/M tok")
JOB_COLUMNS = ("engine", "instance", "GPUs", "KV off", "batch", "TPS band")
SWEEP_COLUMNS = ("engine", "instance", "GPUs", "KV off", "batch", "TPS", "$/M tok")
SWEEP_WIDE = ("provider", "W off", "$/hour")


def engine_cols(table: OptionTable, idx: list[int], cols: tuple[str, ...], wide: bool) -> tuple[tuple[str, ...], str]:
    """Returns the columns to show and a line naming the engine when every row of ``idx`` has the
    same one (the engine column then dropped: it would push the table past 100 columns)."""
    engines = sorted({str(table.engine[i]) for i in idx})
    if wide or len(engines) != 1:
        return cols, ""
    return tuple(c for c in cols if c != "engine"), f"Engine: {engines[0]} (every row)\n"


def frontier_text(f: Frontier, wide: bool = False) -> str:
    """Returns the frontier tables: over (cost per million tokens, TPS), and over (job cost, job
    time) when a request count was given; the pick is marked '*'."""
    buf = io.StringIO()
    width = WIDE_WIDTH if wide else TERMINAL_WIDTH
    t = f.table
    marks = ["*" if i == f.pick else str(k) for k, i in enumerate(f.points, 1)]
    n = len(f.points)
    buf.write(f"\nFrontier: {n} Pareto-optimal options over (cost per million tokens, TPS); * = the pick\n")
    cols, note = engine_cols(t, f.points, FRONTIER_COLUMNS, wide)
    buf.write(note)
    buf.write(option_rows_table(t, f.points, "", wide, only=cols, marks=marks).render(width))
    if f.num_requests is not None and f.job_points is not None:
        pts = f.job_points
        hours, cost = job_time_h(t, f.num_requests), job_cost_usd(t, f.num_requests)
        assumption = JOB_ASSUMPTION.replace("; ", ";\n")  # two lines of < 100 columns
        buf.write(f"\nJob frontier for {f.num_requests} requests over (job cost, job time)\n"
                  f"(assumption: {assumption})\n")
        extra = [("job h", [f"{hours[i]:.2f}" for i in pts]), ("job $", [f"{cost[i]:.2f}" for i in pts])]
        marks = ["*" if i == f.pick else str(k) for k, i in enumerate(pts, 1)]
        cols, note = engine_cols(t, pts, JOB_COLUMNS, wide)
        buf.write(note)
        buf.write(option_rows_table(t, pts, "", wide, only=cols, extra=extra, marks=marks).render(width))
    if f.pick is not None and f.pick not in f.points:  # only on exact cost ties; said, not hidden
        buf.write("Note: the pick ties in cost with a faster option on the frontier.\n")
    return buf.getvalue()


def sweep_text(table: OptionTable, rows: list[SweepRow], wide: bool = False) -> str:
    """Returns the SLO sweep: the cheapest option for each SLO (tokens/s); ``wide`` adds the
    provider, weight offload and $/hour."""
    buf = io.StringIO()
    buf.write(f"\nSLO sweep: the cheapest option per throughput SLO ({len(rows)} solves of one MILP, "
              f"only the SLO changed)\n")
    tb = TextTable()
    names, note = engine_cols(table, [r.option for r in rows if r.option is not None], SWEEP_COLUMNS, wide)
    buf.write(note)
    cols = [c for c in OPTION_COLUMNS if c.header in names or (wide and c.header in SWEEP_WIDE)]
    tb.add_column("SLO tok/s", "right")
    for c in cols:
        tb.add_column(c.header, c.justify)  # type: ignore[arg-type]
    for r in rows:
        if r.option is None:
            tb.add_row(f"{r.slo_tps:g}", f"({r.status})", *([""] * (len(cols) - 1)))
        else:
            tb.add_row(f"{r.slo_tps:g}", *(c.cell(table, r.option) for c in cols))
    buf.write(tb.render(WIDE_WIDTH if wide else TERMINAL_WIDTH))
    return buf.getvalue()


def sweep_json(table: OptionTable, rows: list[SweepRow]) -> list[dict[str, Any]]:
    """Returns the ``sweep_slo`` key of ``solve --json``: per SLO, the cheapest option or null."""
    out = []
    for r in rows:
        rec = table.record(r.option) if r.option is not None else None
        out.append({"slo_tps": r.slo_tps, "status": r.status, "option": rec})
    return out
