"""Replay of mapped rows through the predictor: the same ``hardware_arrays`` and ``predict`` as the
option table, so validation scores the physics users get (no second model here).

Rows sharing model, lengths, precision and placement are one vectorised ``predict`` call; Vidur
operator rows go through ``predictor.physics.gemm_roofline_s``. Static batches larger than fit
are run in waves, as vLLM / TensorRT-LLM schedule them (``_predict_in_waves``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from llmopt_solver.catalog.loader import Catalog
from llmopt_solver.catalog.precision import Precision
from llmopt_solver.measure.mapping import Case, Placement, synthetic_instance
from llmopt_solver.measure.rows import Metric
from llmopt_solver.predictor.physics import Hardware, OffloadMode, decode_floor_s, gemm_roofline_s, predict
from llmopt_solver.table.options import hardware_arrays

# Share of GPU memory the serving frameworks use for weights + KV + activations: vLLM's
# gpu_memory_utilization and TensorRT-LLM's kv_cache_free_gpu_mem_fraction both default to 0.9.
FRAMEWORK_MEMORY_FRACTION = 0.9
# HBM capacities are marketed in GiB: an "A100 40GB" holds 40960 MiB = 42.9e9 bytes (EC2 API,
# shared HARDWARE.md section 1); the catalog's memory_gb (1e9 bytes) is the marketed number, a
# conservative 7% under. Waves (below) use the real capacity, since the frameworks do.
GIB_PER_MARKETED_GB = 2**30 / 1e9

_METRICS = {m.value for m in Metric}

EFF_FIELDS = {"compute_prefill": "eff_compute_prefill", "compute_decode": "eff_compute_decode",
              "memory_bw": "eff_memory_bw", "kv_bw": "eff_kv_bw", "layer_overhead_s": "layer_overhead_s",
              "allreduce_latency_s": "allreduce_latency_s",
              "seq_overhead_s": "seq_overhead_s"}


@dataclass
class Prepared:
    """Mapped cases grouped for vectorised prediction; reusable across parameter changes."""

    cases: list[Case]
    groups: list[tuple[np.ndarray, Any, Hardware]] = field(default_factory=list)  # (case idx, key, hw)
    op_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    op_hw: Hardware | None = None
    gpu_of: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    gpu_memory_gb: np.ndarray = field(default_factory=lambda: np.zeros(0))
    batch: np.ndarray = field(default_factory=lambda: np.zeros(0))
    metric_of: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # Metric value or ''
    shapes: dict[str, Any] = field(default_factory=dict)

    @property
    def mapped(self) -> np.ndarray:
        return np.array([c.skip is None for c in self.cases], dtype=bool)

    def restrict(self, mask: np.ndarray) -> "Prepared":
        """Returns a copy that evaluates only the cases in ``mask`` (cheaper repeated evaluation)."""
        groups = []
        for idx, key, hw in self.groups:
            keep = mask[idx]
            if keep.any():
                groups.append((idx[keep], key, hw.take(np.nonzero(keep)[0])))
        out = replace(self, groups=groups)
        if self.op_hw is not None:
            keep = mask[self.op_idx]
            out.op_idx = self.op_idx[keep]
            out.op_hw = self.op_hw.take(np.nonzero(keep)[0]) if keep.any() else None
        return out


def prepare(cases: list[Case], catalog: Catalog) -> Prepared:
    """Returns the cases grouped by (model, lengths, precisions) with their Hardware arrays."""
    prep = Prepared(cases=cases)
    prep.gpu_of = np.array([c.gpu for c in cases], dtype=object)
    prep.batch = np.array([c.batch for c in cases], dtype=float)
    prep.metric_of = np.array([c.metric if c.metric in _METRICS else "" for c in cases], dtype=object)
    prep.shapes = {c.card.name: c.card.shape() for c in cases if c.card is not None and c.skip is None}
    prep.gpu_memory_gb = np.array([catalog.gpu(c.gpu).memory_gb if c.gpu and c.skip is None else math.nan
                                   for c in cases])
    by_key: dict[Any, list[int]] = defaultdict(list)
    ops = []
    for c in cases:
        if c.skip is not None:
            continue
        if c.op:
            ops.append(c.index)
        else:
            assert c.card is not None and c.row.output_len is not None
            by_key[(c.card.name, c.row.input_len, c.row.output_len, c.weight, c.kv, c.placement)].append(c.index)
    for key, idx_list in sorted(by_key.items(), key=lambda kv: str(kv[0])):
        idx = np.asarray(idx_list)
        insts = [synthetic_instance(catalog, cases[i].gpu, cases[i].row.num_gpus) for i in idx]
        hw = hardware_arrays(catalog, insts, key[3])
        keep = _physically_possible(prep, idx, key, hw)
        if keep.any():
            prep.groups.append((idx[keep], key, hw.take(np.nonzero(keep)[0])))
    if ops:
        prep.op_idx = np.asarray(ops)
        insts = [synthetic_instance(catalog, cases[i].gpu, cases[i].row.num_gpus) for i in ops]
        prep.op_hw = hardware_arrays(catalog, insts, Precision.FP16)
    return prep


def metric_values(metric: np.ndarray, prefill_s: np.ndarray, total_s: np.ndarray, b: np.ndarray, s: int,
                  n: int) -> np.ndarray:
    """Returns the predicted figure of each row's metric from one static batch's timing (s, tok/s)."""
    out = np.full(len(metric), np.nan)
    for m, value in ((Metric.E2E, total_s), (Metric.TTFT, prefill_s), (Metric.GEN_TPS, b * n / total_s),
                     (Metric.TOTAL_TPS, b * (s + n) / total_s)):
        sel = metric == m.value
        out[sel] = value[sel]
    return out


def _implied_batch_time_s(metric: str, measured: float, b: float, s: int, n: int) -> float:
    """Returns the static-batch wall time a measured figure implies, s (inf where it implies none)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == Metric.E2E:
            return measured
        if metric == Metric.GEN_TPS:
            return b * n / measured
        if metric == Metric.TOTAL_TPS:
            return b * (s + n) / measured
    return math.inf


