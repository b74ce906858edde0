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


def frontier_figure(f: Frontier, flag: str = "--plot") -> Any:
    """Returns a matplotlib Figure: options as points coloured by GPU type with the 10-90% band as
    error bars; SLO misses hollow; the frontier as a step line; the pick starred; the SLO line."""
    plt = pyplot(flag)
    t = f.table
    idx = fits_memory(f)
    cost, tps, lo, hi = t.cost_per_million_tokens_usd, t.pred.tps, t.tps_low, t.tps_high
    meets = t.meets_slo
    fig, ax = plt.subplots(figsize=(9.0, 5.0))
    gpus = sorted({t.instances[i].gpu for i in idx})
    for k, gpu in enumerate(gpus):
        sel = np.array([i for i in idx if t.instances[i].gpu == gpu])
        color = PALETTE[k % len(PALETTE)]
        for ok, face in ((True, color), (False, "none")):
            s = sel[meets[sel] == ok]
            if not len(s):
                continue
            ax.errorbar(cost[s], tps[s], yerr=[tps[s] - lo[s], hi[s] - tps[s]], fmt="o", ms=3.5, mfc=face,
                        mec=color, ecolor=color, elinewidth=0.6, alpha=0.55 if ok else 0.3,
                        label=gpu if ok or not (meets[sel]).any() else None, zorder=2)
    if f.points:
        p = np.array(f.points)
        ax.step(cost[p], tps[p], where="post", color="black", lw=1.2, zorder=3,
                label=f"frontier ({len(p)} options)")
    if f.pick is not None:
        i = f.pick
        ax.plot([cost[i]], [tps[i]], marker="*", ms=16, mfc="gold", mec="black", ls="none", zorder=4,
                label=f"pick: {t.instances[i].name}, ${cost[i]:.3f}/M tok, {tps[i]:.0f} tok/s")
    if t.job.slo_tps:
        ax.axhline(t.job.slo_tps, color="crimson", ls="--", lw=1, zorder=1, label=f"SLO {t.job.slo_tps:g} tok/s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cost per million generated tokens, USD (log)")
    ax.set_ylabel("throughput, generated tokens/s (log)")
    job = t.job
    ax.set_title(f"{job.model.short_name}: batch {'auto' if len(job.batch_sizes) > 1 else job.batch_sizes[0]}, "
                 f"input {job.input_len}, output {job.output_len} - {len(idx)} options fit memory "
                 f"(hollow: below the SLO); bars: 10-90% band", fontsize=9)
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), framealpha=0.9)
    fig.tight_layout()
    return fig
