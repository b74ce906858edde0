"""The frontier picture of ``solve --plot``: every option that fits memory, cost vs throughput."""

from __future__ import annotations

from typing import Any

import numpy as np

from llmopt_solver.frontier import Frontier
from llmopt_solver.present.plotting import PALETTE, pyplot


def fits_memory(f: Frontier) -> np.ndarray:
    """Returns indices of priced options that fit GPU and host memory (the SLO not applied)."""
    t = f.table
    ok = t.usable & t.fits_gpu & t.fits_host & np.isfinite(t.cost_per_million_tokens_usd) & np.isfinite(t.pred.tps)
    return np.nonzero(ok)[0]


ENGINE_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h", "<", ">")


def distinct(t: Any, sel: np.ndarray) -> np.ndarray:
    """Returns the options of ``sel`` with distinct (cost, TPS, band) points, first of each kept:
    identical points (e.g. the same GPU at the same price from two providers) are drawn once."""
    if not len(sel):
        return sel
    key = np.round(np.column_stack([t.cost_per_million_tokens_usd[sel], t.pred.tps[sel], t.tps_low[sel],
                                    t.tps_high[sel]]), 9)
    _, first = np.unique(key, axis=0, return_index=True)
    return sel[np.sort(first)]


def plain_log_axis(axis: Any) -> None:
    """Log axis with plain tick labels (0.2, 0.5, 1, 2, 5, 10, ... not 10^0)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def frontier_figure(f: Frontier, flag: str = "--plot") -> Any:
    """Returns a matplotlib Figure: options as points coloured by GPU type and shaped by engine,
    with the 10-90% band as error bars; SLO misses hollow; identical points drawn once; the
    frontier as a step line; the pick starred and named with its engine; the SLO line."""
    plt = pyplot(flag)
    from matplotlib.lines import Line2D

    t = f.table
    idx = fits_memory(f)
    cost, tps, lo, hi = t.cost_per_million_tokens_usd, t.pred.tps, t.tps_low, t.tps_high
    meets = t.meets_slo
    fig, ax = plt.subplots(figsize=(9.0, 5.0))
    gpu_of = np.array([t.instances[i].gpu for i in idx], dtype=object)
    eng_of = t.engine[idx].astype(str)
    gpus, engines = sorted(set(gpu_of.tolist())), sorted(set(eng_of.tolist()))
    marker = {name: ENGINE_MARKERS[k % len(ENGINE_MARKERS)] for k, name in enumerate(engines)}
    color = {gpu: PALETTE[k % len(PALETTE)] for k, gpu in enumerate(gpus)}
    shown = 0
    for gpu in gpus:
        for eng in engines:
            sel = idx[(gpu_of == gpu) & (eng_of == eng)]
            for ok, face in ((True, color[gpu]), (False, "none")):
                s = distinct(t, sel[meets[sel] == ok])
                shown += len(s)
                if len(s):
                    ax.errorbar(cost[s], tps[s], yerr=[tps[s] - lo[s], hi[s] - tps[s]], fmt=marker[eng], ms=3.5,
                                mfc=face, mec=color[gpu], ecolor=color[gpu], elinewidth=0.6,
                                alpha=0.55 if ok else 0.3, zorder=2)
    handles: list[Any] = []
    if f.points:
        p = np.array(f.points)
        handles += ax.step(cost[p], tps[p], where="post", color="black", lw=1.2, zorder=3,
                           label=f"frontier ({len(p)} options)")
    if f.pick is not None:
        i = f.pick
        handles += ax.plot([cost[i]], [tps[i]], marker="*", ms=16, mfc="gold", mec="black", ls="none", zorder=4,
                           label=f"pick: {t.instances[i].name} ({t.engine[i]}), ${cost[i]:.3f}/M tok, {tps[i]:.0f} tok/s")
    if t.job.slo_tps:
        handles.append(ax.axhline(t.job.slo_tps, color="crimson", ls="--", lw=1, zorder=1,
                                  label=f"SLO {t.job.slo_tps:g} tok/s"))
    handles += [Line2D([], [], ls="none", marker="o", ms=5, color=color[g], label=g) for g in gpus]
    handles += [Line2D([], [], ls="none", marker=marker[n], ms=5, mfc="none", mec="black", label=f"engine {n}")
                for n in engines]
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain_log_axis(ax.xaxis)
    plain_log_axis(ax.yaxis)
    ax.set_xlabel("cost per million generated tokens, USD (log scale)")
    ax.set_ylabel("throughput, generated tokens/s (log scale)")
    job = t.job
    ax.set_title(f"{job.model.short_name}: batch {'auto' if len(job.batch_sizes) > 1 else job.batch_sizes[0]}, "
                 f"input {job.input_len}, output {job.output_len} - {len(idx)} options fit memory, {shown} distinct "
                 f"points (hollow: below the SLO); bars: 10-90% band", fontsize=9)
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), framealpha=0.9)
    fig.tight_layout()
    return fig
