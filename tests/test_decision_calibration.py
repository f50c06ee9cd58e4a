"""Temperature and Platt scaling, ECE and reliability bins."""

from __future__ import annotations

import numpy as np
import pytest

from medsift.decision import (
    Calibrator,
    apply_calibrators,
    apply_platt,
    apply_temperature,
    calibrate_members,
    expected_calibration_error,
    fit_calibrator,
    fit_platt,
    fit_temperature,
    reliability_bins,
)
from medsift.errors import MedsiftError


def _logit(q):
    return np.log(q) - np.log1p(-q)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _overconfident(n=4000, sharpness=3.0, seed=0):
    """True probabilities q, labels drawn from q, and reported p = sigmoid(sharpness * logit(q))."""
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.05, 0.95, n)
    y = (rng.uniform(size=n) < q).astype(int)
    return y, q, _sigmoid(sharpness * _logit(q))


def test_apply_temperature_by_hand():
    # logit(0.8) = ln 4; halved is ln 2; sigmoid(ln 2) = 2/3.
    np.testing.assert_allclose(apply_temperature([0.8, 0.5], 2.0), [2 / 3, 0.5])
    np.testing.assert_allclose(apply_temperature([0.2, 0.7], 1.0), [0.2, 0.7])
    with pytest.raises(MedsiftError, match="positive"):
        apply_temperature([0.5], 0.0)


def test_temperature_scaling_reduces_ece_on_overconfident_probabilities():
    y, _, p = _overconfident()
    temperature = fit_temperature(y, p)
    assert 2.4 < temperature < 3.6  # the sharpening factor used to make them over-confident
    before = expected_calibration_error(y, p)
    after = expected_calibration_error(y, apply_temperature(p, temperature))
    assert before > 0.1
    assert after < before / 3


def test_temperature_keeps_the_row_order():
    y, _, p = _overconfident(n=200)
    calibrated = apply_temperature(p, fit_temperature(y, p))
    np.testing.assert_array_equal(np.argsort(p, kind="stable"), np.argsort(calibrated, kind="stable"))


def test_platt_recovers_a_known_map():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.02, 0.98, 6000)
    true_p = _sigmoid(0.5 * _logit(p) + 0.3)
    y = (rng.uniform(size=p.size) < true_p).astype(int)
    a, b = fit_platt(y, p)
    assert a == pytest.approx(0.5, abs=0.1)
    assert b == pytest.approx(0.3, abs=0.1)
    np.testing.assert_allclose(apply_platt(p, a, b), _sigmoid(a * _logit(p) + b))


def test_platt_stays_finite_on_separable_rows():
    a, b = fit_platt([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert np.isfinite(a) and np.isfinite(b) and a > 0


def test_ece_by_hand():
    # Two bins: [0, 0.5) holds p .05 (y 1), .15 (y 0): mean p .1, positive rate .5, gap .4;
    # [0.5, 1] holds .85, .95 (both y 1): mean p .9, rate 1, gap .1. ECE = .5 * .4 + .5 * .1.
    assert expected_calibration_error([1, 0, 1, 1], [0.05, 0.15, 0.85, 0.95], n_bins=2) == pytest.approx(0.25)


def test_reliability_bins_edges_and_empty_bins():
    bins = reliability_bins([1, 0, 1], [1.0, 0.0, 0.57], n_bins=100)
    assert bins.count[99] == 1  # p == 1.0 lands in the last bin
    assert bins.count[57] == 1  # 0.57 * 100 is 56.99999999999999 in floating point
    assert bins.count[0] == 1
    assert bins.count.sum() == 3
    assert np.isnan(bins.mean_p[1]) and np.isnan(bins.positive_rate[1])
    assert bins.lower[57] == pytest.approx(0.57) and bins.upper[57] == pytest.approx(0.58)


def test_calibration_is_fitted_per_member():
    y, q, sharp = _overconfident(n=3000, seed=2)
    probs = np.column_stack([sharp, q])  # member 0 over-confident, member 1 already calibrated
    calibrators = calibrate_members(y, probs, "temperature")
    assert calibrators[0].temperature > 2.0
    assert calibrators[1].temperature == pytest.approx(1.0, abs=0.2)
    calibrated = apply_calibrators(probs, calibrators)
    assert calibrated.shape == probs.shape
    np.testing.assert_allclose(calibrated[:, 0], apply_temperature(sharp, calibrators[0].temperature))
    with pytest.raises(MedsiftError, match="1 calibrators for 2 members"):
        apply_calibrators(probs, calibrators[:1])


def test_fit_calibrator_methods():
    y, _, p = _overconfident(n=500)
    assert fit_calibrator(y, p, "none") == Calibrator("none")
    np.testing.assert_allclose(Calibrator("none").apply(p), p)
    platt = fit_calibrator(y, p, "platt")
    assert platt.method == "platt" and 0 < platt.a < 1  # a < 1 softens, as T > 1 does
    with pytest.raises(MedsiftError, match="unknown calibration method"):
        fit_calibrator(y, p, "isotonic")
