"""The error band of a prediction, one owner for z(p) and for the band's quantiles.

A calibration gives, per GPU (or engine and GPU), the distribution of u = ln(measured / predicted)
throughput as a *split* log-normal: ``bias`` (its median) and one width per side, ``sigma_low``
below the median and ``sigma_high`` above it, each set so that bias - z_0.9 sigma_low and
bias + z_0.9 sigma_high are the residuals' lower and upper band quantiles (``fit_band``:
distribution-free tolerance bounds, order statistics chosen so that with 90% confidence at most
10% of new runs fall beyond each end, i.e. the band covers >= 80%). Skewed residuals give an
asymmetric band. Throughput at confidence P is tps x exp(bias - z_P sigma_low) (pessimistic; at
P = 0.9 the band's lower end) and the band's upper end tps x exp(bias + z_P sigma_high). A record
with one ``sigma`` only is symmetric. GPU memory needs use their own ``memory_sigma`` the same way.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from llmopt_solver.catalog.records import Uncertainty

BAND_CONFIDENCE = 0.9  # tps_low/tps_high: the 10th and 90th percentiles (80% two-sided band)
BAND_TRUST = 0.9  # confidence, over the calibration sample, that each end holds for new runs


def z_score(p: float) -> float:
    """Returns the standard normal quantile z_p (z_0.9 = 1.2816)."""
    return NormalDist().inv_cdf(p)


def band_rank(m: int, p: float = BAND_CONFIDENCE, trust: float = BAND_TRUST) -> int:
    """Returns the smallest rank k (<= m) such that the k-th smallest of m exchangeable draws lies at
    or above the distribution's p-quantile with probability >= ``trust``: P(Binomial(m, p) <= k - 1)
    >= trust (a distribution-free tolerance bound); m when even the largest does not reach it."""
    if m <= 0:
        return 0
    cdf = 0.0
    for k in range(m + 1):  # cdf = P(Binomial(m, p) <= k)
        cdf += math.exp(math.lgamma(m + 1) - math.lgamma(k + 1) - math.lgamma(m - k + 1)
                        + k * math.log(p) + (m - k) * math.log1p(-p))
        if cdf >= trust:
            return min(k + 1, m)
    return m


def tolerance_bounds(u: np.ndarray, p: float = BAND_CONFIDENCE, runs: np.ndarray | None = None) -> tuple[float, float]:
    """Returns (low, high) of residuals ``u`` (NaN ignored): order statistics such that, with
    probability ``BAND_TRUST`` over the calibration sample, at most 1 - p of new residuals fall
    above high, and likewise below low (so the band covers >= 2p - 1). The exchangeable unit is the
    run (``runs``: one id per residual; None: each residual its own): a run's latency and
    throughput rows are one measurement, so the finite-sample rank counts runs, not rows."""
    ok = np.isfinite(u)
    s = np.sort(np.asarray(u, dtype=float)[ok])
    n = len(s)
    if n == 0:
        raise ValueError("tolerance_bounds: no finite residual")
    m = n if runs is None else len(set(np.asarray(runs)[ok].tolist()))
    k_hi = min(max(math.ceil(band_rank(m, p) / m * n - 1e-9), 1), n)
    return float(s[n - k_hi]), float(s[k_hi - 1])


def fit_band(u: np.ndarray, p: float = BAND_CONFIDENCE, runs: np.ndarray | None = None) -> dict[str, float]:
    """Returns the band of residuals ``u`` = ln(measured / predicted) (``runs``: their run ids, see
    ``tolerance_bounds``): {'bias' (median), 'sigma' (mean of the two sides), 'sigma_low',
    'sigma_high', 'rows'}, rounded to 4 decimals."""
    keep = np.isfinite(u)
    u = np.asarray(u, dtype=float)[keep]
    bias = round(float(np.median(u)), 4)
    low, high = tolerance_bounds(u, p, None if runs is None else np.asarray(runs)[keep])
    z = z_score(p)
    # Widths rounded up, so that the stored band's ends still include the two order statistics.
    lo_s, hi_s = (math.ceil(max(d, 0.0) / z * 1e4) / 1e4 for d in (bias - low, high - bias))
    return {"bias": bias, "sigma": round((lo_s + hi_s) / 2, 4), "sigma_low": lo_s, "sigma_high": hi_s,
            "rows": int(len(u))}


def pessimistic_factor(bias: np.ndarray, sigma_low: np.ndarray, p: float | None) -> np.ndarray:
    """Returns the multiplier on a predicted rate at confidence ``p``: exp(bias - z_p sigma_low)
    (the lower side of the band); 1 for None."""
    if p is None:
        return np.ones_like(np.asarray(sigma_low, dtype=float))
    return np.exp(bias - z_score(p) * sigma_low)


def band(value: np.ndarray, bias: np.ndarray, sigma_low: np.ndarray, sigma_high: np.ndarray | None = None,
         p: float = BAND_CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Returns (low, high) of a rate's band at two-sided level 2p - 1:
    value x exp(bias - z_p sigma_low), value x exp(bias + z_p sigma_high) (``sigma_high`` None: symmetric)."""
    z = z_score(p)
    hi = sigma_low if sigma_high is None else sigma_high
    return value * np.exp(bias - z * sigma_low), value * np.exp(bias + z * hi)


def band_factors(unc: Uncertainty, p: float = BAND_CONFIDENCE) -> tuple[float, float]:
    """Returns (low, high): the multipliers on a predicted rate at the ends of record ``unc``'s band."""
    lo_s, hi_s = unc.sides
    lo, hi = band(np.ones(1), np.array([unc.bias]), np.array([lo_s]), np.array([hi_s]), p)
    return float(lo[0]), float(hi[0])


def memory_quantile_factor(memory_sigma: np.ndarray, p: float | None) -> np.ndarray:
    """Returns the multiplier on a predicted memory need at confidence ``p``: exp(z_p memory_sigma); 1 for None."""
    if p is None:
        return np.ones_like(np.asarray(memory_sigma, dtype=float))
    return np.exp(z_score(p) * memory_sigma)
