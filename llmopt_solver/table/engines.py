"""The engine as an option dimension: which engines compete for a job, and what each may run.

``resolve_engines`` turns ``--engine auto|NAME[,NAME...]`` into engine names (InputError, exit 2,
for unknown names or an engine that cannot run the model or precision). ``engine_job`` narrows a
job to what one engine can execute: its active-KV offload mechanisms (none: offload ratio 0 only;
all-or-none for some KV precisions), its weight offload (any fraction or all-or-none);
``engine_instances`` keeps the instances it can run on (tensor parallelism, minimum compute
capability per precision) and says why the others are left out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from llmopt_solver.catalog.engines import EngineProfile
from llmopt_solver.catalog.loader import Catalog
from llmopt_solver.catalog.records import GpuSpec, InstanceSpec
from llmopt_solver.errors import InputError

# JobSpec lives in table.options, which imports this module: jobs are typed Any here to keep the
# import graph acyclic (tests/test_architecture.py).
JobSpec = Any

AUTO = "auto"
# Bytes per value of the full-precision copy a dequantise-in-framework engine writes and reads
# back before the matmul (FlexGen decompresses its int4 groups to fp16 in PyTorch:
# flexllmgen/compression.py); fused kernels read the packed values directly.
DEQUANT_TARGET_BYTES = 2.0


def resolve_engines(catalog: Catalog, spec: str | None, model_type: str, precision: str, kv_precision: str | None,
                    field: str = "--engine") -> tuple[str, ...]:
    """Returns the engine names a job may use, in tie-rank order.

    ``auto`` (or None): every profile with ``auto`` true that can run the model and precisions
    ('ideal' is what-if only and never in auto). A named list: those engines, each of which must
    be able to run the job. InputError (exit 2) names the field and the allowed values.
    ``kv_precision`` None: the engine's default KV dtype (see ``default_kv``), always supported.
    """
    text = (spec or AUTO).strip()
    if text.lower() == AUTO:
        names = [p.name for p in catalog.engines.values()
                 if p.auto and p.cannot_run(model_type, precision, kv_precision or default_kv(p, precision)) is None]
        if not names:
            raise InputError(field=field, problem=f"no engine can run {model_type} with {precision} weights "
                             f"and a {kv_precision or 'default'} KV cache", allowed=", ".join(sorted(catalog.engines)))
        return _ordered(catalog, names)
    names = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        try:
            prof = catalog.engine(item)
        except InputError as exc:
            raise InputError(field=field, problem=exc.problem, allowed=f"auto, {exc.allowed}" if exc.allowed else "auto") from None
        why = prof.cannot_run(model_type, precision, kv_precision or default_kv(prof, precision))
        if why is not None:
            able = [p.name for p in catalog.engines.values()
                    if p.cannot_run(model_type, precision, kv_precision or default_kv(p, precision)) is None]
            raise InputError(field=field, problem=f"{why}", allowed=f"auto, {', '.join(sorted(able))}" if able else "none")
        if prof.name not in names:
            names.append(prof.name)
    if not names:
        raise InputError(field=field, problem="empty engine list", allowed=f"auto, {', '.join(sorted(catalog.engines))}")
    return _ordered(catalog, names)


def default_kv(prof: EngineProfile, precision: str) -> str:
    """Returns the KV precision an engine uses when none is asked for: the weights' if it stores
    KV in that precision, else fp16 (vLLM/SGLang 'auto' KV dtype = the model's activation dtype;
    an int4 AWQ model keeps an fp16 KV cache)."""
    return precision if precision in prof.mechanisms.kv_precisions else "fp16"


def _ordered(catalog: Catalog, names: list[str]) -> tuple[str, ...]:
    return tuple(sorted(names, key=lambda n: (catalog.engines[n].tie_rank, n)))


def engine_job(job: JobSpec, prof: EngineProfile) -> JobSpec:
    """Returns ``job`` narrowed to what ``prof`` executes (KV offload grid, modes, weight offload)."""
    m = prof.mechanisms
    modes = set(m.active_kv_offload)
    if job.offload_mode != "auto":
        modes &= {job.offload_mode}
    kv = job.kv_precision.value if job.kv_precision is not None else default_kv(prof, job.precision.value)
    ratios = job.offload_ratios if modes else tuple(r for r in job.offload_ratios if r == 0.0)
    if kv in m.kv_offload_all_or_none:
        ratios = tuple(r for r in ratios if r in (0.0, 1.0))  # e.g. FlexGen --compress-cache: 0% or 100%
    mode = "auto" if len(modes) != 1 else next(iter(modes))
    changes: dict[str, object] = {"offload_ratios": ratios, "offload_mode": mode, "engines": (prof.name,)}
    if job.kv_precision is None and kv != job.precision.value:
        from llmopt_solver.catalog.precision import Precision

        changes["kv_precision"] = Precision(kv)
    if m.weight_offload == "none":
        changes["weight_offload_step"] = 0.0
        if job.weight_offload_fixed:
            changes["weight_offload_fixed"] = None  # caller checks: see engine_reason_for_fixed
    elif m.weight_offload_fractions == "all_or_none" and job.weight_offload_step > 0:
        changes["weight_offload_step"] = 1.0  # the grid {0, 1}: all parameters offloaded, or none
    return dataclasses.replace(job, **changes)


def engine_instances(catalog: Catalog, prof: EngineProfile, job: JobSpec,
                     instances: list[InstanceSpec]) -> tuple[list[InstanceSpec], dict[str, str]]:
    """Returns (the instances ``prof`` can run ``job`` on, {GPU type: why not} for the others).

    An instance is left out when its GPU count needs tensor parallelism the engine lacks, or its
    GPU is older than the engine's minimum compute capability (for the job's precisions).
    """
    kept: list[InstanceSpec] = []
    why: dict[str, str] = {}
    kv = job.kv_precision.value if job.kv_precision is not None else default_kv(prof, job.precision.value)
    for inst in instances:
        g = catalog.gpu(inst.gpu)
        problem = prof.mechanisms.gpu_problem(g.name, g.compute_capability, job.precision.value, kv)
        if problem is not None:
            why.setdefault(inst.gpu, f"{prof.name} {problem}")
        elif inst.gpu_count > 1 and not prof.mechanisms.tensor_parallel:
            why.setdefault(inst.gpu, f"{prof.name} has no tensor parallelism ({inst.gpu_count} GPUs)")
        else:
            kept.append(inst)
    kept_gpus = {i.gpu for i in kept}
    return kept, {k: v for k, v in why.items() if k not in kept_gpus}


def fixed_choice_problem(prof: EngineProfile, job: JobSpec, gpu_count: int, gpu: GpuSpec | None = None) -> str | None:
    """Returns why ``prof`` cannot run a fixed choice (predict's ratios, GPU type and count), or None."""
    m = prof.mechanisms
    r = max(job.offload_ratios) if job.offload_ratios else 0.0
    kv = job.kv_precision.value if job.kv_precision is not None else default_kv(prof, job.precision.value)
    if gpu is not None:
        problem = m.gpu_problem(gpu.name, gpu.compute_capability, job.precision.value, kv)
        if problem is not None:
            return f"{prof.name} {problem}"
    if kv in m.kv_offload_all_or_none and 0 < r < 1:
        return f"{prof.name} offloads a {kv} KV cache all or none (--offload-ratio 0 or 1, not {r:g})"
    wf = job.weight_offload_fixed
    if wf and 0 < wf < 1 and m.weight_offload_fractions == "all_or_none":
        return f"{prof.name} offloads the weights all or none (--weight-offload-ratio 0 or 1, not {wf:g})"
    if r > 0 and not m.active_kv_offload:
        return f"{prof.name} cannot offload active KV (--offload-ratio {r:g}); its KV host tier is for reuse only" \
            if m.reuse_kv_offload else f"{prof.name} cannot offload active KV (--offload-ratio {r:g})"
    if r > 0 and job.offload_mode != "auto" and job.offload_mode not in m.active_kv_offload:
        return f"{prof.name} has no {job.offload_mode!r} KV offload; it has: {', '.join(m.active_kv_offload)}"
    if job.weight_offload_fixed and m.weight_offload == "none":
        return f"{prof.name} cannot offload weights (--weight-offload-ratio {job.weight_offload_fixed:g})"
    if gpu_count > 1 and not m.tensor_parallel:
        return f"{prof.name} has no tensor parallelism ({gpu_count} GPUs)"
    return None


def dequant_bytes(prof: EngineProfile, precision: str, kv_precision: str) -> tuple[float, float]:
    """Returns (weight, KV) bytes per value of the dequantised copy ``prof`` writes and reads (0: fused)."""
    m = prof.mechanisms
    w = DEQUANT_TARGET_BYTES if m.weight_precisions.get(precision) == "dequant" else 0.0  # type: ignore[call-overload]
    kv = DEQUANT_TARGET_BYTES if kv_precision in m.kv_dequant else 0.0
    return w, kv


@dataclass(frozen=True)
class EngineExecution:
    """How one engine executes a run, as ``predictor.physics.predict`` takes it: the one owner of
    these engine rules for the option table (``table.build``) and the validation replay
    (``measure.replay``), so both score the same physics.

    ``weight_dequant_bytes`` / ``kv_dequant_bytes``: bytes per value of the dequantised copy (0:
    fused kernels); ``dequant_traffic_bytes``: GPU memory traffic per dequantised value
    (``EngineMechanisms.dequant_traffic_bytes``); ``weight_stream_sync``: offloaded weights
    copied with no prefetch (HF Accelerate); ``weight_all_or_none``: weights offloaded whole
    (ZeRO-Inference), so any offload is all of them; ``dequant_min_tokens``: passes of fewer
    tokens run a fused kernel instead (``EngineMechanisms.dequant_min_tokens``);
    ``memory_reserve_gb``: GPU memory the engine leaves free after sizing its KV cache (None: a
    fraction of the GPU, ``measure.schedule.FRAMEWORK_MEMORY_FRACTION``); ``kv_read_per_query_head``:
    decode attention reads each KV head once per query head (``EngineMechanisms.kv_read_per_query_head``);
    ``routing_sequences``: distinct sequences MoE routing sees (a run's property, set by the replay
    for a batch of identical prompts the engine decodes alike, ``EngineMechanisms.same_prompts_decode_alike``;
    None: every sequence).
    """

    weight_dequant_bytes: float = 0.0
    kv_dequant_bytes: float = 0.0
    dequant_traffic_bytes: float = 2.0 * DEQUANT_TARGET_BYTES
    weight_stream_sync: bool = False
    weight_all_or_none: bool = False
    dequant_min_tokens: int = 0
    memory_reserve_gb: float | None = None
    kv_read_per_query_head: bool = False
    routing_sequences: float | None = None

    def weight_offload(self, fraction: float) -> float:
        """Returns the weight fraction the engine actually offloads when ``fraction`` is asked for."""
        return 1.0 if self.weight_all_or_none and fraction > 0 else fraction


def execution(prof: EngineProfile | None, precision: str, kv_precision: str,
              identical_prompts: bool = False) -> EngineExecution:
    """Returns how ``prof`` runs ``precision`` weights and a ``kv_precision`` KV cache (None: fused, no rules);
    ``identical_prompts``: every sequence of the batch has the same prompt (a measured run's setup)."""
    if prof is None:
        return EngineExecution()
    m = prof.mechanisms
    w, kv = dequant_bytes(prof, precision, kv_precision)
    return EngineExecution(w, kv, m.dequant_traffic_bytes, m.weight_stream_sync,
                           m.weight_offload_fractions == "all_or_none", m.dequant_min_tokens, m.memory_reserve_gb,
                           m.kv_read_per_query_head,
                           1.0 if identical_prompts and m.same_prompts_decode_alike else None)


def grid_rows(catalog: Catalog, job: JobSpec, instances: list[InstanceSpec]) -> int:
    """Returns how many rows the option table of ``job`` will have before mode selection (the sum
    over its engines of instances x batch sizes x offload levels x offload modes)."""
    total = 0
    for name in job.engines:
        prof = catalog.engine(name)
        ej = engine_job(job, prof)
        modes = 2 if ej.offload_mode == "auto" and len(prof.mechanisms.active_kv_offload) == 2 else 1
        total += len(engine_instances(catalog, prof, ej, instances)[0]) * len(job.batch_sizes) * len(ej.offload_ratios) * modes
    return total
