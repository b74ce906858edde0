"""The TPS band: tolerance-bound quantiles of skewed residuals, one width per side, and the
pessimistic factor of --confidence on the lower side."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmopt_solver.catalog.records import Uncertainty
from llmopt_solver.predictor.uncertainty import (
    band,
    band_factors,
    band_rank,
    fit_band,
    pessimistic_factor,
    tolerance_bounds,
    z_score,
)


def test_tolerance_bounds_are_the_binomial_order_statistics():
    for m in (10, 57, 100, 400):  # the definition, by brute force
        k = band_rank(m)
        cdf = [sum(math.comb(m, i) * 0.9**i * 0.1 ** (m - i) for i in range(j + 1)) for j in range(m + 1)]
        assert k == m or (cdf[k - 1] >= 0.9 and (k == 1 or cdf[k - 2] < 0.9))
    u = np.arange(1.0, 101.0)
    k = band_rank(100)  # 95: the 95th of 100 lies above the 90th percentile with >= 90% confidence
    assert tolerance_bounds(u) == (float(101 - k), float(k)) and 92 < k < 98
    assert tolerance_bounds(np.array([3.0, np.nan, 1.0])) == (1.0, 3.0)  # tiny n: the extremes
    # Pairs of rows from one run count once: fewer units, a wider band.
    lo_r, hi_r = tolerance_bounds(u, runs=np.arange(100) // 2)
    assert lo_r <= 101 - k and hi_r >= k
    with pytest.raises(ValueError):
        tolerance_bounds(np.array([np.nan]))


def test_skewed_residuals_get_an_asymmetric_band_that_covers_new_draws():
    rng = np.random.default_rng(1)

    def draw(n: int) -> np.ndarray:  # right-skewed residuals: most rows slightly slow, a long fast tail
        return rng.gamma(1.5, 0.1, n) - 0.1

    below, above = [], []
    for _ in range(300):
        b = Uncertainty.model_validate(fit_band(draw(60)))
        lo, hi = band_factors(b)
        new = draw(2000)
        below.append(np.mean(new < math.log(lo)))
        above.append(np.mean(new > math.log(hi)))
        assert b.sides[1] > b.sides[0]  # the long upper tail is on the upper side
    # Each end holds (<= 10% of new draws beyond it) in >= 90% of calibration samples.
    assert np.mean(np.array(below) <= 0.10) >= 0.88 and np.mean(np.array(above) <= 0.10) >= 0.88
    assert np.mean(1 - np.array(below) - np.array(above) >= 0.80) >= 0.80


def test_fitted_band_contains_its_own_order_statistics_after_rounding():
    u = np.random.default_rng(2).normal(0.03, 0.2, 57)
    b = Uncertainty.model_validate(fit_band(u))
    lo, hi = band_factors(b)
    low, high = tolerance_bounds(u)
    assert math.log(lo) <= low and math.log(hi) >= high
    assert b.rows == 57 and b.sigma == pytest.approx((b.sides[0] + b.sides[1]) / 2, abs=1e-4)


def test_confidence_uses_the_lower_side_and_matches_the_band_end():
    b = Uncertainty(bias=0.02, sigma=0.15, sigma_low=0.1, sigma_high=0.2)
    lo, hi = band(np.array([100.0]), np.array([b.bias]), np.array([b.sides[0]]), np.array([b.sides[1]]))
    assert lo[0] == pytest.approx(100 * band_factors(b)[0]) and hi[0] == pytest.approx(100 * band_factors(b)[1])
    f = pessimistic_factor(np.array([b.bias]), np.array([b.sides[0]]), 0.9)
    assert f[0] * 100 == pytest.approx(lo[0])
    assert pessimistic_factor(np.array([b.bias]), np.array([b.sides[0]]), 0.95)[0] == pytest.approx(
        math.exp(0.02 - z_score(0.95) * 0.1))


def test_symmetric_records_and_per_side_widening():
    old = Uncertainty(bias=0.0, sigma=0.2)  # a profile written before the split band: symmetric
    assert old.sides == (0.2, 0.2)
    wide = Uncertainty(bias=0.1, sigma=0.15, sigma_low=0.25, sigma_high=0.05).widened(old)
    assert wide.sides == (0.25, 0.2) and wide.bias == 0.1 and wide.sigma == 0.2
