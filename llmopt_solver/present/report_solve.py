"""``solve --report FILE.html``: one self-contained page with the pick, the frontier and why."""

from __future__ import annotations

from typing import Any

import numpy as np

from llmopt_solver.catalog.loader import Catalog
from llmopt_solver.frontier import JOB_ASSUMPTION, Frontier, SweepRow, job_cost_usd, job_time_h
from llmopt_solver.optimize import Outcome
from llmopt_solver.predictor.uncertainty import BAND_CONFIDENCE, band_factors
from llmopt_solver.present.html import e, figure, kv_list, page, table
from llmopt_solver.present.plotting import have_matplotlib, svg_inline
from llmopt_solver.present.solve import OPTION_COLUMNS, band_text, workload_doc
from llmopt_solver.table.options import OptionTable


def _option_rows(t: OptionTable, idx: list[int]) -> tuple[list[str], list[list[str]], list[bool]]:
    cols = list(OPTION_COLUMNS)
    headers = ["#"] + [c.header for c in cols]
    rows = [[str(k)] + [c.cell(t, i) for c in cols] for k, i in enumerate(idx, 1)]
    return headers, rows, [True] + [c.justify == "right" for c in cols]


def _pick_section(o: Outcome) -> str:
    t, i = o.table, o.best
    assert i is not None
    inst, p = t.instances[i], t.pred
    kv = f"{t.offload_ratio[i]:.0%}" + ("" if t.offload_ratio[i] == 0 else f" ({t.mode_name(i)})")
    items = [("Engine", str(t.engine[i])), ("Instance", f"{inst.name} ({inst.provider}, {inst.region or 'n/a'})"),
             ("GPUs", f"{inst.gpu_count}x {inst.gpu}"),
             ("KV cache offloaded", kv), ("Weights offloaded", f"{t.weight_offload[i]:.0%}"),
             ("Batch size", int(t.batch_size[i])),
             ("Throughput", f"{p.tps[i]:.2f} tokens/s {band_text(t, i)}; 10-90% band "
                            f"{t.tps_low[i]:.0f}-{t.tps_high[i]:.0f}"),
             ("Hourly cost", f"${t.hourly_cost_usd[i]:.3f}{' (spot)' if t.job.spot else ''}"),
             ("Cost per million tokens", f"${t.cost_per_million_tokens_usd[i]:.4f}"),
             ("GPU memory", f"{p.gpu_memory_needed_gb[i]:.2f} GB needed per GPU of {t.gpu_capacity_gb[i]:.2f} GB usable"),
             ("Batch time", f"{p.total_s[i]:.3f} s (prefill {p.prefill_s[i]:.3f} s, decode {p.decode_s[i]:.3f} s)")]
    return f'<div class="pick-box" id="pick"><b>Pick: {e(inst.name)} ({e(t.engine[i])})</b>{kv_list(items)}</div>'


def _inputs(o: Outcome) -> str:
    t = o.table
    w = workload_doc(t)
    items: list[tuple[str, Any]] = [("Model", f"{t.job.model.short_name} ({t.shape.total_params / 1e9:.2f}B parameters, "
                                              f"{t.shape.num_layers} layers)")]
    items += [(k, ", ".join(map(str, v)) if isinstance(v, list) else ("-" if v is None else v))
              for k, v in w.items() if k != "offload_ratios"]
    items.append(("instances considered", len(t.instance_list)))
    return kv_list(items)


def _frontier_table(f: Frontier) -> str:
    t = f.table
    headers, rows, num = _option_rows(t, f.points)
    if f.num_requests is not None:
        h, c = job_time_h(t, f.num_requests), job_cost_usd(t, f.num_requests)
        headers += ["job h", "job $"]
        num += [True, True]
        for r, i in zip(rows, f.points):
            r += [f"{h[i]:.2f}", f"{c[i]:.2f}"]
    hl = [k for k, i in enumerate(f.points) if i == f.pick]
    return table(headers, rows, num, highlight=hl, table_id="frontier")


