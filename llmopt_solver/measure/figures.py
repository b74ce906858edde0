"""A run's predicted timing as the figure a measured row reports (the Metric semantics), and back."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from llmopt_solver.measure.rows import Metric
from llmopt_solver.measure.schedule import RunTiming
from llmopt_solver.predictor.serving import load_test_mean_s

__all__ = ["implied_time_s", "metric_values"]


def metric_values(metric: np.ndarray, t: RunTiming, b: np.ndarray, s: int, n: int, g: np.ndarray,
                  warm: np.ndarray | None = None, warmup_s: np.ndarray | None = None,
                  duration_s: np.ndarray | None = None) -> np.ndarray:
    """Returns the predicted figure of each row's metric from the run's timing (s or tok/s; Metric).

    ``warm``: rows that are means over a fixed-duration load test of ``duration_s`` whose first
    passes take a one-off ``warmup_s`` (``serving.load_test_mean_s``); their request time, and
    the first tokens the stall delays, are the test's means instead of steady state.
    """
    if warm is not None and warm.any() and warmup_s is not None and duration_s is not None:
        e2e = np.where(warm, load_test_mean_s(t.e2e_s, warmup_s, duration_s), t.e2e_s)
        t = replace(t, e2e_s=e2e, ttft_s=t.ttft_s + (e2e - t.e2e_s))
    out = np.full(len(metric), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        gen = b * n / t.e2e_s
        for m, value in ((Metric.E2E, t.e2e_s), (Metric.TTFT, t.ttft_s), (Metric.TPOT, t.e2e_s / n),
                         (Metric.DECODE_TPS, n / t.decode_s), (Metric.GEN_TPS, gen), (Metric.OUT_TPS, gen),
                         (Metric.GEN_TPS_PER_GPU, gen / g), (Metric.OUT_TPS_PER_GPU, gen / g),
                         (Metric.TOTAL_TPS, b * (s + n) / t.e2e_s)):
            sel = metric == m.value
            out[sel] = value[sel]
    return out


def implied_time_s(metric: str, measured: float, b: float, s: int, n: int, g: float) -> float:
    """Returns the time of n decode steps (or more) a measured figure implies, s (inf: implies none)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        times: dict[str, float] = {
            Metric.E2E: measured, Metric.TPOT: measured * n, Metric.DECODE_TPS: n / measured,
            Metric.GEN_TPS: b * n / measured, Metric.OUT_TPS: b * n / measured,
            Metric.GEN_TPS_PER_GPU: b * n / (measured * g), Metric.OUT_TPS_PER_GPU: b * n / (measured * g),
            Metric.TOTAL_TPS: b * (s + n) / measured}
        return times.get(metric, math.inf)
