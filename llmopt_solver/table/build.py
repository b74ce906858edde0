"""Building the option table of one job: hardware arrays from the catalog, one vectorised predictor
call per engine, the offload mechanism and weight-offload fraction kept per option, and the band.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from llmopt_solver.catalog.engines import EngineProfile
from llmopt_solver.catalog.loader import Catalog
from llmopt_solver.catalog.model_shape import ModelShape
from llmopt_solver.catalog.precision import Precision
from llmopt_solver.catalog.records import InstanceSpec
from llmopt_solver.errors import Reason, ReasonKind
from llmopt_solver.predictor.memory import GB, resident_bytes
from llmopt_solver.predictor.physics import Hardware, OffloadMode, Prediction, predict
from llmopt_solver.predictor.uncertainty import memory_quantile_factor
from llmopt_solver.table.engines import engine_instances, engine_job, execution
from llmopt_solver.table.options import JobSpec, OptionTable, fits_gpu, gpu_capacity_gb


def hardware_arrays(catalog: Catalog, instances: list[InstanceSpec], precision: Precision,
                    engine: str | None = None) -> Hardware:
    """Returns per-instance Hardware arrays for ``precision`` on ``engine`` (peak NaN where
    unsupported); runtime parameters are the (engine, GPU) ones, see Catalog.efficiency."""
    per_gpu: dict[str, int] = {}  # GPU name -> row of ``gpu_rows``: resolved once per GPU type
    gpu_rows: list[dict[str, float]] = []
    limits: list[tuple[float, float, float]] = []  # host GB/s per vCPU, host GB/s cap, CPU GFLOP/s per vCPU
    pcie_ring: list[bool] = []  # no NVLink: the tensor-parallel ring runs over PCIe
    for inst in instances:
        if inst.gpu in per_gpu:
            continue
        per_gpu[inst.gpu] = len(gpu_rows)
        g = catalog.gpu(inst.gpu)
        e = catalog.efficiency(g.name, engine)
        peak = getattr(g, precision.peak_field)
        # NVLink figures are bidirectional per GPU; per direction is half. No NVLink: PCIe.
        link, link_eff = ((g.nvlink_gb_s / 2.0, e.nvlink) if g.nvlink_gb_s else (g.host_link_gb_s, e.pcie))
        gpu_rows.append(dict(
            gpu_memory_gb=g.memory_gb, mem_bw_gb_s=g.memory_bandwidth_gb_s,
            peak_tflops=np.nan if peak is None else peak, host_link_gb_s=g.host_link_gb_s,
            gpu_link_gb_s=link, eff_compute_prefill=e.compute_prefill, eff_compute_decode=e.compute_decode,
            eff_memory_bw=e.memory_bw, eff_kv_bw=e.memory_bw if e.kv_bw is None else e.kv_bw,
            eff_pcie=e.pcie, eff_gpu_link=link_eff if e.allreduce_bw is None else e.allreduce_bw,
            layer_overhead_s=e.layer_overhead_s, allreduce_latency_s=e.allreduce_latency_s,
            seq_overhead_s=e.seq_overhead_s, step_overhead_s=e.step_overhead_s, eff_cross_numa=e.cross_numa_bw,
            dequant_layer_overhead_s=e.dequant_layer_overhead_s, dequant_warmup_s=e.dequant_warmup_s,
            reserve_gb=e.reserve_gb, host_reserve_gb=e.host_reserve_gb,
        ))
        limits.append((e.host_bw_gb_s_per_vcpu, e.host_bw_max_gb_s, e.cpu_gflops_per_vcpu))
        pcie_ring.append(not g.nvlink_gb_s)
    gi = np.asarray([per_gpu[x.gpu] for x in instances], dtype=np.int64)
    arrays = {k: np.asarray([float(r[k]) for r in gpu_rows], dtype=float)[gi] for k in (gpu_rows[0] if gpu_rows else ())}
    lim = np.asarray(limits, dtype=float).reshape(-1, 3)[gi]
    vcpus = np.asarray([x.vcpus for x in instances], dtype=float)
    arrays["gpu_count"] = np.asarray([x.gpu_count for x in instances], dtype=np.int64)
    # All GPUs of an instance form the tensor-parallel ring; over PCIe it crosses NUMA nodes if they do.
    arrays["numa_crossing"] = (np.asarray(pcie_ring, dtype=bool).reshape(-1)[gi]
                               & (np.asarray([x.gpu_numa_nodes for x in instances], dtype=np.int64) > 1))
    arrays["host_memory_gb"] = np.asarray([float(x.host_memory_gb) for x in instances], dtype=float)
    arrays["host_bw_gb_s"] = np.minimum(lim[:, 0] * vcpus, lim[:, 1])
    arrays["cpu_gflops"] = lim[:, 2] * vcpus
    if not gpu_rows:  # no instances: every array empty
        arrays.update({k: np.zeros(0) for k in Hardware.__dataclass_fields__ if k not in arrays})
    return Hardware(**arrays)


def _structural(job: JobSpec, shape: ModelShape, inst: InstanceSpec, peak: float, price: float | None) -> list[Reason]:
    out = []
    if not np.isfinite(peak):
        out.append(Reason(ReasonKind.PRECISION, f"precision: {inst.gpu} has no {job.precision.value} tensor peak in the catalog"))
    if shape.num_heads % inst.gpu_count:
        out.append(Reason(ReasonKind.TENSOR_PARALLEL, f"tensor parallelism: {shape.num_heads} attention heads do not "
                                                      f"divide over {inst.gpu_count} GPUs"))
    if price is None:
        out.append(Reason(ReasonKind.PRICE, "price: no " + ("spot" if job.spot else "on-demand") + " price in the catalog"))
    return out


def _min_weight_offload(job: JobSpec, hw: Hardware, need_gb: np.ndarray, weights_gb: np.ndarray,
                        memory_factor: np.ndarray) -> np.ndarray:
    """Returns per row the smallest grid weight-offload fraction that fits GPU memory.

    ``need_gb``, ``weights_gb``: the GPU memory need and the weights per GPU with nothing offloaded.
    GPU memory need falls linearly in the fraction w (weights leave, one layer's share is staged
    twice), so the smallest fitting w is closed-form. Larger w on the same row is dominated: same
    price, never faster (more PCIe traffic), more host memory; so only the smallest is kept.
    Rows that fit without weight offload keep w = 0; rows that never fit get w = 1. The test is
    the one feasibility uses: the planning need (``memory_factor`` x need, the P-quantile under
    ``confidence``) against the usable capacity.
    """
    cap = gpu_capacity_gb(job.safety_factor, hw.gpu_memory_gb) / memory_factor
    over = need_gb - cap
    slope = weights_gb * (1.0 - 2.0 / max(1, job.model.shape().num_layers))
    step = job.weight_offload_step
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.where(over > 0, over / slope, 0.0)
    w = np.minimum(np.ceil(np.round(need / step, 9)) * step, 1.0)
    return np.where(np.isfinite(w), w, 1.0)


# The throughput band's sigma doubles per doubling of batch size or length outside the calibrated
# range (a fit on batch <= 32 was 3.1x off at batch 256 in issue 12; no data says how far the
# error grows, so the band says "unknown" fast rather than carry a narrow band into the dark).
EXTRAPOLATION_SIGMA_FACTOR = 2.0


def _doublings(x: np.ndarray | float, rng: tuple[int, int] | None) -> np.ndarray:
    """Returns how many doublings ``x`` lies outside ``rng`` (0 inside, or with no range)."""
    x = np.asarray(x, dtype=float)
    if rng is None:
        return np.zeros(x.shape)
    return np.maximum(0.0, np.maximum(np.log2(x / rng[1]), np.log2(rng[0] / x)))


def extrapolation_doublings(unc: list[Any], inst: np.ndarray, batch: np.ndarray, input_len: int,
                            output_len: int) -> np.ndarray:
    """Returns per option the doublings outside its GPU's calibrated batch and length ranges."""
    out = np.zeros(len(inst))
    by_ranges: dict[tuple[Any, Any, Any], list[int]] = {}  # instances sharing ranges: one pass
    for k, u in enumerate(unc):
        ranges = (u.batch_range, u.input_len_range, u.output_len_range)
        if ranges != (None, None, None):  # no range: 0 doublings
            by_ranges.setdefault(ranges, []).append(k)
    for (b_rng, i_rng, o_rng), ks in by_ranges.items():
        m = np.isin(inst, ks)
        if m.any():
            out[m] = _doublings(batch[m], b_rng) + _doublings(input_len, i_rng) + _doublings(output_len, o_rng)
    return out