def _assumptions(o: Outcome, catalog: Catalog) -> str:
    t = o.table
    as_of = sorted({x.as_of for x in t.instance_list})
    gpus = sorted({x.gpu for x in t.instance_list})
    cal = [g for g in gpus if g in catalog.calibrated_gpus]
    rows = []
    for g in gpus:
        u = catalog.uncertainty(g)
        lo, hi = (x - 1 for x in band_factors(u))
        rows.append((g, "calibrated" if g in cal else "spec-only (parameters transferred)", u.rows,
                     f"{100 * lo:+.0f}% / {100 * hi:+.0f}%"))
    band = table(("GPU", "predictor", "measurements", f"{1 - BAND_CONFIDENCE:.0%}-{BAND_CONFIDENCE:.0%} band of measured/predicted - 1"), rows,
                 (False, False, True, True))
    items = [("Prices", f"{'spot' if t.job.spot else 'on-demand'} list prices, as of {', '.join(as_of)} "
                        "(catalog; see `llmopt catalog instances` for each source)"),
             ("Calibration", (", ".join(f"{g}: {catalog.calibrated_gpus[g]}" for g in cal) or "none")
              + "; other GPUs use parameters transferred from the calibrated ones"),
             ("Engines compared", ", ".join(t.job.engines) + " (the pick's engine is in the box above; "
                                  "`llmopt catalog engines` lists what each can execute)"),
             ("Confidence", "median prediction" if t.job.confidence is None
              else f"SLO and memory met at the pessimistic {t.job.confidence:g} quantile"),
             ("Model", "roofline per phase (prefill, decode) with KV/weight offload over PCIe; static batches")]
    return kv_list(items) + "<p>Accuracy band per GPU type (applies to every throughput shown):</p>" + band


def solve_report_html(o: Outcome, f: Frontier, sweep: list[SweepRow] | None, catalog: Catalog,
                      top: int = 10) -> str:
    """Returns the HTML report of one solve: inputs, pick, frontier picture and table, runners-up,
    why each GPU type lost, the SLO sweep (if run), assumptions and the accuracy band."""
    t = o.table
    assert o.best is not None
    parts = [f"<h1>llmopt: {e(t.job.model.short_name)} on {e(t.instances[o.best].name)}</h1>",
             f'<p class="note">The cheapest of {int(np.sum(t.feasible))} feasible options '
             f"({len(t)} evaluated) that meets the SLO; solver {e(o.result.solver)} {e(o.result.status.value)}.</p>",
             _pick_section(o), "<h2>Inputs</h2>", _inputs(o),
             "<h2>Cost against throughput</h2>"]
    svg = None
    if have_matplotlib():
        from llmopt_solver.present.plot_solve import frontier_figure

        svg = svg_inline(frontier_figure(f, "--report"))
    parts.append(figure(svg, "Every option that fits memory (identical points drawn once), coloured by GPU type and "
                             "shaped by engine; hollow points miss the SLO; the black steps are the frontier; the "
                             "star is the pick; bars are the 10-90% band."))
    parts.append(f"<h2>Frontier: {len(f.points)} Pareto-optimal options (pick highlighted)</h2>")
    if f.num_requests is not None:
        parts.append(f'<p class="note">Job of {f.num_requests} requests: {e(JOB_ASSUMPTION)}.</p>')
    parts.append(_frontier_table(f))
    runners = o.ranking[1:top + 1]
    if runners:
        headers, rows, num = _option_rows(t, runners)
        parts += [f"<h2>Runners-up (next {len(runners)} by cost per million tokens)</h2>",
                  table(headers, rows, num, table_id="runners-up")]
    if o.lost_gpus:
        parts += ["<h2>Why each other GPU type lost</h2>",
                  table(("GPU", "reason"), sorted(o.lost_gpus.items()), table_id="lost")]
    if sweep:
        rows2 = []
        for r in sweep:
            if r.option is None:
                rows2.append((f"{r.slo_tps:g}", "", f"({r.status})", "", "", ""))
            else:
                i = r.option
                rows2.append((f"{r.slo_tps:g}", str(t.engine[i]), t.instances[i].name,
                              f"{t.instances[i].gpu_count}x {t.instances[i].gpu}",
                              f"{t.pred.tps[i]:.1f}", f"{t.cost_per_million_tokens_usd[i]:.4f}"))
        parts += ["<h2>Cheapest option per SLO</h2>",
                  '<p class="note">One MILP, built once over the options that can be the cheapest at some SLO, '
                  "re-solved with only the SLO changed.</p>",
                  table(("SLO tok/s", "engine", "instance", "GPUs", "TPS", "$/M tok"), rows2,
                        (True, False, False, False, True, True), table_id="sweep")]
    parts += ["<h2>Assumptions and accuracy</h2>", _assumptions(o, catalog)]
    return page(f"llmopt solve: {t.job.model.short_name}", "\n".join(parts))
