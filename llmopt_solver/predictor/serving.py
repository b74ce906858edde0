"""Online serving: steady-state continuous batching at a fixed concurrency, timed with ``predict``.

The metric decides which model a measured row needs (``measure.schedule``): a static batch is
``physics.predict``; a row from a load test with c clients in flight is this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmopt_solver.catalog.model_shape import ModelShape
from llmopt_solver.predictor.physics import Hardware, OffloadMode, predict

__all__ = ["ContinuousBatching", "continuous_batching"]


@dataclass(frozen=True)
class ContinuousBatching:
    """Steady-state timing of online serving at a fixed concurrency (arrays of shape (N,), s)."""

    request_s: np.ndarray  # one request's time in the engine: its prefill, n decode steps, others' prefills
    decode_step_s: np.ndarray  # one decode step of the running batch at the mean context
    prefill_s: np.ndarray  # one request's prefill (batch 1)
    ttft_s: np.ndarray  # own prefill plus, on average, half a decode step of the batch it joins
    tps: np.ndarray  # generated tokens per second over all concurrent requests
    gpu_memory_needed_gb: np.ndarray  # weights + KV of ``concurrency`` full-length sequences


def continuous_batching(
    model: ModelShape,
    input_len: int,
    output_len: int,
    weight_bytes: float,
    kv_bytes: float,
    act_bytes: float,
    hw: Hardware,
    concurrency: np.ndarray,
    weight_offload: np.ndarray | None = None,
    dequant: tuple[float, float, float | None, float] = (0.0, 0.0, None, 0.0),
    kv_read_per_query_head: bool = False,
) -> ContinuousBatching:
    """Returns the steady-state timing of continuous batching with ``concurrency`` requests in flight.

    The model of iteration-level scheduling (Orca, Yu et al., OSDI 2022; vLLM, Kwon et al., SOSP
    2023; TGI's router): with c closed-loop clients, c sequences decode together and their
    progress is spread evenly, so the mean context is input + output / 2 and a step costs what a
    static batch of c costs at that context (``predict``'s decode, whose step sum over contexts
    s..s+n is exactly n steps at the mean for the linear pieces). A new request's prefill is not
    chunked (vLLM v0 / TGI 1.x default): it stalls the running batch, so during one request's
    lifetime the batch waits for its own prefill and the c - 1 others' (each client sends one
    request per cycle). request = n x step + c x prefill(1 sequence); tps = c n / request.
    """
    c = np.asarray(concurrency, dtype=float)
    m = len(c)
    zeros = np.zeros(m)
    mode = np.full(m, int(OffloadMode.STREAM))
    w_dq, kv_dq, traffic, min_tokens = dequant
    dec = predict(model, input_len, output_len, weight_bytes, kv_bytes, act_bytes, hw, c, zeros, mode, True,
                  weight_offload, w_dq, kv_dq, dequant_traffic_bytes=traffic, dequant_min_tokens=min_tokens,
                  kv_read_per_query_head=kv_read_per_query_head)
    one = predict(model, input_len, 1, weight_bytes, kv_bytes, act_bytes, hw, np.ones(m), zeros, mode, True,
                  weight_offload, w_dq, kv_dq, dequant_traffic_bytes=traffic, dequant_min_tokens=min_tokens,
                  kv_read_per_query_head=kv_read_per_query_head)
    n = float(output_len)
    step = dec.decode_s / n
    request = n * step + c * one.prefill_s
    with np.errstate(divide="ignore", invalid="ignore"):
        tps = c * n / request
    return ContinuousBatching(request_s=request, decode_step_s=step, prefill_s=one.prefill_s,
                              ttft_s=one.prefill_s + 0.5 * step, tps=tps,
                              gpu_memory_needed_gb=dec.gpu_memory_needed_gb)