class BuildMemo:
    """What tables of one catalog share, kept across tables: per (engine, precision, instance pool)
    the instances the engine runs, the hardware arrays, the uncertainty records and the structural
    reasons. Values are never mutated after they are stored. One per caller (e.g. a plan's
    ``TableCache``), never global, so a changed catalog never sees stale entries."""

    def __init__(self) -> None:
        self._memo: dict[Any, Any] = {}

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        """Returns the value stored under ``key``, made by ``make()`` the first time."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]


def build_table(catalog: Catalog, job: JobSpec, instances: list[InstanceSpec],
                memo: BuildMemo | None = None) -> OptionTable:
    """Returns the option table of ``job`` over engines x ``instances`` x offload levels x batch sizes.

    Each engine of ``job.engines`` contributes only what it can execute (``engine_job``,
    ``engine_instances``), predicted with its own runtime parameters; the tables are stacked.
    ``memo``: per-pool work shared with other tables of the same catalog (a fresh one by default).
    """
    memo = BuildMemo() if memo is None else memo
    names = tuple(x.name for x in instances)
    parts = []
    for name in job.engines:
        prof = catalog.engine(name)
        ej = engine_job(job, prof)
        kv = ej.kv.value
        key = ("engine_instances", prof.name, ej.precision.value, kv, names)
        kept, excluded = memo.get(key, partial(engine_instances, catalog, prof, ej, instances))
        part = _build_engine(catalog, ej, kept, prof, memo)
        part.engine_gpu_excluded = {prof.name: excluded}
        parts.append(part)
    return _stack(job, parts)


def _stack(job: JobSpec, parts: list[OptionTable]) -> OptionTable:
    """Returns one table holding the options of ``parts`` (instance lists concatenated)."""
    if len(parts) == 1:
        return dataclasses.replace(parts[0], job=job)
    offsets = np.cumsum([0] + [len(t.instance_list) for t in parts[:-1]])
    cat = lambda name: np.concatenate([getattr(t, name) for t in parts])  # noqa: E731
    return OptionTable(
        job=job, shape=parts[0].shape, instance_list=[x for t in parts for x in t.instance_list],
        inst_idx=np.concatenate([t.inst_idx + o for t, o in zip(parts, offsets)]).astype(np.int64),
        batch_size=cat("batch_size"), offload_ratio=cat("offload_ratio"), mode=cat("mode"),
        weight_offload=cat("weight_offload"), gpu_memory_gb=cat("gpu_memory_gb"), gpu_count=cat("gpu_count"),
        host_memory_gb=cat("host_memory_gb"), hourly_cost_usd=cat("hourly_cost_usd"),
        pred=Prediction(**{k: np.concatenate([getattr(t.pred, k) for t in parts]) for k in Prediction.__dataclass_fields__}),
        inst_reasons=[r for t in parts for r in t.inst_reasons], unc_bias=cat("unc_bias"), unc_sigma_low=cat("unc_sigma_low"),
        unc_sigma_high=cat("unc_sigma_high"),
        unc_memory_sigma=cat("unc_memory_sigma"), engine=cat("engine"), engine_rank=cat("engine_rank"),
        extrapolation=cat("extrapolation"),
        engine_kv_offload={k: v for t in parts for k, v in t.engine_kv_offload.items()},
        engine_kv={k: v for t in parts for k, v in t.engine_kv.items()},
        engine_gpu_excluded={k: v for t in parts for k, v in t.engine_gpu_excluded.items()},
    )


def _uncertainty(catalog: Catalog, instances: list[InstanceSpec],
                 prof: EngineProfile) -> tuple[list[Any], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Returns per instance the uncertainty record on ``prof`` and its bias, lower and upper band
    widths (``Uncertainty.sides``) and memory sigma."""
    unc = [catalog.uncertainty(x.gpu, prof.name) for x in instances]
    return (unc, np.asarray([u.bias for u in unc], dtype=float), np.asarray([u.sides[0] for u in unc], dtype=float),
            np.asarray([u.sides[1] for u in unc], dtype=float), np.asarray([u.memory_sigma for u in unc], dtype=float))


