"""Per-language probability histograms and threshold-drift tables."""

from __future__ import annotations

import numpy as np
import pytest

from medsift.decision import ThresholdPolicy, probability_histograms, threshold_shift


def test_probability_histograms_by_hand():
    p = [0.8, 0.9, 0.3, 0.1, 0.6, 0.9, 0.1, 0.2]
    y = [1, 1, 1, 0, 0, 1, 0, 0]
    langs = ["en"] * 5 + ["de"] * 2 + ["ja"]
    hists = probability_histograms(p, y, langs, bins=2)
    assert list(hists) == ["de", "en", "ja"]
    en = hists["en"]
    # Positives .8 .9 .3 -> bins [1, 2]; negatives .1 .6 -> [1, 1].
    np.testing.assert_array_equal(en.positive, [1, 2])
    np.testing.assert_array_equal(en.negative, [1, 1])
    np.testing.assert_allclose(en.positive_share, [1 / 3, 2 / 3])
    assert en.overlap == pytest.approx(1 / 3 + 1 / 2)
    assert (en.n_positive, en.n_negative) == (3, 2)
    assert hists["de"].overlap == 0.0  # .9 vs .1: fully separated
    assert np.isnan(hists["ja"].overlap)  # no positives
    np.testing.assert_allclose(en.edges, [0.0, 0.5, 1.0])


def test_probability_histograms_pooled_and_closed_last_bin():
    hists = probability_histograms([1.0, 0.0], [1, 0], bins=4)
    assert list(hists) == ["all"]
    np.testing.assert_array_equal(hists["all"].positive, [0, 0, 0, 1])
    assert hists["all"].overlap == 0.0


def _policy(thresholds, fallback, fallback_languages=None):
    return ThresholdPolicy(
        mode="per_language",
        fallback=fallback,
        fallback_rule="mean",
        thresholds=thresholds,
        fallback_languages=fallback_languages or {},
    )


def test_threshold_shift_table_and_drift_flags():
    a = _policy({"en": 0.5, "de": 0.6}, 0.55)
    b = _policy({"en": 0.6, "fr": 0.3}, 0.45, {"de": "too few positives: 1 < min_positives 5"})
    table = threshold_shift(a, b)
    assert table["language"].tolist() == ["de", "en", "fr", "<unseen>"]
    np.testing.assert_allclose(table["threshold_a"], [0.6, 0.5, 0.55, 0.55])
    np.testing.assert_allclose(table["threshold_b"], [0.45, 0.6, 0.3, 0.45])
    np.testing.assert_allclose(table["shift"], [-0.15, 0.1, -0.25, -0.1])
    # 0.6 - 0.5 is 0.09999999999999998 in floating point and must still count as a 0.1 shift.
    assert table["drift"].tolist() == [True, True, True, True]
    assert table["source_a"].tolist() == ["tuned", "tuned", "fallback (unseen)", "fallback (mean)"]
    assert table["source_b"].tolist()[0] == "fallback (too few positives)"
    strict = threshold_shift(a, b, drift=0.2)
    assert strict["drift"].tolist() == [False, False, True, False]


def test_threshold_shift_flags_the_papers_augmentation_drift():
    """Gladiators' Farsi augmentation v2: the ja threshold moved from 0.70 (plain run) to 0.27 (augmented)."""
    plain = _policy({"en": 0.45, "ja": 0.70, "ru": 0.50}, 0.5)
    augmented = _policy({"en": 0.47, "ja": 0.27, "ru": 0.52, "fa": 0.40}, 0.5)
    table = threshold_shift(plain, augmented).set_index("language")
    assert table.loc["ja", "shift"] == -0.43 and table.loc["ja", "drift"]
    assert not table.loc["en", "drift"] and not table.loc["ru", "drift"]
    assert table.loc["fa", "source_a"] == "fallback (unseen)" and table.loc["fa", "source_b"] == "tuned"
