"""Diagnostics for the decision layer: how well probabilities separate the classes per language, and how far
thresholds moved between two policies (e.g. dev-tuned vs calibration-tuned, or two training regimes).

A threshold that moves a lot between two fits of the same system is the calibration drift the second
#SMM4H 2026 paper warned about: the tuned value is then fitted noise, and a fallback may be safer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from medsift.decision._checks import binary_labels, language_vector, prob_vector
from medsift.decision.thresholds import ThresholdPolicy
from medsift.errors import MedsiftError

UNSEEN = "<unseen>"


@dataclass
class LanguageHistogram:
    """Histograms of the probabilities of positive and negative rows of one language.

    ``positive``/``negative`` are counts per bin; ``positive_share``/``negative_share`` are the same divided
    by the class total (NaN when the class has no rows). ``overlap`` is the overlap coefficient
    ``sum over bins of min(positive_share, negative_share)``: 0 when the classes never share a bin (a
    threshold can separate them), 1 when their histograms are identical (the model does not separate them).
    """

    edges: np.ndarray
    positive: np.ndarray
    negative: np.ndarray
    positive_share: np.ndarray
    negative_share: np.ndarray
    overlap: float

    @property
    def n_positive(self) -> int:
        return int(self.positive.sum())

    @property
    def n_negative(self) -> int:
        return int(self.negative.sum())


def _share(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.full(counts.shape, np.nan)


def probability_histograms(
    p: npt.ArrayLike,
    y: npt.ArrayLike,
    languages: npt.ArrayLike | Sequence[str] | None = None,
    bins: int = 20,
) -> dict[str, LanguageHistogram]:
    """Per-language histograms of positive and negative probabilities over ``bins`` equal-width bins of [0, 1].

    ``languages=None`` puts every row in one group named ``"all"``. Languages come out sorted. The overlap is
    NaN for a language missing one of the classes.
    """
    pp = prob_vector(p)
    yy = binary_labels(y, pp.shape[0])
    if bins < 1:
        raise MedsiftError(f"bins must be at least 1, got {bins}")
    langs = (
        np.full(pp.shape[0], "all", dtype=object)
        if languages is None
        else language_vector(languages, pp.size)
    )
    edges = np.linspace(0.0, 1.0, bins + 1)
    result: dict[str, LanguageHistogram] = {}
    for lang in sorted(set(langs)):
        mask = langs == lang
        # np.histogram closes the last bin, so p == 1.0 is counted.
        positive = np.histogram(pp[mask & (yy == 1)], bins=edges)[0]
        negative = np.histogram(pp[mask & (yy == 0)], bins=edges)[0]
        pos_share, neg_share = _share(positive), _share(negative)
        overlap = (
            float(np.minimum(pos_share, neg_share).sum()) if positive.any() and negative.any() else np.nan
        )
        result[str(lang)] = LanguageHistogram(edges, positive, negative, pos_share, neg_share, overlap)
    return result


def _source(policy: ThresholdPolicy, language: str) -> str:
    if language == UNSEEN:
        return f"fallback ({policy.fallback_rule})"
    if language in policy.thresholds:
        return "tuned"
    if language in policy.fallback_languages:
        return "fallback (too few positives)"
    return "fallback (unseen)"


def threshold_shift(
    policy_a: ThresholdPolicy, policy_b: ThresholdPolicy, *, drift: float = 0.1
) -> pd.DataFrame:
    """Per-language thresholds of two policies side by side, with a drift warning flag.

    One row per language known to either policy (tuned or fallen back, sorted), then a row ``"<unseen>"``
    for the fallback that a never-seen language gets. Columns: ``language, threshold_a, threshold_b, shift``
    (``b - a``), ``source_a, source_b`` (tuned or which fallback) and ``drift`` (``|shift| >= drift``,
    compared after rounding so that 0.6 - 0.5 counts as 0.1).
    """
    if drift < 0:
        raise MedsiftError(f"drift cut-off must be non-negative, got {drift}")
    languages = sorted(
        set(policy_a.thresholds)
        | set(policy_a.fallback_languages)
        | set(policy_b.thresholds)
        | set(policy_b.fallback_languages)
    )
    rows = []
    for lang in [*languages, UNSEEN]:
        a = policy_a.fallback if lang == UNSEEN else policy_a.threshold_for(lang)
        b = policy_b.fallback if lang == UNSEEN else policy_b.threshold_for(lang)
        shift = round(b - a, 10)
        rows.append(
            {
                "language": lang,
                "threshold_a": a,
                "threshold_b": b,
                "shift": shift,
                "source_a": _source(policy_a, lang),
                "source_b": _source(policy_b, lang),
                "drift": bool(abs(shift) >= drift),
            }
        )
    return pd.DataFrame(
        rows, columns=["language", "threshold_a", "threshold_b", "shift", "source_a", "source_b", "drift"]
    )
