"""How a measured run was scheduled, timed with the predictor: static batches (in waves when the
batch does not fit, as vLLM / TensorRT-LLM queue it) and online continuous batching.

Both go through ``predictor.physics`` (``predict`` and ``continuous_batching``), the functions
the option table uses; nothing here is physics of its own, only which run the row describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from llmopt_solver.catalog.precision import Precision
from llmopt_solver.measure.placement import Placement
from llmopt_solver.predictor.physics import Hardware, OffloadMode, predict
from llmopt_solver.predictor.serving import continuous_batching
from llmopt_solver.table.engines import EngineExecution

NO_RULES = EngineExecution()  # no engine named: fused kernels, prefetching streams, any fraction

# Share of GPU memory the serving frameworks use for weights + KV + activations: vLLM's
# gpu_memory_utilization and TensorRT-LLM's kv_cache_free_gpu_mem_fraction both default to 0.9.
FRAMEWORK_MEMORY_FRACTION = 0.9
# HBM capacities are marketed in GiB: an "A100 40GB" holds 40960 MiB = 42.9e9 bytes (EC2 API,
# shared HARDWARE.md section 1); the catalog's memory_gb (1e9 bytes) is the marketed number, a
# conservative 7% under. Waves and the OOM check use the real capacity, since the frameworks do.
GIB_PER_MARKETED_GB = 2**30 / 1e9


@dataclass(frozen=True)
class RunTiming:
    """Predicted timing of the run a row measured (arrays of shape (N,), s)."""

    e2e_s: np.ndarray  # static: the batch; online: one request
    ttft_s: np.ndarray
    decode_s: np.ndarray  # one sequence's decode (static: the batch's decode phase)
    gpu_memory_needed_gb: np.ndarray  # whole batch / all concurrent sequences at once
    waves: np.ndarray  # static sub-batches (1 = one batch); 1 for online rows
    fits: np.ndarray  # False: predicted not to fit at all (not even one sequence / the stated placement)
    b_fit: np.ndarray | None = None  # static: sequences per wave (memory only, so reusable across fits)


def predict_placed(shape: Any, s: int, n: int, wp: Precision, kvp: Precision, pl: Placement, hw: Hardware,
                   b: np.ndarray, ex: EngineExecution = NO_RULES) -> Any:
    """Returns ``predict`` for batches ``b`` with placement ``pl`` (same for every option), run as
    the engine executes it (``ex``: dequantisation, synchronous weight copies, as the option table)."""
    m = len(b)
    mode = np.full(m, int(OffloadMode.CPU if pl.cpu_attention else OffloadMode.STREAM))
    return predict(shape, s, n, wp.bytes_per_value, kvp.bytes_per_value, wp.activation_bytes, hw, b,
                   np.full(m, pl.kv_offload), mode, pl.overlap, weight_offload=np.full(m, pl.weight_offload),
                   weight_dequant_bytes=ex.weight_dequant_bytes, kv_dequant_bytes=ex.kv_dequant_bytes,
                   weight_stream_sync=ex.weight_stream_sync, dequant_traffic_bytes=ex.dequant_traffic_bytes,
                   dequant_min_tokens=ex.dequant_min_tokens, disk=pl.disk, activation_batch=pl.gpu_batch,
                   kv_read_per_query_head=ex.kv_read_per_query_head, routing_sequences=ex.routing_sequences)


def capacity_gb(hw: Hardware, fraction: float = 1.0) -> np.ndarray:
    """Returns the usable GPU memory, GB (1e9 bytes): ``fraction`` of the real (GiB) capacity."""
    return fraction * hw.gpu_memory_gb * GIB_PER_MARKETED_GB


def engine_capacity_gb(hw: Hardware, ex: EngineExecution) -> np.ndarray:
    """Returns the memory an engine fills with weights, KV and activations, GB: the GPU minus the
    engine's fixed reserve (``ex.memory_reserve_gb``, DeepSpeed FastGen) or else
    FRAMEWORK_MEMORY_FRACTION of it (vLLM, TensorRT-LLM)."""
    if ex.memory_reserve_gb is not None:
        return capacity_gb(hw) - ex.memory_reserve_gb
    return capacity_gb(hw, FRAMEWORK_MEMORY_FRACTION)


def static_in_waves(shape: Any, s: int, n: int, wp: Precision, kvp: Precision, pl: Placement, hw: Hardware,
                    b: np.ndarray, plan: RunTiming | None = None, ex: EngineExecution = NO_RULES) -> RunTiming:
    """Returns timings of static batches ``b``, run in waves where the whole batch does not fit.

    vLLM and TensorRT-LLM never fail a static batch whose KV cache exceeds the free memory: their
    schedulers admit as many sequences as the KV blocks allow and queue the rest. With equal
    lengths that is ceil(b / b_fit) waves of at most b_fit sequences, b_fit the largest batch
    whose predicted need fits the engine's share of the GPU memory (``engine_capacity_gb``). The measured sets show
    it: on A100-40GB, Llama-2-7B at 512+512 tokens takes 13.6 s at batch 32 and 25.8 s at 64.
    The reported memory need is that of the whole batch at once.

    ``plan``: a previous result for the same rows (memory, waves and wave size depend on the
    hardware and the model only, not on efficiencies): then one ``predict`` call times the waves.
    """
    m = len(b)

    def run(batch: np.ndarray, rows: np.ndarray | None = None) -> Any:
        return predict_placed(shape, s, n, wp, kvp, pl, hw if rows is None else hw.take(rows), batch, ex)

    if plan is not None and plan.b_fit is not None:
        return _timed_waves(run, b, plan.b_fit, plan.gpu_memory_needed_gb, plan.fits)

    full = run(b)
    if pl != Placement():  # offloaded rows run as stated, never in waves
        fits = full.gpu_memory_needed_gb <= capacity_gb(hw)
        return RunTiming(full.total_s, full.prefill_s, full.decode_s, full.gpu_memory_needed_gb, np.ones(m), fits,
                         b_fit=b.astype(float))
    one = run(np.ones(m))
    cap = engine_capacity_gb(hw, ex)
    fits = one.gpu_memory_needed_gb <= cap
    per_seq = np.where(b > 1, (full.gpu_memory_needed_gb - one.gpu_memory_needed_gb) / np.maximum(b - 1, 1), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        b_fit = np.floor((cap - one.gpu_memory_needed_gb) / per_seq) + 1
    b_fit = np.where(full.gpu_memory_needed_gb <= cap, b, np.clip(b_fit, 1, b))
    waves = np.ceil(b / b_fit)
    if np.all(waves <= 1):
        return RunTiming(full.total_s, full.prefill_s, full.decode_s, full.gpu_memory_needed_gb, waves, fits,
                         b_fit=b_fit)
    return _timed_waves(run, b, b_fit, full.gpu_memory_needed_gb, fits)


def _timed_waves(run: Any, b: np.ndarray, b_fit: np.ndarray, memory_gb: np.ndarray, fits: np.ndarray) -> RunTiming:
    """Returns the timing of batches ``b`` run as floor(b / b_fit) full waves and a last partial one."""
    m = len(b)
    waves = np.ceil(b / b_fit)
    if np.all(waves <= 1):
        full = run(b)
        return RunTiming(full.total_s, full.prefill_s, full.decode_s, memory_gb, waves, fits, b_fit=b_fit)
    n_full = np.floor(b / b_fit)
    rest = b - n_full * b_fit
    # One vectorised call: the full waves' batch, then the last wave's.
    both = run(np.concatenate([b_fit, np.maximum(rest, 1)]), np.concatenate([np.arange(m), np.arange(m)]))
    wave_total, wave_prefill = both.total_s[:m], both.prefill_s[:m]
    last_total, last_prefill = both.total_s[m:], both.prefill_s[m:]
    total = n_full * wave_total + np.where(rest > 0, last_total, 0.0)
    # The first token of the last admitted sequences comes after the earlier waves.
    prefill = np.where(waves > 1, total - np.where(rest > 0, last_total - last_prefill, wave_total - wave_prefill),
                       wave_prefill)
    return RunTiming(total, prefill, total - prefill, memory_gb, waves, fits, b_fit=b_fit)


def online(shape: Any, s: int, n: int, wp: Precision, kvp: Precision, pl: Placement, hw: Hardware,
           c: np.ndarray, ex: EngineExecution = NO_RULES) -> RunTiming:
    """Returns the per-request timing of online serving at concurrency ``c`` (continuous batching)."""
    cb = continuous_batching(shape, s, n, wp.bytes_per_value, kvp.bytes_per_value, wp.activation_bytes, hw, c,
                             weight_offload=np.full(len(c), pl.weight_offload),
                             dequant=(ex.weight_dequant_bytes, ex.kv_dequant_bytes, ex.dequant_traffic_bytes,
                                      ex.dequant_min_tokens), kv_read_per_query_head=ex.kv_read_per_query_head)
    one = predict_placed(shape, s, n, wp, kvp, pl, hw, np.ones(len(c)), ex)
    fits = one.gpu_memory_needed_gb <= engine_capacity_gb(hw, ex)
    return RunTiming(cb.request_s, cb.ttft_s, n * cb.decode_step_s, cb.gpu_memory_needed_gb, np.ones(len(c)), fits)
