"""Online serving: steady-state continuous batching at a fixed concurrency, timed with ``predict``.

The metric decides which model a measured row needs (``measure.schedule``): a static batch is
``physics.predict``; a row from a load test with c clients in flight is this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmopt_solver.catalog.model_shape import ModelShape
from llmopt_solver.predictor.physics import Hardware, OffloadMode, predict

__all__ = ["ContinuousBatching", "continuous_batching", "load_test_mean_s"]

MAX_WARMUP_SHARE = 0.9  # a warm-up longer than this share of the test leaves no steady state to speak of


@dataclass(frozen=True)
class ContinuousBatching:
    """Steady-state timing of online serving at a fixed concurrency (arrays of shape (N,), s)."""

    request_s: np.ndarray  # one request's time in the engine: n decode steps and one admission pass
    decode_step_s: np.ndarray  # one decode step of the running batch at the mean context
    prefill_s: np.ndarray  # one prefill pass admitting the c concurrent requests together
    ttft_s: np.ndarray  # that pass plus, on average, half a decode step of the batch it joins
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
    chunked (vLLM v0 / TGI 1.x default): it stalls the running batch. Waiting requests are
    admitted together, in one prefill pass: TGI 1.0.3's router (router/src/infer.rs
    ``batching_task``, router/src/queue.rs ``next_batch``) takes every queued request within
    ``max_batch_prefill_tokens`` and the token budget into one ``prefill`` call, and admits only
    when the queue holds ``waiting_served_ratio`` (1.2) x the running batch or after
    ``max_waiting_tokens`` (20) steps, so requests of equal length that finish together re-enter
    together. Each client sends one request per cycle: per request lifetime the batch waits for
    one prefill pass of the c sequences (its own among them), not c passes of one.
    request = n x step + prefill(c sequences, one pass); tps = c n / request.
    """
    c = np.asarray(concurrency, dtype=float)
    m = len(c)
    zeros = np.zeros(m)
    mode = np.full(m, int(OffloadMode.STREAM))
    w_dq, kv_dq, traffic, min_tokens = dequant
    dec = predict(model, input_len, output_len, weight_bytes, kv_bytes, act_bytes, hw, c, zeros, mode, True,
                  weight_offload, w_dq, kv_dq, dequant_traffic_bytes=traffic, dequant_min_tokens=min_tokens,
                  kv_read_per_query_head=kv_read_per_query_head)
    cohort = predict(model, input_len, 1, weight_bytes, kv_bytes, act_bytes, hw, c, zeros, mode, True,
                     weight_offload, w_dq, kv_dq, dequant_traffic_bytes=traffic, dequant_min_tokens=min_tokens,
                     kv_read_per_query_head=kv_read_per_query_head)
    n = float(output_len)
    step = dec.decode_s / n
    request = n * step + cohort.prefill_s
    with np.errstate(divide="ignore", invalid="ignore"):
        tps = c * n / request
    return ContinuousBatching(request_s=request, decode_step_s=step, prefill_s=cohort.prefill_s,
                              ttft_s=cohort.prefill_s + 0.5 * step, tps=tps,
                              gpu_memory_needed_gb=dec.gpu_memory_needed_gb)


def load_test_mean_s(steady_s: np.ndarray, warmup_s: np.ndarray, duration_s: np.ndarray) -> np.ndarray:
    """Returns the mean request time a fixed-duration closed-loop load test reports, s, when the
    run's first passes take a one-off ``warmup_s`` more (kernels autotuned or initialised on first
    use, e.g. TGI 1.0.x's Triton GPTQ kernels: server/text_generation_server/utils/gptq/
    custom_autotune.py benchmarks its configurations on each new shape).

    The c requests in flight at the start each wait W once: c W over the whole run. A closed loop
    of c clients completes n = c D / mean requests in D seconds, so the mean is steady + c W / n =
    steady + W mean / D, i.e. steady / (1 - W / D), whatever c (W / D capped at
    MAX_WARMUP_SHARE). A median over the requests, or a long job's throughput, does not see it.
    """
    share = np.minimum(np.asarray(warmup_s, dtype=float) / np.asarray(duration_s, dtype=float), MAX_WARMUP_SHARE)
    return np.asarray(steady_s, dtype=float) / (1.0 - share)