def _pool_reasons(job: JobSpec, shape: ModelShape, instances: list[InstanceSpec],
                  hw: Hardware) -> tuple[np.ndarray, list[list[Reason]]]:
    """Returns per instance its price (USD/h, NaN: none) and structural reasons (``_structural``)."""
    inst_prices = [(x.spot_hourly_usd if job.spot else x.hourly_usd) for x in instances]
    reasons = [_structural(job, shape, x, pk, pr) for x, pk, pr in zip(instances, hw.peak_tflops, inst_prices)]
    return np.asarray([np.nan if p is None else p for p in inst_prices], dtype=float), reasons


def _build_engine(catalog: Catalog, job: JobSpec, instances: list[InstanceSpec], prof: EngineProfile,
                  memo: BuildMemo) -> OptionTable:
    """Returns the option table of ``job`` on one engine (``job`` already narrowed to it).

    With ``offload_mode='auto'`` both mechanisms are predicted for every offloaded option and the
    one that fits memory and is faster is kept.
    """
    shape = job.model.shape()
    pool = (prof.name, tuple(x.name for x in instances))
    hw = memo.get(("hardware", job.precision.value, pool), lambda: hardware_arrays(catalog, instances, job.precision, prof.name))
    ex = execution(prof, job.precision.value, job.kv.value)
    n_i, ratios = len(instances), np.asarray(job.offload_ratios, dtype=float)
    batches = np.asarray(job.batch_sizes, dtype=np.int64)
    modes = {"auto": [OffloadMode.STREAM, OffloadMode.CPU], "stream": [OffloadMode.STREAM],
             "cpu": [OffloadMode.CPU]}[job.offload_mode]
    # Grid order: instance, batch, ratio, mode (mode fastest-varying).
    ii, bb, rr, mm = np.meshgrid(np.arange(n_i), np.arange(len(batches)), np.arange(len(ratios)),
                                 np.arange(len(modes)), indexing="ij")
    ii, bb, rr, mm = ii.ravel(), bb.ravel(), rr.ravel(), mm.ravel()
    mode_arr = np.asarray([int(m) for m in modes], dtype=np.int64)[mm]
    hw_rows = memo.get(("hardware rows", job.precision.value, pool, len(batches), len(ratios), len(modes)),
                       lambda: hw.take(ii))  # the grid's rows depend only on these sizes

    def run(wo: np.ndarray) -> Prediction:  # every row of the grid
        return predict(shape, job.input_len, job.output_len, job.precision.bytes_per_value,
                       job.kv.bytes_per_value, job.precision.activation_bytes, hw_rows,
                       batches[bb], ratios[rr], mode_arr, job.adjust, wo, ex.weight_dequant_bytes,
                       ex.kv_dequant_bytes, ex.weight_stream_sync, ex.dequant_traffic_bytes, ex.dequant_min_tokens,
                       kv_read_per_query_head=ex.kv_read_per_query_head)

    unc, unc_bias, unc_sigma_low, unc_sigma_high, unc_memory_sigma = memo.get(("uncertainty", pool), lambda: _uncertainty(catalog, instances, prof))
    # The memory test of every choice below is the feasibility test: P-quantile need vs capacity.
    memory_factor = memory_quantile_factor(unc_memory_sigma[ii], job.confidence) if n_i else np.ones(0)
    if job.weight_offload_fixed is not None:
        w_off = np.full(len(ii), float(job.weight_offload_fixed))
    elif job.weight_offload_step > 0:  # the memory with nothing offloaded decides the fraction, then one prediction
        zero = np.zeros(len(ii))
        mem = resident_bytes(shape, float(job.input_len), float(job.output_len), job.precision.bytes_per_value,
                             job.kv.bytes_per_value, job.precision.activation_bytes, hw_rows.gpu_count.astype(float),
                             hw_rows.reserve_gb, hw_rows.host_reserve_gb, batches[bb].astype(float), ratios[rr],
                             mode_arr == OffloadMode.CPU, zero, ex.weight_dequant_bytes)
        w_off = _min_weight_offload(job, hw_rows, mem.gpu_need / GB, mem.weights_gpu / GB, memory_factor)
    else:
        w_off = np.zeros(len(ii))
    pred = run(w_off)
    keep = np.ones(len(ii), dtype=bool)
    if len(modes) == 2:
        # Pairs (stream, cpu) are adjacent. Prefer the one that fits GPU and host memory, then the faster.
        cap = gpu_capacity_gb(job.safety_factor, hw.gpu_memory_gb[ii])
        fits = (fits_gpu(pred.gpu_memory_needed_gb * memory_factor, cap)
                & (pred.host_memory_needed_gb <= hw.host_memory_gb[ii]))
        t = np.where(np.isfinite(pred.total_s), pred.total_s, np.inf)
        score = np.where(fits, t, np.inf)
        s_stream, s_cpu = score[0::2], score[1::2]
        t_stream, t_cpu = t[0::2], t[1::2]
        choose_cpu = np.where(np.isfinite(s_stream) | np.isfinite(s_cpu), s_cpu < s_stream, t_cpu < t_stream)
        choose_cpu &= ratios[rr[0::2]] > 0  # nothing offloaded: one row
        keep[0::2] = ~choose_cpu
        keep[1::2] = choose_cpu
    idx = np.nonzero(keep)[0]
    pred = pred.take(idx)
    sel = ii[idx]
    inst_prices, reasons = memo.get(("structural", job.precision.value, job.spot, shape.num_heads, pool),
                                    lambda: _pool_reasons(job, shape, instances, hw))
    prices = inst_prices[sel] if n_i else np.zeros(0)
    extra = extrapolation_doublings(unc, sel, batches[bb[idx]], job.input_len, job.output_len)
    return OptionTable(
        job=job, shape=shape, instance_list=list(instances), inst_idx=sel, batch_size=batches[bb[idx]],
        offload_ratio=ratios[rr[idx]], mode=mode_arr[idx], weight_offload=w_off[idx],
        gpu_memory_gb=hw.gpu_memory_gb[ii[idx]],
        gpu_count=hw.gpu_count[ii[idx]], host_memory_gb=hw.host_memory_gb[ii[idx]],
        hourly_cost_usd=prices,
        pred=pred, inst_reasons=list(reasons),
        unc_bias=unc_bias[sel],
        unc_sigma_low=unc_sigma_low[sel] * EXTRAPOLATION_SIGMA_FACTOR ** extra,
        unc_sigma_high=unc_sigma_high[sel] * EXTRAPOLATION_SIGMA_FACTOR ** extra,
        extrapolation=extra,
        unc_memory_sigma=unc_memory_sigma[sel],
        engine=np.array([prof.name], dtype=object).repeat(len(idx)), engine_rank=np.full(len(idx), prof.tie_rank, dtype=np.int64),
        engine_kv_offload={prof.name: bool(prof.mechanisms.active_kv_offload)},
        engine_kv={prof.name: job.kv.value},
    )