def _physically_possible(prep: Prepared, idx: np.ndarray, key: Any, hw: Hardware) -> np.ndarray:
    """Returns False for rows whose measured time beats the physical floor, and marks them skipped.

    The floor: n decode steps, each reading the (per-GPU) weights once at 100% of peak memory
    bandwidth (``Prediction.min_decode_s``). A measurement below it cannot be the stated run
    (e.g. generation stopped early at an end-of-sequence token or a length cap), so it is neither
    scored nor fitted.
    """
    _, s, n, wp, kvp, pl = key
    b = prep.batch[idx]
    p = _predict_placed(prep.shapes[key[0]], s, n, wp, kvp, pl, hw, b)
    meas = np.array([prep.cases[i].measured for i in idx])
    t = np.array([_implied_batch_time_s(str(m), x, float(bb), s, n)
                  for m, x, bb in zip(prep.metric_of[idx], meas, b)])
    floor = decode_floor_s(prep.shapes[key[0]], s, n, kvp.bytes_per_value, hw, b, p.min_decode_s)
    bad = np.isfinite(meas) & (t < floor)
    for j in np.nonzero(bad)[0]:
        prep.cases[idx[j]].skip = (f"physically impossible: implies {t[j]:.3g} s for {n} decode steps, below the "
                                   f"floor of {floor[j]:.3g} s (weights and KV read once per step at peak "
                                   "bandwidth); likely not the stated run (early stop?)")
    return ~bad


def _with_params(hw: Hardware, gpus: np.ndarray, params: dict[str, dict[str, float]] | None) -> Hardware:
    if not params:
        return hw
    changes: dict[str, np.ndarray] = {}
    for gpu, vals in params.items():
        sel = gpus == gpu
        if not sel.any():
            continue
        for name, value in vals.items():
            attr = EFF_FIELDS[name]
            arr = changes.get(attr)
            if arr is None:
                base = getattr(hw, attr)
                if base is None:  # optional arrays: kv_bw defaults to memory_bw, seq overhead to 0
                    base = hw.eff_memory_bw if attr == "eff_kv_bw" else np.zeros(len(gpus))
                arr = changes[attr] = np.array(base, dtype=float, copy=True)
            arr[sel] = value
    return replace(hw, **changes) if changes else hw


@dataclass
class Predicted:
    """Per-case predictions (NaN where skipped) and predicted GPU memory need."""

    value: np.ndarray
    gpu_memory_needed_gb: np.ndarray  # of the whole batch at once
    waves: np.ndarray  # sub-batches the frameworks run when the whole batch does not fit


@dataclass(frozen=True)
class _Timing:
    prefill_s: np.ndarray
    total_s: np.ndarray
    gpu_memory_needed_gb: np.ndarray


def _predict_placed(shape: Any, s: int, n: int, wp: Precision, kvp: Precision, pl: Placement, hw: Hardware,
                    b: np.ndarray) -> Any:
    """Returns ``predict`` for batches ``b`` with placement ``pl`` (same for every option)."""
    m = len(b)
    mode = np.full(m, int(OffloadMode.CPU if pl.cpu_attention else OffloadMode.STREAM))
    return predict(shape, s, n, wp.bytes_per_value, kvp.bytes_per_value, wp.activation_bytes, hw, b,
                   np.full(m, pl.kv_offload), mode, pl.overlap, weight_offload=np.full(m, pl.weight_offload))


