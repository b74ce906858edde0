"""Presenters for one job: the original README's text block, runner-up tables, and JSON."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmopt_solver.optimize import Outcome
from llmopt_solver.present.console import NBSP, TERMINAL_WIDTH, TextTable, fill
from llmopt_solver.table.options import OptionTable

WIDE_WIDTH = 160  # --wide: every column


def _pct(x: float) -> str:
    return f"{x:+.0f}%".replace("-", "\u2212")


def band_text(table: OptionTable, i: int) -> str:
    """Returns e.g. '(−12%/+9%)': the tps band relative to the prediction."""
    tps = table.pred.tps[i]
    lo, hi = table.tps_low[i] / tps - 1.0, table.tps_high[i] / tps - 1.0
    return f"({_pct(100 * lo)}/{_pct(100 * hi)})"


@dataclass(frozen=True)
class Column:
    """One column of the options table: header, justification, cell text of option i, wide-only."""

    header: str
    justify: str
    cell: Callable[[OptionTable, int], str]
    wide_only: bool = False


def _kv_cell(t: OptionTable, i: int) -> str:
    r = t.offload_ratio[i]
    return f"{r:.0%}" if r == 0 else f"{r:.0%} {t.mode_name(i)}"


# The columns of the runners-up and frontier tables, in order. The default (100 columns) shows the
# narrow ones; --wide shows all. A new per-option attribute is one more entry here.
OPTION_COLUMNS: tuple[Column, ...] = (
    Column("engine", "left", lambda t, i: str(t.engine[i]), wide_only=True),  # narrow: a line below
    Column("instance", "left", lambda t, i: t.instances[i].name),
    Column("provider", "left", lambda t, i: t.instances[i].provider, wide_only=True),
    Column("GPUs", "left", lambda t, i: f"{t.instances[i].gpu_count}x {t.instances[i].gpu}"),
    Column("KV off", "right", _kv_cell),
    Column("W off", "right", lambda t, i: f"{t.weight_offload[i]:.0%}"),
    Column("batch", "right", lambda t, i: str(int(t.batch_size[i]))),
    Column("TPS", "right", lambda t, i: f"{t.pred.tps[i]:.1f}"),
    Column("TPS band", "right", lambda t, i: f"{t.tps_low[i]:.0f}-{t.tps_high[i]:.0f}", wide_only=True),
    Column("$/hour", "right", lambda t, i: f"{t.hourly_cost_usd[i]:.3f}"),
    Column("$/M tok", "right", lambda t, i: f"{t.cost_per_million_tokens_usd[i]:.4f}"),
    Column("GPU mem GB", "right", lambda t, i: f"{t.pred.gpu_memory_needed_gb[i]:.2f}/{t.gpu_capacity_gb[i]:.2f}",
           wide_only=True),
    Column("total s", "right", lambda t, i: f"{t.pred.total_s[i]:.3f}", wide_only=True),
)


def option_rows_table(table: OptionTable, idx: list[int], title: str, wide: bool = False,
                      extra: Sequence[tuple[str, Sequence[str]]] = (), only: Sequence[str] | None = None,
                      marks: Sequence[str] | None = None) -> TextTable:
    """Returns a table of options ``idx``; ``wide`` adds the wide-only columns; ``only`` keeps
    just these headers (unless ``wide``); ``extra`` appends (header, one cell per option) columns;
    ``marks`` replaces the rank numbers (e.g. '*' for the pick)."""
    t = TextTable(title)
    if wide:
        cols = list(OPTION_COLUMNS)
    elif only is not None:
        cols = [c for c in OPTION_COLUMNS if c.header in only]
    else:
        cols = [c for c in OPTION_COLUMNS if not c.wide_only]
    t.add_column("#", justify="right")
    for c in cols:
        t.add_column(c.header, c.justify)  # type: ignore[arg-type]
    for name, _ in extra:
        t.add_column(name, "right")
    for rank, i in enumerate(idx, 1):
        t.add_row(str(rank) if marks is None else marks[rank - 1], *(c.cell(table, i) for c in cols), *(cells[rank - 1] for _, cells in extra))
    return t


def distinct_runners(table: OptionTable, ranking: list[int], top: int) -> list[int]:
    """Returns up to ``top`` runners-up after ranking[0], skipping an option that repeats an earlier
    one on another engine with the same instance, offload, batch and predicted time (ties)."""
    seen, out = set(), []
    for i in ranking:
        key = (table.instances[i].name, float(table.offload_ratio[i]), float(table.weight_offload[i]),
               int(table.batch_size[i]), table.mode_name(i), round(float(table.pred.total_s[i]), 9))
        if key in seen:
            continue
        seen.add(key)
        if i != ranking[0]:
            out.append(i)
        if len(out) == top:
            break
    return out


def solve_text(outcome: Outcome, top: int, wide: bool = False) -> str:
    """Returns the text report of ``llmopt solve``: the original README's lines, then tables."""
    table, job, shape = outcome.table, outcome.table.job, outcome.table.shape
    buf = io.StringIO()
    w = buf.write
    b = table.batch_size[outcome.best] if outcome.best is not None else job.batch_sizes[0]
    w(f"Model: {job.model.short_name}\n")
    w(f"Layers: {shape.num_layers}\n")
    w(f"Hidden size: {shape.hidden_size}\n")
    w(f"Batch size: {int(b)}{' (auto)' if len(job.batch_sizes) > 1 else ''}\n")
    w(f"Input length: {job.input_len}\n")
    w(f"Output length: {job.output_len}\n")
    w(f"Safety factor: {job.safety_factor:g}\n")
    slo = f"Minimum {job.slo_tps:g} TPS" if job.slo_tps else "none"
    if job.slo_tps_per_seq:
        slo += f", {job.slo_tps_per_seq:g} TPS per sequence"
    if job.confidence is not None:
        slo += f" (met at confidence {job.confidence:g})"
    w(f"SLO requirement: {slo}\n")
    kv = table.engine_kv.get(str(table.engine[outcome.best]), job.kv.value) if outcome.best is not None else job.kv.value
    w(f"Precision: weights {job.precision.value}, KV cache {kv}\n\n")
    m = outcome.memory_gb
    w(f"Total KV Cache size: {m['kv_cache_gb']:.2f} GB\n")
    w(f"Model weights: {m['weights_gb']:.2f} GB; peak activations: {m['activations_gb']:.2f} GB\n\n")
    if outcome.best is not None:
        i = outcome.best
        inst, p = table.instances[i], table.pred
        w("Optimal instance:\n")
        w(f"Engine: {table.engine[i]}\n")
        w(f"Instance: {inst.name} ({inst.provider}, {inst.region or 'n/a'}; {inst.gpu_count}x {inst.gpu}, "
          f"{inst.vcpus} vCPUs, {inst.host_memory_gb:.0f} GB host memory)\n")
        w(f"GPU: {inst.gpu}\n")
        w(f"KV Cache offloading ratio: {table.offload_ratio[i] * 100:.1f}%"
          f"{'' if table.offload_ratio[i] == 0 else ' (' + table.mode_name(i) + ')'}\n")
        w(f"Weight offloading ratio: {table.weight_offload[i] * 100:.1f}%\n")
        w(f"TPS: {p.tps[i]:.2f} tokens/second {band_text(table, i)}\n")
        w(f"Hourly cost: ${table.hourly_cost_usd[i]:.2f}{' (spot)' if job.spot else ''}\n")
        w(f"Cost efficiency: {table.tps_per_usd_hour[i]:.2f} TPS/$\n")
        w(f"Cost per million tokens: ${table.cost_per_million_tokens_usd[i]:.4f}\n")
        w(f"GPU memory: {p.gpu_memory_needed_gb[i]:.2f} GB needed per GPU of {table.gpu_capacity_gb[i]:.2f} GB usable; "
          f"host memory: {p.host_memory_needed_gb[i]:.1f} GB of {table.host_memory_gb[i]:.1f} GB\n\n")
        w("Performance details:\n")
        w(f"Prefill time: {p.prefill_s[i]:.4f} seconds\n")
        w(f"Decode time: {p.decode_s[i]:.4f} seconds\n")
        w(f"Total processing time: {p.total_s[i]:.4f} seconds\n")
    runners = distinct_runners(table, outcome.ranking, top) if outcome.best is not None else []
    if runners:
        w("\n")
        title = f"Runners-up (next {len(runners)} of {len(outcome.ranking) - 1} feasible options, by cost per million tokens)"
        w(option_rows_table(table, runners, title, wide).render(WIDE_WIDTH if wide else TERMINAL_WIDTH))
        if not wide:  # the 100-column table has no room for the engine column (--wide shows it)
            # a no-break space keeps each "row engine" pair on one line
            line = "Engine per row: " + ", ".join(f"{k}{NBSP}{table.engine[i]}" for k, i in enumerate(runners, 1))
            w("\n" + fill(line) + "\n")
    if outcome.lost_gpus:
        w("\nOther GPU types, and why they lost:\n")
        for gpu, why in outcome.lost_gpus.items():
            # a no-break space keeps "vs $x" on one line
            w(fill(f"{gpu}: {why}".replace(" vs ", f"{NBSP}vs{NBSP}"), initial_indent="  ", subsequent_indent="    ") + "\n")
    r = outcome.result
    n_feas = int(np.sum(table.feasible))
    as_of = sorted({x.as_of for x in table.instances})
    w(f"\nSolver: {r.solver} {r.status.value} in {r.wall_s:.3f} s; {len(table)} options evaluated, {n_feas} feasible.\n")
    if as_of:  # no option: no instance priced
        w(f"Prices as of {', '.join(as_of)}.\n")
    return buf.getvalue()


