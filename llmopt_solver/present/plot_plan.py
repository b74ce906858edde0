"""The Gantt picture of ``plan --plot``: who runs where and when, against quotas and deadlines."""

from __future__ import annotations

from typing import Any

import numpy as np

from llmopt_solver.plan.run import PlanResult, quota_limits
from llmopt_solver.present.plotting import PALETTE, pyplot


def lanes(res: PlanResult) -> dict[str, list[list[int]]]:
    """Returns per instance type the assignments (indices into res.assignments) packed in lanes
    so that no two in one lane overlap in time (first fit, by start)."""
    by_type: dict[str, list[list[int]]] = {}
    order = sorted(range(len(res.assignments)), key=lambda k: (res.assignments[k].start_h, k))
    for k in order:
        a = res.assignments[k]
        name = res.jobs[a.job].table.instances[a.option].name
        rows = by_type.setdefault(name, [])
        for lane in rows:
            if res.assignments[lane[-1]].end_h <= a.start_h + 1e-9:
                lane.append(k)
                break
        else:
            rows.append([k])
    return dict(sorted(by_type.items()))


def running(res: PlanResult, times: np.ndarray, key: tuple[str, str]) -> np.ndarray:
    """Returns at each time (h) the instances of a type (key ('instance', name)) or GPUs of a GPU
    type (('gpu', name)) running, counting assignments whose [start, end) holds the time."""
    out = np.zeros(len(times))
    for a in res.assignments:
        inst = res.jobs[a.job].table.instances[a.option]
        if key == ("instance", inst.name):
            w = a.count
        elif key == ("gpu", inst.gpu):
            w = a.count * inst.gpu_count
        else:
            continue
        out += w * ((times >= a.start_h - 1e-9) & (times < a.end_h - 1e-9))
    return out


def gantt_figure(res: PlanResult, flag: str = "--plot") -> Any:
    """Returns a Figure: top, assignments per instance type over time (bars labelled job x count,
    deadlines dashed in the job's colour); bottom, instances/GPUs in use against each quota."""
    plt = pyplot(flag)
    from matplotlib.patches import Patch
    colors = {j: PALETTE[j % len(PALETTE)] for j in range(len(res.jobs))}
    packed = lanes(res)
    n_rows = sum(len(v) for v in packed.values()) or 1
    limits = quota_limits(res.plan)
    keys = list(limits) or [("instance", n) for n in packed]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(9.0, 2.2 + 0.45 * n_rows + 2.0), sharex=True,
                                  gridspec_kw={"height_ratios": [max(1.5, 0.45 * n_rows + 0.8), 2.0]})
    horizon = max([res.makespan_h] + [jo.job.deadline_h for jo in res.jobs])
    y, ticks, labels = 0, [], []
    for name, rows in packed.items():
        for _lane_no, lane in enumerate(rows):
            for k in lane:
                a = res.assignments[k]
                jo = res.jobs[a.job]
                ax.barh(y, a.end_h - a.start_h, left=a.start_h, height=0.7, color=colors[a.job], alpha=0.85,
                        edgecolor="black", lw=0.5)
                wide = a.end_h - a.start_h > 0.06 * horizon  # the count inside the bar, else after it
                ax.text((a.start_h + a.end_h) / 2 if wide else a.end_h + 0.005 * horizon, y, f"x{a.count}",
                        ha="center" if wide else "left", va="center", fontsize=7)
            ticks.append(y)
            labels.append(name)
            y += 1
        ax.axhline(y - 0.5, color="grey", lw=0.4)  # separates instance types
    ax.set_yticks(ticks, labels)
    ax.tick_params(axis="y", length=0)
    ax.invert_yaxis()
    for j, jo in enumerate(res.jobs):
        ax.axvline(jo.job.deadline_h, color=colors[j], ls="--", lw=1.2, label=f"{jo.job.name}: deadline {jo.job.deadline_h:g} h")
        if jo.job.release_h:
            ax.axvline(jo.job.release_h, color=colors[j], ls=":", lw=1.0, label=f"{jo.job.name}: release {jo.job.release_h:g} h")
    ax.set_title(f"Plan: {len(res.jobs)} jobs, ${res.total_cost_usd:,.2f} total, makespan {res.makespan_h:.2f} h "
                 f"({res.status})", fontsize=9)
    engines = {j: sorted({str(jo.table.engine[a.option]) for a in res.assignments if a.job == j})
               for j, jo in enumerate(res.jobs)}
    handles = [Patch(color=colors[j], alpha=0.85, label=f"job {jo.job.name} on {', '.join(engines[j]) or '-'} (x instances)")
               for j, jo in enumerate(res.jobs)]
    ax.legend(handles=handles + ax.get_legend_handles_labels()[0], fontsize=7, loc="upper left",
              bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, axis="x", lw=0.3)
    times = np.linspace(0, horizon, 2001)
    # Only quotas the plan touches: a line for every unused GPU type would hide the used ones.
    keys = [k for k in keys if running(res, times, k).any()] or keys[:1]
    for k, key in enumerate(keys):
        c = PALETTE[(k + 5) % len(PALETTE)]
        label = f"{key[1]} {'instances' if key[0] == 'instance' else 'GPUs'}"
        inst = key[0] == "instance"  # instance lines wide and pale, so a GPU line on top stays visible
        ax2.step(times, running(res, times, key), where="post", color=c, lw=3.5 if inst else 1.3,
                 alpha=0.5 if inst else 1.0, label=f"{label} running")
        if key in limits:
            ax2.axhline(limits[key], color=c, ls="--", lw=1, label=f"{label} quota {limits[key]}")
    ax2.set_xlabel("hours from the plan's start")
    ax2.set_ylabel("in use")
    ax2.set_xlim(0, horizon * 1.02)
    ax2.set_ylim(bottom=0)
    ax2.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax2.grid(True, lw=0.3)
    fig.tight_layout()
    return fig