def _predict_in_waves(shape: Any, s: int, n: int, wp: Precision, kvp: Precision, pl: Placement, hw: Hardware,
                      b: np.ndarray) -> tuple[_Timing, np.ndarray]:
    """Returns timings of static batches ``b``, run in waves where the whole batch does not fit.

    vLLM and TensorRT-LLM never fail a static batch whose KV cache exceeds the free memory: their
    schedulers admit as many sequences as the KV blocks allow and queue the rest. With equal
    lengths that is ceil(b / b_fit) waves of at most b_fit sequences, b_fit the largest batch
    whose predicted need fits FRAMEWORK_MEMORY_FRACTION of the GPU memory. The measured sets show
    it: on A100-40GB, Llama-2-7B at 512+512 tokens takes 13.6 s at batch 32 and 25.8 s at 64.
    The reported memory need is that of the whole batch at once.
    """
    m = len(b)

    def run(batch: np.ndarray) -> Any:
        return _predict_placed(shape, s, n, wp, kvp, pl, hw, batch)

    full = run(b)
    if pl != Placement():  # offloaded rows (FlexGen) are run as stated, never in waves
        return _Timing(full.prefill_s, full.total_s, full.gpu_memory_needed_gb), np.ones(m)
    one = run(np.ones(m))
    cap = FRAMEWORK_MEMORY_FRACTION * hw.gpu_memory_gb * GIB_PER_MARKETED_GB
    per_seq = np.where(b > 1, (full.gpu_memory_needed_gb - one.gpu_memory_needed_gb) / np.maximum(b - 1, 1), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        b_fit = np.floor((cap - one.gpu_memory_needed_gb) / per_seq) + 1
    b_fit = np.where(full.gpu_memory_needed_gb <= cap, b, np.clip(b_fit, 1, b))
    waves = np.ceil(b / b_fit)
    if np.all(waves <= 1):
        return _Timing(full.prefill_s, full.total_s, full.gpu_memory_needed_gb), waves
    n_full = np.floor(b / b_fit)
    rest = b - n_full * b_fit
    wave = run(b_fit)
    last = run(np.maximum(rest, 1))
    total = n_full * wave.total_s + np.where(rest > 0, last.total_s, 0.0)
    # The first token of the last admitted sequences comes after the earlier waves.
    prefill = np.where(waves > 1, total - np.where(rest > 0, last.total_s - last.prefill_s,
                                                   wave.total_s - wave.prefill_s), full.prefill_s)
    return _Timing(prefill, total, full.gpu_memory_needed_gb), waves


def evaluate(prep: Prepared, params: dict[str, dict[str, float]] | None = None,
             subset: np.ndarray | None = None) -> Predicted:
    """Returns the predicted metric of every mapped case, with efficiency ``params`` per GPU applied.

    Args:
        params: {catalog GPU: {efficiency field: value}} replacing the catalog's values.
        subset: optional boolean mask of cases to evaluate (others stay NaN); speeds up fitting.
    """
    n = len(prep.cases)
    value = np.full(n, np.nan)
    mem = np.full(n, np.nan)
    wave_count = np.full(n, np.nan)
    for idx, key, hw in prep.groups:
        if subset is not None:
            keep = subset[idx]
            if not keep.any():
                continue
            if not keep.all():
                idx, hw = idx[keep], hw.take(np.nonzero(keep)[0])
        _, s, out_len, wp, kvp, pl = key
        shape = prep.shapes[key[0]]
        hw = _with_params(hw, prep.gpu_of[idx], params)
        b = prep.batch[idx]
        p, waves = _predict_in_waves(shape, s, out_len, wp, kvp, pl, hw, b)
        mem[idx] = p.gpu_memory_needed_gb
        wave_count[idx] = waves
        value[idx] = metric_values(prep.metric_of[idx], p.prefill_s, p.total_s, b, s, out_len)
    if prep.op_hw is not None:
        idx, hw = prep.op_idx, prep.op_hw
        if subset is not None:
            keep = subset[idx]
            idx, hw = idx[keep], hw.take(np.nonzero(keep)[0])
        if len(idx):
            hw = _with_params(hw, prep.gpu_of[idx], params)
            value[idx] = gemm_time_ms([prep.cases[i] for i in idx], hw)
    return Predicted(value=value, gpu_memory_needed_gb=mem, waves=wave_count)


def gemm_shape(case: Case) -> tuple[int, int]:
    """Returns (K, N) of the per-shard weight matrix of a Vidur GEMM operator."""
    assert case.card is not None
    sh, tp = case.card.shape(), case.row.num_gpus
    q_shard = sh.q_dim // tp
    kv_shard = math.ceil(sh.num_kv_heads / tp) * sh.head_dim
    inter = sh.intermediate_size // tp
    return {
        "attn_pre_proj": (sh.hidden_size, q_shard + 2 * kv_shard),
        "attn_post_proj": (q_shard, sh.hidden_size),
        "mlp_up_proj": (sh.hidden_size, inter * (2 if sh.gated_ffn else 1)),
        "mlp_down_proj": (inter, sh.hidden_size),
    }[case.op]


def gemm_time_ms(cases: list[Case], hw: Hardware) -> np.ndarray:
    """Returns the roofline time of one fp16 GEMM per case, ms: T tokens x (K x N) weights."""
    T = np.array([c.row.input_len for c in cases], dtype=float)
    KN = np.array([gemm_shape(c) for c in cases], dtype=float)
    K, N = KN[:, 0], KN[:, 1]
    return 1e3 * gemm_roofline_s(T, K, N, 2.0, hw.peak_tflops, hw.eff_compute_prefill, hw.mem_bw_gb_s,
                                 hw.eff_memory_bw)