def workload_doc(table: OptionTable) -> dict[str, Any]:
    job = table.job
    return {
        "batch_size": "auto" if len(job.batch_sizes) > 1 else int(job.batch_sizes[0]),
        "input_len": job.input_len, "output_len": job.output_len,
        "precision": job.precision.value, "kv_precision": job.kv.value,
        "safety_factor": job.safety_factor, "slo_tps": job.slo_tps,
        "slo_tps_per_seq": job.slo_tps_per_seq, "offload_mode": job.offload_mode,
        "offload_ratios": list(job.offload_ratios), "adjust": job.adjust, "spot": job.spot,
        "confidence": job.confidence, "engines": list(job.engines),
    }


def model_doc(table: OptionTable) -> dict[str, Any]:
    s = table.shape
    return {"name": table.job.model.name, "short_name": table.job.model.short_name,
            "num_layers": s.num_layers, "hidden_size": s.hidden_size, "num_heads": s.num_heads,
            "num_kv_heads": s.num_kv_heads, "params": s.total_params, "source": table.job.model.source}


def solve_json(outcome: Outcome) -> dict[str, Any]:
    """Returns the ``solve --json`` document (DESIGN.md section 5)."""
    table, r = outcome.table, outcome.result
    order = table.order.tolist()
    doc: dict[str, Any] = {
        "model": model_doc(table),
        "workload": workload_doc(table),
        "memory": outcome.memory_gb,
        "best": table.record(outcome.best) if outcome.best is not None else None,
        "options": [table.record(i) for i in order],
        "solver": {"name": r.solver, "status": r.status.value, "wall_s": round(r.wall_s, 4)},
        "lost_gpus": outcome.lost_gpus,
    }
    if outcome.diagnosis is not None:
        doc["infeasible"] = {"binding": outcome.diagnosis.binding, "message": outcome.diagnosis.message,
                             "best_tps": outcome.diagnosis.best_tps}
    return doc


