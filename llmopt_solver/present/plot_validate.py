"""The picture of ``validate --plot``: predicted against measured, log-log, per GPU and framework."""

from __future__ import annotations

from typing import Any

import numpy as np

from llmopt_solver.present.plotting import PALETTE, pyplot

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")
MAX_PANELS = 6


def validate_figure(rows: list[dict[str, Any]], title: str, flag: str = "--plot") -> Any:
    """Returns a Figure with one log-log panel per metric (up to MAX_PANELS, most rows first):
    predicted vs measured per row, colour = GPU, marker = framework, the y = x line and the
    median |error| of the panel. Rows without a numeric prediction (skipped, OOM) are left out."""
    plt = pyplot(flag)
    pts = [r for r in rows if isinstance(r.get("predicted"), (int, float)) and isinstance(r.get("measured"), (int, float))
           and r["predicted"] > 0 and r["measured"] > 0]
    metrics = sorted({r["metric"] for r in pts}, key=lambda m: (-sum(r["metric"] == m for r in pts), m))[:MAX_PANELS]
    gpus = sorted({r["gpu"] for r in pts})
    fws = sorted({r["framework"] for r in pts})
    n = max(1, len(metrics))
    cols = min(3, n)
    nrows = (n + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.0 * cols + 1.8, 3.8 * nrows), squeeze=False)
    for ax, metric in zip(axes.ravel(), metrics):
        sel = [r for r in pts if r["metric"] == metric]
        for g_no, g in enumerate(gpus):
            for f_no, fw in enumerate(fws):
                s = [r for r in sel if r["gpu"] == g and r["framework"] == fw]
                if s:
                    ax.scatter([r["measured"] for r in s], [r["predicted"] for r in s], s=14,
                               color=PALETTE[g_no % len(PALETTE)], marker=MARKERS[f_no % len(MARKERS)], alpha=0.75,
                               label=f"{g} / {fw}")
        vals = np.array([[r["measured"], r["predicted"]] for r in sel], dtype=float)
        lo, hi = vals.min() / 1.3, vals.max() * 1.3
        if hi / lo < 4:  # a panel of one or two rows: show at least a factor 4 around them
            mid = np.sqrt(lo * hi)
            lo, hi = mid / 2, mid * 2
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
        for k in (0.8, 1.25):
            ax.plot([lo, hi], [lo * k, hi * k], color="grey", lw=0.5, ls=":")
        err = np.median(np.abs(vals[:, 1] / vals[:, 0] - 1)) * 100
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_title(f"{metric}: {len(sel)} rows, median |error| {err:.1f}%", fontsize=8)
        ax.set_xlabel("measured")
        ax.set_ylabel("predicted")
        ax.grid(True, which="both", lw=0.3, alpha=0.5)
    for ax in axes.ravel()[len(metrics):]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    for ax in axes.ravel()[1:len(metrics)]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    if seen:
        fig.legend(list(seen.values()), list(seen.keys()), fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 0.95))
    fig.suptitle(f"{title} (solid: predicted = measured; dotted: -20% / +25%)", fontsize=9)
    fig.tight_layout()
    return fig
