"""The error band of a prediction: a log-normal on ln(measured / predicted), one owner for z(p).

A GPU's calibration gives ``bias`` (median of ln(measured/predicted)) and ``sigma``; throughput at
confidence P is tps x exp(bias - z_P sigma) (pessimistic) and the band's upper end
tps x exp(bias + z_P sigma). GPU memory needs use their own ``memory_sigma`` the same way.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

BAND_CONFIDENCE = 0.9  # tps_low/tps_high: the 10th and 90th percentiles (80% two-sided band)


def z_score(p: float) -> float:
    """Returns the standard normal quantile z_p (z_0.9 = 1.2816)."""
    return NormalDist().inv_cdf(p)


def sigma_from_spread(q10: float, q90: float) -> float:
    """Returns the log-normal sigma whose 10th-90th percentile spread is (q10, q90)."""
    return (q90 - q10) / (2.0 * z_score(BAND_CONFIDENCE))


def pessimistic_factor(bias: np.ndarray, sigma: np.ndarray, p: float | None) -> np.ndarray:
    """Returns the multiplier on a predicted rate at confidence ``p``: exp(bias - z_p sigma); 1 for None."""
    if p is None:
        return np.ones_like(np.asarray(sigma, dtype=float))
    return np.exp(bias - z_score(p) * sigma)


def band(value: np.ndarray, bias: np.ndarray, sigma: np.ndarray, p: float = BAND_CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Returns (low, high) of a rate's band at two-sided level 2p - 1: value x exp(bias -/+ z_p sigma)."""
    z = z_score(p)
    return value * np.exp(bias - z * sigma), value * np.exp(bias + z * sigma)


def memory_quantile_factor(memory_sigma: np.ndarray, p: float | None) -> np.ndarray:
    """Returns the multiplier on a predicted memory need at confidence ``p``: exp(z_p memory_sigma); 1 for None."""
    if p is None:
        return np.ones_like(np.asarray(memory_sigma, dtype=float))
    return np.exp(z_score(p) * memory_sigma)