def predict_text(table: OptionTable, i: int, memory_gb: dict[str, float]) -> str:
    """Returns the breakdown printed by ``llmopt predict`` for option ``i``."""
    inst, p, job = table.instances[i], table.pred, table.job
    lines = [
        f"Model: {job.model.short_name} ({table.shape.total_params / 1e9:.2f}B parameters, {table.shape.num_layers} layers)",
        f"Instance: {inst.name} ({inst.provider}; {inst.gpu_count}x {inst.gpu}, {inst.host_memory_gb:.0f} GB host memory)",
        f"Engine: {table.engine[i]}",
        f"Workload: batch {int(table.batch_size[i])}, input {job.input_len}, output {job.output_len}, "
        f"weights {job.precision.value}, KV {job.kv.value}, {'overlapped' if job.adjust else 'serial'} transfers",
        f"KV Cache offloading ratio: {table.offload_ratio[i] * 100:.1f}% ({table.mode_name(i)})",
        f"Weight offloading ratio: {table.weight_offload[i] * 100:.1f}% (streamed over PCIe every pass)",
        "",
        "Memory per GPU (GB):",
        f"  weights          {p.weights_gb[i]:10.3f}",
        f"  KV cache on GPU  {p.kv_cache_gb[i]:10.3f}   (full KV cache, all GPUs: {memory_gb['kv_cache_gb']:.3f})",
        f"  activations      {p.activations_gb[i]:10.3f}",
        f"  staging buffers  {p.staging_gb[i]:10.3f}",
        f"  runtime reserve  {p.reserve_gb[i]:10.3f}",
        f"  total needed     {p.gpu_memory_needed_gb[i]:10.3f}   of {table.gpu_capacity_gb[i]:.3f} usable "
        f"({job.safety_factor:g} x {table.gpu_memory_gb[i]:g})",
        f"Host memory needed: {p.host_memory_needed_gb[i]:.2f} GB of {table.host_memory_gb[i]:.1f} GB",
        "",
        f"Prefill time: {p.prefill_s[i]:.4f} seconds",
        f"Decode time: {p.decode_s[i]:.4f} seconds",
        f"Total processing time: {p.total_s[i]:.4f} seconds",
        f"TPS: {p.tps[i]:.2f} tokens/second {band_text(table, i)}; per sequence {p.tps_per_seq[i]:.3f}",
    ]
    if np.isfinite(table.hourly_cost_usd[i]):
        lines += [f"Hourly cost: ${table.hourly_cost_usd[i]:.2f}{' (spot)' if job.spot else ''}",
                  f"Cost efficiency: {table.tps_per_usd_hour[i]:.2f} TPS/$",
                  f"Cost per million tokens: ${table.cost_per_million_tokens_usd[i]:.4f}"]
    reasons = table.reasons(i)
    lines.append("Feasible: yes" if not reasons else "Feasible: no - " + "; ".join(r.text for r in reasons))
    return "\n".join(lines) + "\n"
