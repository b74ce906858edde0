"""Why a job has no feasible option: the binding constraint (a ReasonKind) and the best achievable.

Also, per GPU type that lost to the pick, why it lost (cost, or the constraint that binds on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from llmopt_solver.errors import Reason, ReasonKind
from llmopt_solver.table.options import OptionTable

# How each binding constraint is named in messages and in the JSON "binding" field.
BINDING_LABEL = {
    ReasonKind.GPU_MEMORY: "GPU memory", ReasonKind.HOST_MEMORY: "host memory", ReasonKind.SLO: "SLO",
    ReasonKind.PRECISION: "precision", ReasonKind.PRICE: "price", ReasonKind.ENGINE: "engine",
    ReasonKind.TENSOR_PARALLEL: "tensor parallelism", ReasonKind.CATALOG: "catalog",
}


@dataclass
class Diagnosis:
    """Why nothing is feasible: the binding constraint(s), a message, and the best achievable."""

    kinds: tuple[ReasonKind, ...]  # the binding constraint; several when no instance can run at all
    message: str
    best_tps: float | None = None
    best_option: int | None = None
    detail: str = ""  # the short form used in "why each GPU type lost"

    @property
    def binding(self) -> str:
        """Returns the binding constraint(s) as named in messages, e.g. 'GPU memory' or 'precision, price'."""
        return ", ".join(BINDING_LABEL[k] for k in self.kinds) or "catalog"


def diagnose(table: OptionTable) -> Diagnosis:
    """Returns the binding constraint when no option is feasible, with the best achievable."""
    usable = table.usable & np.isfinite(table.hourly_cost_usd)
    if not usable.any():
        kinds = sorted({r.kind for rs in table.structural for r in rs}, key=lambda k: BINDING_LABEL[k])
        left_out = [w for e in table.job.engines for w in table.engine_gpu_excluded.get(e, {}).values()]
        if len(table) == 0 and left_out:  # every instance left out by the engines' GPU rules
            kinds = [ReasonKind.ENGINE]
            msg = f"no instance can run this job at all ({left_out[0]}; and similar for the others)."
        elif len(table) == 0:
            msg = "no instance can run this job at all (the engines asked for can use none of the instances selected)."
        else:
            sample = table.structural[0][0].text if table.structural[0] else "no instance"
            msg = f"no instance can run this job at all ({sample}; and similar for the others)."
        return Diagnosis(kinds=tuple(kinds), message=msg, detail=msg)
    p = table.pred

    def closest(among: np.ndarray, need: np.ndarray, have: np.ndarray) -> int:
        # the option that misses the memory constraint by the smallest factor
        return int(np.argmin(np.where(among, need / have, np.inf)))

    fits_gpu = usable & table.fits_gpu
    if not fits_gpu.any():
        i = closest(usable, table.planning_gpu_need_gb, table.gpu_capacity_gb)
        no_kv = sorted({str(e) for e in table.engine[usable]} - {e for e, ok in table.engine_kv_offload.items() if ok})
        how = ("even with the KV cache fully offloaded" if not no_kv else
               f"({', '.join(no_kv)} cannot offload active KV; engines that can: flexgen (OPT), hf-accelerate, deepspeed-zero)")
        return Diagnosis((ReasonKind.GPU_MEMORY,), (
            f"GPU memory binds: no instance fits {how}; the closest is "
            f"{table.instances[i].name} ({table.gpu_count[i]}x {table.instances[i].gpu}) needing "
            f"{table.planning_gpu_need_gb[i]:.2f} GB per GPU of {table.gpu_capacity_gb[i]:.2f} GB usable "
            f"(safety factor {table.job.safety_factor:g}). Try a larger instance, a lower precision or a smaller batch."),
            best_option=i,
            detail=(f"needs {p.gpu_memory_needed_gb[i]:.2f} GB per GPU > {table.gpu_capacity_gb[i]:.2f} GB usable "
                    f"on {table.instances[i].name}"))
    fits = fits_gpu & table.fits_host
    if not fits.any():
        i = closest(fits_gpu, p.host_memory_needed_gb, table.host_memory_gb)
        return Diagnosis((ReasonKind.HOST_MEMORY,), (
            f"host memory binds: every option that fits GPU memory needs more host memory than the instance has; "
            f"the closest is {table.instances[i].name} at offload {table.offload_ratio[i]:.0%} needing "
            f"{p.host_memory_needed_gb[i]:.1f} GB of {table.host_memory_gb[i]:.1f} GB."), best_option=i,
            detail=(f"needs {p.host_memory_needed_gb[i]:.1f} GB host memory > {table.host_memory_gb[i]:.1f} GB "
                    f"on {table.instances[i].name}"))
    tps = np.where(fits, table.planning_tps, -np.inf)
    i = int(np.argmax(tps))
    seq = float(np.max(np.where(fits, table.planning_tps_per_seq, -np.inf)))
    want = []
    if table.job.slo_tps:
        want.append(f"{table.job.slo_tps:g} tokens/s required")
    if table.job.slo_tps_per_seq:
        want.append(f"{table.job.slo_tps_per_seq:g} tokens/s per sequence required (best {seq:.3f})")
    return Diagnosis((ReasonKind.SLO,), (
        f"SLO binds: the best achievable is {tps[i]:.2f} tokens/s on {table.instances[i].name} "
        f"({table.gpu_count[i]}x {table.instances[i].gpu}, offload {table.offload_ratio[i]:.0%}); "
        f"{'; '.join(want)}."), best_tps=float(tps[i]), best_option=i,
        detail=f"best {tps[i]:.2f} tokens/s on {table.instances[i].name}")


def lost_gpu_reasons(table: OptionTable, best: int | None) -> dict[str, str]:
    """Returns, per GPU type other than the winner's, why it lost *on the winner's engine* (cost, the
    constraint that binds, or an ENGINE reason: the engine cannot run it), and what another engine
    would cost there."""
    out: dict[str, str] = {}
    feasible = table.feasible & np.isfinite(table.cost_per_million_tokens_usd)
    cost = table.cost_per_million_tokens_usd
    win_gpu = table.instances[best].gpu if best is not None else None
    engine = str(table.engine[best]) if best is not None else None
    gpus_of = np.asarray([x.gpu for x in table.instances], dtype=object)
    excluded = table.engine_gpu_excluded.get(engine, {}) if engine is not None else {}
    for gpu in sorted(set(gpus_of.tolist()) | set(excluded)):
        if gpu == win_gpu:
            continue
        on_gpu = gpus_of == gpu
        mine = on_gpu & (table.engine == engine) if engine is not None else on_gpu
        idx, f = np.nonzero(mine)[0], np.nonzero(mine & feasible)[0]
        tag = f" with {engine}" if engine is not None else ""
        if len(f):
            j = min(f.tolist(), key=table.sort_key)
            extra = f" vs ${cost[best]:.3f}" if best is not None else ""
            out[gpu] = f"cost: best ${cost[j]:.3f} per million tokens{tag} on {table.instances[j].name}{extra}"
            continue
        if len(idx) == 0:
            why = Reason(ReasonKind.ENGINE, "engine: " + excluded.get(gpu, f"{engine} cannot run on these instances"))
        else:
            sub = table.take(idx)
            d = diagnose(sub)
            if len(d.kinds) == 1 and d.kinds[0] in (ReasonKind.GPU_MEMORY, ReasonKind.HOST_MEMORY, ReasonKind.SLO):
                why = Reason(d.kinds[0], f"{d.binding} binds: {d.detail}")
            else:
                why = Reason(d.kinds[0] if d.kinds else ReasonKind.CATALOG,
                             f"cannot run ({d.binding}): {sub.structural[0][0].text}")
            if why.kind is ReasonKind.GPU_MEMORY and engine is not None and not table.engine_kv_offload.get(engine, True):
                why = Reason(ReasonKind.ENGINE, why.text + f"; needs KV offload, which {engine} cannot run")
        text = why.text
        others: Any = np.nonzero(on_gpu & feasible & (table.engine != engine))[0] if engine is not None else []
        if len(others):
            k = min(others, key=table.sort_key)
            text += f"; with {table.engine[k]} it would cost ${cost[k]:.3f} per million tokens on {table.instances[k].name}"
        out[gpu] = text
    return out
