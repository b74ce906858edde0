"""One job end to end: filter instances, build the option table, solve the MILP, re-check.

Also explains failure: which constraint binds and the best that is achievable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from llmopt_solver.catalog.loader import Catalog
from llmopt_solver.catalog.precision import Precision
from llmopt_solver.errors import InputError, Reason, ReasonKind, SolverError
from llmopt_solver.catalog.records import InstanceSpec
from llmopt_solver.milp.single_job import JobCoefficients, solve_single_job
from llmopt_solver.predictor.physics import GB, activation_bytes
from llmopt_solver.milp.solver import SolveResult, SolverName, Status
from llmopt_solver.table.options import JobSpec, OptionTable, build_table

COST_TIE_REL = 1e-9  # options within this relative cost are ties, broken by OptionTable.sort_key


def select_instances(
    catalog: Catalog,
    gpus: list[str] | None = None,
    instances: list[str] | None = None,
    providers: list[str] | None = None,
) -> list[InstanceSpec]:
    """Returns catalog instances passing the filters, sorted by (provider, name).

    Raises InputError naming the filter for unknown GPU, instance or provider names.
    """
    pool = list(catalog.instances.values())
    if providers:
        known = sorted({i.provider for i in pool})
        wanted = {p.lower() for p in providers}
        for p in wanted - set(known):
            raise InputError(f"--provider: unknown provider {p!r}; allowed: {', '.join(known)}.")
        pool = [i for i in pool if i.provider in wanted]
    if gpus:
        wanted_gpus = set(resolve_names(gpus, catalog.gpu, "--gpus").values())
        pool = [i for i in pool if i.gpu in wanted_gpus]
    if instances:
        wanted = set(resolve_names(instances, catalog.instance, "--instances").values())
        pool = [i for i in pool if i.name in wanted]
    if not pool:
        raise InputError("filters: no instance matches --gpus/--instances/--provider together; "
                         "see `llmopt catalog instances`.")
    return sorted(pool, key=lambda i: (i.provider, i.name))


def resolve_names(names: Iterable[str], lookup: Callable[[str], Any], field: str) -> dict[str, str]:
    """Returns {name as given: name as the catalog spells it}; InputError prefixed with ``field``."""
    out = {}
    for n in names:
        try:
            out[n] = lookup(n).name
        except InputError as exc:
            raise InputError(f"{field}: {exc}") from None
    return out


def offload_levels(step: float) -> tuple[float, ...]:
    """Returns (0, step, 2 step, ..., 1); InputError unless step is in (0, 1] and divides 1."""
    if not (0 < step <= 1):
        raise InputError(f"--offload-step: {step:g} is out of range; allowed: a value in (0, 1] that divides 1 (e.g. 0.05, 0.1, 0.25).")
    k = round(1.0 / step)
    if abs(k * step - 1.0) > 1e-9:
        raise InputError(f"--offload-step: {step:g} does not divide 1; allowed: 1/k for a whole k (e.g. 0.05, 0.1, 0.25, 0.5, 1).")
    return tuple(round(i / k, 12) for i in range(k + 1))


def coefficients(table: OptionTable) -> JobCoefficients:
    """Returns the plain coefficient arrays the MILP reads."""
    p = table.pred
    return JobCoefficients(
        cost_per_million_tokens_usd=table.cost_per_million_tokens_usd, tps=table.planning_tps,
        tps_per_seq=table.planning_tps_per_seq, gpu_memory_needed_gb=table.planning_gpu_need_gb,
        gpu_capacity_gb=table.gpu_capacity_gb, host_memory_needed_gb=p.host_memory_needed_gb,
        host_memory_gb=table.host_memory_gb, slo_tps=table.job.slo_tps,
        slo_tps_per_seq=table.job.slo_tps_per_seq,
    )


def candidates(table: OptionTable) -> np.ndarray:
    """Returns indices of options the MILP may choose: priced, supported, finite predictions."""
    ok = table.usable & np.isfinite(table.cost_per_million_tokens_usd) & np.isfinite(table.pred.tps)
    return np.nonzero(ok)[0]


@dataclass
class Diagnosis:
    """Why nothing is feasible: the binding constraint and the best achievable."""

    binding: str  # "GPU memory", "host memory", "SLO", "precision", "price", ...
    message: str
    best_tps: float | None = None
    best_option: int | None = None


@dataclass
class Outcome:
    """Result of one job: table, solver result, chosen option, ranking of feasible options."""

    table: OptionTable
    result: SolveResult
    best: int | None
    ranking: list[int]
    memory_gb: dict[str, float]
    diagnosis: Diagnosis | None = None
    lost_gpus: dict[str, str] = field(default_factory=dict)


def memory_totals(table: OptionTable, engine: str | None = None) -> dict[str, float]:
    """Returns model-level memory (GB, one copy, no parallelism): weights, full KV, activations."""
    job, shape = table.job, table.shape
    b = float(max(job.batch_sizes)) if len(job.batch_sizes) > 1 else float(job.batch_sizes[0])
    if len(job.batch_sizes) > 1 and table.best_batch is not None:
        b = float(table.best_batch)
    weights = shape.total_params * job.precision.bytes_per_value
    # the KV dtype of the reported engine (e.g. fp16 under int4 AWQ weights), else the job's
    kv_prec = Precision(table.engine_kv.get(engine, job.kv.value)) if engine is not None else job.kv
    kv = b * (job.input_len + job.output_len) * shape.kv_values_per_token * kv_prec.bytes_per_value
    act = activation_bytes(shape, np.asarray([b]), float(job.input_len), job.precision.activation_bytes, np.asarray([1.0]))[0]
    return {"weights_gb": round(weights / GB, 6), "kv_cache_gb": round(kv / GB, 6), "activations_gb": round(float(act) / GB, 6)}


def diagnose(table: OptionTable) -> Diagnosis:
    """Returns the binding constraint when no option is feasible, with the best achievable."""
    usable = table.usable & np.isfinite(table.hourly_cost_usd)
    if not usable.any():
        reasons = sorted({r.split(":")[0] for rs in table.structural for r in rs})
        sample = table.structural[0][0] if table.structural and table.structural[0] else "no instance"
        return Diagnosis(binding=", ".join(reasons) or "catalog", message=f"no instance can run this job at all ({sample}; and similar for the others).")
    p = table.pred
    fits_gpu = usable & table.fits_gpu
    if not fits_gpu.any():
        ratio = np.where(usable, table.planning_gpu_need_gb / table.gpu_capacity_gb, np.inf)
        i = int(np.argmin(ratio))
        no_kv = sorted({str(e) for e in table.engine[usable]} - {e for e, ok in table.engine_kv_offload.items() if ok})
        how = ("even with the KV cache fully offloaded" if not no_kv else
               f"({', '.join(no_kv)} cannot offload active KV; engines that can: flexgen (OPT), hf-accelerate, deepspeed-zero)")
        return Diagnosis("GPU memory", (
            f"GPU memory binds: no instance fits {how}; the closest is "
            f"{table.instances[i].name} ({table.gpu_count[i]}x {table.instances[i].gpu}) needing "
            f"{table.planning_gpu_need_gb[i]:.2f} GB per GPU of {table.gpu_capacity_gb[i]:.2f} GB usable "
            f"(safety factor {table.job.safety_factor:g}). Try a larger instance, a lower precision or a smaller batch."),
            best_option=i)
    fits = fits_gpu & table.fits_host
    if not fits.any():
        ratio = np.where(fits_gpu, p.host_memory_needed_gb / table.host_memory_gb, np.inf)
        i = int(np.argmin(ratio))
        return Diagnosis("host memory", (
            f"host memory binds: every option that fits GPU memory needs more host memory than the instance has; "
            f"the closest is {table.instances[i].name} at offload {table.offload_ratio[i]:.0%} needing "
            f"{p.host_memory_needed_gb[i]:.1f} GB of {table.host_memory_gb[i]:.1f} GB."), best_option=i)
    tps = np.where(fits, table.planning_tps, -np.inf)
    i = int(np.argmax(tps))
    seq = float(np.max(np.where(fits, table.planning_tps_per_seq, -np.inf)))
    want = []
    if table.job.slo_tps:
        want.append(f"{table.job.slo_tps:g} tokens/s required")
    if table.job.slo_tps_per_seq:
        want.append(f"{table.job.slo_tps_per_seq:g} tokens/s per sequence required (best {seq:.3f})")
    return Diagnosis("SLO", (
        f"SLO binds: the best achievable is {tps[i]:.2f} tokens/s on {table.instances[i].name} "
        f"({table.gpu_count[i]}x {table.instances[i].gpu}, offload {table.offload_ratio[i]:.0%}); "
        f"{'; '.join(want)}."), best_tps=float(tps[i]), best_option=i)


def lost_gpu_reasons(table: OptionTable, best: int | None) -> dict[str, str]:
    """Returns, per GPU type other than the winner's, why it lost *on the winner's engine* (memory,
    SLO, cost, or an ENGINE reason: the engine cannot run it), and what another engine would cost."""
    out: dict[str, str] = {}
    feasible = table.feasible & np.isfinite(table.cost_per_million_tokens_usd)
    cost = table.cost_per_million_tokens_usd
    win_gpu = table.instances[best].gpu if best is not None else None
    engine = str(table.engine[best]) if best is not None else None
    gpus_of = np.asarray([x.gpu for x in table.instances], dtype=object)
    for gpu in sorted(set(gpus_of.tolist())):
        if gpu == win_gpu:
            continue
        on_gpu = gpus_of == gpu
        mine = on_gpu & (table.engine == engine) if engine is not None else on_gpu
        idx, f = np.nonzero(mine)[0], np.nonzero(mine & feasible)[0]
        tag = f" with {engine}" if engine is not None else ""
        if len(f):
            j = min(f, key=table.sort_key)
            extra = f" vs ${cost[best]:.3f}" if best is not None else ""
            out[gpu] = f"cost: best ${cost[j]:.3f} per million tokens{tag} on {table.instances[j].name}{extra}"
            continue
        if len(idx) == 0:
            why = Reason(ReasonKind.ENGINE, f"engine: {engine} cannot run on these instances "
                                            f"(no tensor parallelism for their GPU counts)")
        else:
            sub = table.take(idx)
            why = Reason(ReasonKind.CATALOG, diagnose(sub).message.split(":")[0] + ": " + _short_reason(sub))
            prof_offload = table.engine_kv_offload.get(engine, True) if engine is not None else True
            if why.text.startswith("GPU memory") and not prof_offload:
                why = Reason(ReasonKind.ENGINE, why.text + f"; needs KV offload, which {engine} cannot run")
        text = why.text
        others = np.nonzero(on_gpu & feasible & (table.engine != engine))[0] if engine is not None else []
        if len(others):
            k = min(others, key=table.sort_key)
            text += f"; with {table.engine[k]} it would cost ${cost[k]:.3f} per million tokens on {table.instances[k].name}"
        out[gpu] = text
    return out


def _short_reason(sub: OptionTable) -> str:
    d = diagnose(sub)
    p = sub.pred
    if d.binding == "GPU memory" and d.best_option is not None:
        i = d.best_option
        return f"needs {p.gpu_memory_needed_gb[i]:.2f} GB per GPU > {sub.gpu_capacity_gb[i]:.2f} GB usable on {sub.instances[i].name}"
    if d.binding == "host memory" and d.best_option is not None:
        i = d.best_option
        return f"needs {p.host_memory_needed_gb[i]:.1f} GB host memory > {sub.host_memory_gb[i]:.1f} GB on {sub.instances[i].name}"
    if d.binding == "SLO" and d.best_tps is not None:
        return f"best {d.best_tps:.2f} tokens/s on {sub.instances[d.best_option].name}"  # type: ignore[index]
    return d.message


def recheck(catalog: Catalog, table: OptionTable, i: int) -> None:
    """Re-predicts option ``i`` alone and raises SolverError if it disagrees with the table."""
    job = table.job
    mode = table.mode_name(i)
    single = JobSpec(**{**job.__dict__, "batch_sizes": (int(table.batch_size[i]),),
                        "offload_ratios": (float(table.offload_ratio[i]),),
                        "weight_offload_fixed": float(table.weight_offload[i]),
                        "engines": (str(table.engine[i]),),
                        "offload_mode": "auto" if mode == "none" else mode})  # type: ignore[arg-type]
    t1 = build_table(catalog, single, [table.instances[i]])
    for name in ("total_s", "gpu_memory_needed_gb", "host_memory_needed_gb"):
        a, b = getattr(t1.pred, name)[0], getattr(table.pred, name)[i]
        if not np.isclose(a, b, rtol=1e-9, atol=0):
            raise SolverError(f"re-check failed: {name} {a} != {b} for {table.instances[i].name}")
    if not t1.feasible[0]:
        raise SolverError(f"re-check failed: chosen option on {table.instances[i].name} is infeasible: {t1.reasons(0)}")


def optimize(
    catalog: Catalog,
    job: JobSpec,
    instances: list[InstanceSpec],
    solver: SolverName = "cbc",
    time_limit_s: float | None = None,
) -> Outcome:
    """Returns the cheapest feasible option for ``job`` (by MILP), re-checked, with the ranking."""
    table = build_table(catalog, job, instances)
    cand = candidates(table)
    result, best = solve_single_job(coefficients(table), cand, solver=solver, time_limit_s=time_limit_s)
    feasible = [int(i) for i in np.nonzero(table.feasible & np.isfinite(table.cost_per_million_tokens_usd))[0]]
    ranking = sorted(feasible, key=table.sort_key)
    if result.status is Status.ERROR:
        raise SolverError(f"solver: {result.solver} failed or hit the time limit ({time_limit_s}s) without a solution.")
    if best is not None:
        # Ties within COST_TIE_REL are broken by the stable key, so output is byte-identical.
        z = table.cost_per_million_tokens_usd[best]
        ties = [i for i in ranking if table.cost_per_million_tokens_usd[i] <= z * (1 + COST_TIE_REL)]
        if ties:
            best = min(ties, key=table.sort_key)
        recheck(catalog, table, best)
        table.best_batch = int(table.batch_size[best])
        ranking = [best] + [i for i in ranking if i != best]
    outcome = Outcome(table=table, result=result, best=best, ranking=ranking, memory_gb={})
    outcome.memory_gb = memory_totals(table, None if best is None else str(table.engine[best]))
    if best is None:
        outcome.diagnosis = diagnose(table)
    outcome.lost_gpus = lost_gpu_reasons(table, best)
    return outcome


