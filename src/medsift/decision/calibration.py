"""Probability calibration: temperature scaling, Platt scaling, ECE and reliability bins.

Calibration is fitted and applied per member *before* averaging (:func:`calibrate_members`): members trained
with different losses (focal loss, LoRA LLM first-token confidence) are over- or under-confident in different
ways, and averaging first would blend those distortions into one that no single map can undo.

Both maps work on the logit of ``p``, clipped to ``[EPS, 1 - EPS]`` so that 0 and 1 stay finite.

- Temperature: ``sigmoid(logit(p) / T)``, ``T > 0`` fitted by minimising the negative log-likelihood with a
  bounded 1-D search over ``log T``. ``T > 1`` softens over-confident probabilities. It never changes the
  order of rows, so it never changes a threshold-free ranking metric.
- Platt: ``sigmoid(a * logit(p) + b)``, fitted by NLL against Platt's smoothed targets
  (``(N+ + 1) / (N+ + 2)`` for positives, ``1 / (N- + 2)`` for negatives), which keep ``a`` finite when the
  calibration rows are perfectly separable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize, minimize_scalar

from medsift.decision._checks import binary_labels, prob_matrix, prob_vector
from medsift.errors import MedsiftError

EPS = 1e-6
_LOG_T_BOUNDS = (np.log(1e-2), np.log(1e2))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, EPS, 1 - EPS)
    return np.log(q) - np.log1p(-q)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for large |z|


def _nll(z: np.ndarray, target: np.ndarray) -> float:
    """Mean binary cross-entropy of logits ``z`` against (possibly soft) targets, computed stably."""
    return float(np.mean(np.logaddexp(0.0, z) - target * z))


def _checked(y: npt.ArrayLike, p: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    pp = prob_vector(p)
    if pp.size == 0:
        raise MedsiftError("cannot fit a calibration map on zero rows")
    return binary_labels(y, pp.shape[0]).astype(float), pp


def fit_temperature(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Fit the temperature ``T`` (in [0.01, 100]) minimising the NLL of ``sigmoid(logit(p) / T)``."""
    yy, pp = _checked(y, p)
    z = _logit(pp)
    result = minimize_scalar(
        lambda log_t: _nll(z / np.exp(log_t), yy),
        bounds=_LOG_T_BOUNDS,
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(np.exp(result.x))


def temperature_warning(temperature: float, member: str) -> str | None:
    """A warning when a fitted temperature sits at a bound of its search range: the fit did not converge to
    an interior optimum (e.g. a member whose calib probabilities are all on the wrong side), so the map is
    not a calibration but a clamp, and the member's calibrated probabilities are close to 0.5 or to 0/1."""
    low, high = np.exp(_LOG_T_BOUNDS)
    if temperature > low * 1.01 and temperature < high / 1.01:
        return None
    return (
        f"temperature calibration of member {member} stopped at the bound T = {temperature:.3g} (search range "
        f"{low:g}..{high:g}): its calib rows do not support a temperature; check the member, or use "
        "--calibrate none / platt"
    )


def apply_temperature(p: npt.ArrayLike, temperature: float) -> np.ndarray:
    """``sigmoid(logit(p) / T)``."""
    if not temperature > 0:
        raise MedsiftError(f"temperature must be positive, got {temperature}")
    return _sigmoid(_logit(prob_vector(p)) / temperature)


def fit_platt(y: npt.ArrayLike, p: npt.ArrayLike) -> tuple[float, float]:
    """Fit ``(a, b)`` of ``sigmoid(a * logit(p) + b)`` by NLL against Platt's smoothed targets."""
    yy, pp = _checked(y, p)
    z = _logit(pp)
    n_pos, n_neg = yy.sum(), yy.size - yy.sum()
    target = np.where(yy == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss_and_grad(params: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = params
        s = a * z + b
        residual = (_sigmoid(s) - target) / z.size  # d(mean NLL)/ds
        return _nll(s, target), np.array([np.sum(residual * z), np.sum(residual)])

    result = minimize(loss_and_grad, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    a, b = result.x
    return float(a), float(b)


def apply_platt(p: npt.ArrayLike, a: float, b: float) -> np.ndarray:
    """``sigmoid(a * logit(p) + b)``."""
    return _sigmoid(a * _logit(prob_vector(p)) + b)


@dataclass(frozen=True)
class Calibrator:
    """One fitted calibration map: ``method`` is ``"none"``, ``"temperature"`` or ``"platt"``."""

    method: str
    temperature: float = 1.0
    a: float = 1.0
    b: float = 0.0

    def apply(self, p: npt.ArrayLike) -> np.ndarray:
        """Map probabilities through the fitted calibration."""
        if self.method == "none":
            return prob_vector(p).copy()
        if self.method == "temperature":
            return apply_temperature(p, self.temperature)
        if self.method == "platt":
            return apply_platt(p, self.a, self.b)
        raise MedsiftError(f"unknown calibration method {self.method!r}; expected none, temperature or platt")


def fit_calibrator(
    y: npt.ArrayLike, p: npt.ArrayLike, method: Literal["none", "temperature", "platt"] = "temperature"
) -> Calibrator:
    """Fit one :class:`Calibrator` of the given ``method`` on labels ``y`` and probabilities ``p``."""
    if method == "none":
        return Calibrator("none")
    if method == "temperature":
        return Calibrator("temperature", temperature=fit_temperature(y, p))
    if method == "platt":
        a, b = fit_platt(y, p)
        return Calibrator("platt", a=a, b=b)
    raise MedsiftError(f"unknown calibration method {method!r}; expected none, temperature or platt")


def calibrate_members(
    y: npt.ArrayLike, probs: npt.ArrayLike, method: Literal["none", "temperature", "platt"] = "temperature"
) -> list[Calibrator]:
    """Fit one calibrator per member (column of ``probs``) on the same calibration labels ``y``."""
    matrix = prob_matrix(probs)
    return [fit_calibrator(y, matrix[:, j], method) for j in range(matrix.shape[1])]


def apply_calibrators(probs: npt.ArrayLike, calibrators: list[Calibrator]) -> np.ndarray:
    """Apply member ``j``'s calibrator to column ``j``; returns a matrix of the same shape."""
    matrix = prob_matrix(probs)
    if len(calibrators) != matrix.shape[1]:
        raise MedsiftError(f"{len(calibrators)} calibrators for {matrix.shape[1]} members")
    return np.column_stack([cal.apply(matrix[:, j]) for j, cal in enumerate(calibrators)])


@dataclass
class ReliabilityBins:
    """Equal-width probability bins: per bin its edges, row count, mean probability and positive rate.

    Empty bins have ``count`` 0 and NaN means.
    """

    lower: np.ndarray
    upper: np.ndarray
    count: np.ndarray
    mean_p: np.ndarray
    positive_rate: np.ndarray


def _bin_index(p: np.ndarray, n_bins: int) -> np.ndarray:
    # Bin i covers [i/n, (i+1)/n); p == 1.0 goes into the last bin rather than a bin of its own. Rounding
    # first keeps 0.57 * 100 (= 56.99999999999999 in floating point) in bin 57, where a reader expects it.
    return np.minimum(np.floor(np.round(p * n_bins, 9)).astype(int), n_bins - 1)


def reliability_bins(y: npt.ArrayLike, p: npt.ArrayLike, n_bins: int = 10) -> ReliabilityBins:
    """Reliability-diagram data over ``n_bins`` equal-width bins of [0, 1] (see :func:`_bin_index`)."""
    pp = prob_vector(p)
    yy = binary_labels(y, pp.shape[0]).astype(float)
    if n_bins < 1:
        raise MedsiftError(f"n_bins must be at least 1, got {n_bins}")
    idx = _bin_index(pp, n_bins)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(idx, weights=pp, minlength=n_bins) / count
        positive_rate = np.bincount(idx, weights=yy, minlength=n_bins) / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return ReliabilityBins(edges[:-1], edges[1:], count, mean_p, positive_rate)


def expected_calibration_error(y: npt.ArrayLike, p: npt.ArrayLike, n_bins: int = 10) -> float:
    """ECE: ``sum over bins of (rows in bin / rows) * |positive rate - mean p|``.

    Bins are ``n_bins`` equal-width intervals ``[i/n, (i+1)/n)`` of [0, 1] (the last one closed); empty bins
    contribute nothing. ``p`` is the probability of the positive class, so this is the binary ECE.
    """
    bins = reliability_bins(y, p, n_bins)
    total = bins.count.sum()
    if total == 0:
        raise MedsiftError("cannot compute ECE on zero rows")
    filled = bins.count > 0
    gaps = np.abs(bins.positive_rate[filled] - bins.mean_p[filled])
    return float(np.sum(bins.count[filled] / total * gaps))
