"""The ADE decision layer: combine member probabilities, calibrate them and cut them with thresholds.

Everything here is a pure function (numpy / pandas in, numpy / dataclasses out) so that it can be tested
on hand-made probabilities and reused by the ``medsift ensemble`` command.

- :mod:`medsift.decision.voting`: hard / soft / weighted voting, dev-score weights, member alignment.
- :mod:`medsift.decision.thresholds`: threshold search, per-language policies with fallbacks, cross-fitting.
- :mod:`medsift.decision.calibration`: temperature and Platt scaling, ECE, reliability bins.
- :mod:`medsift.decision.analysis`: per-language probability histograms and threshold-drift tables.
"""

from __future__ import annotations

from medsift.decision.analysis import LanguageHistogram, probability_histograms, threshold_shift
from medsift.decision.calibration import (
    Calibrator,
    ReliabilityBins,
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
from medsift.decision.thresholds import (
    CrossFitResult,
    SearchResult,
    ThresholdPolicy,
    cross_fit_thresholds,
    score_labels,
    search_threshold,
    threshold_groups,
    tune_thresholds,
)
from medsift.decision.voting import (
    align_members,
    combine,
    hard_vote,
    member_key,
    soft_vote,
    weighted_vote,
    weights_from_scores,
)

__all__ = [
    "Calibrator",
    "CrossFitResult",
    "LanguageHistogram",
    "ReliabilityBins",
    "SearchResult",
    "ThresholdPolicy",
    "align_members",
    "apply_calibrators",
    "apply_platt",
    "apply_temperature",
    "calibrate_members",
    "combine",
    "cross_fit_thresholds",
    "expected_calibration_error",
    "fit_calibrator",
    "fit_platt",
    "fit_temperature",
    "hard_vote",
    "member_key",
    "probability_histograms",
    "reliability_bins",
    "score_labels",
    "search_threshold",
    "soft_vote",
    "threshold_groups",
    "threshold_shift",
    "tune_thresholds",
    "weighted_vote",
    "weights_from_scores",
]
