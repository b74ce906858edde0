"""The TPS band: split-conformal quantiles of skewed residuals, one width per side, and the
pessimistic factor of --confidence on the lower side."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmopt_solver.catalog.records import Uncertainty
from llmopt_solver.predictor.uncertainty import (
    band,
    band_factors,
    conformal_bounds,
    fit_band,
    pessimistic_factor,
    z_score,
)


def test_conformal_bounds_are_the_finite_sample_order_statistics():
    u = np.arange(1.0, 20.0)  # n = 19: floor(0.1 * 20) = 2nd, ceil(0.9 * 20) = 18th smallest
    assert conformal_bounds(u) == (2.0, 18.0)
    assert conformal_bounds(np.array([3.0, np.nan, 1.0])) == (1.0, 3.0)  # tiny n: clamped to the extremes
    with pytest.raises(ValueError):
        conformal_bounds(np.array([np.nan]))


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
    # n = 60: each end is the 6th order statistic from its side, so a new row misses each end with
    # probability 6/61 = 9.8% in expectation (Monte Carlo within +-0.6%), inside 80.3%.
    assert np.mean(below) <= 0.104 and np.mean(above) <= 0.104
    assert 1 - np.mean(below) - np.mean(above) >= 0.795


def test_fitted_band_contains_its_own_order_statistics_after_rounding():
    u = np.random.default_rng(2).normal(0.03, 0.2, 57)
    b = Uncertainty.model_validate(fit_band(u))
    lo, hi = band_factors(b)
    low, high = conformal_bounds(u)
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
