"""Threshold search, per-language policies, fallbacks and cross-fitting against hand computation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medsift.decision import ThresholdPolicy, cross_fit_thresholds, search_threshold, tune_thresholds
from medsift.decision.thresholds import DEFAULT_GRID, score_labels
from medsift.errors import MedsiftError

GRID = [0.3, 0.4, 0.5, 0.6]
# At t = 0.3 / 0.4 / 0.5 / 0.6: (tp, fp, fn) = (3,2,0) (3,1,0) (2,1,1) (2,0,1);
# F1 = 6/8, 6/7, 4/6, 4/5. Negative-class F1 = 0, 2/3, 2/4, 4/5.
Y = [1, 1, 0, 0, 1]
P = [0.9, 0.45, 0.5, 0.3, 0.7]


def test_search_f1_picks_hand_computed_optimum():
    result = search_threshold(Y, P, GRID)
    assert result.threshold == 0.4
    assert result.score == pytest.approx(6 / 7)


def test_search_macro_f1_and_fbeta():
    macro = search_threshold(Y, P, GRID, metric="macro_f1")
    assert macro == (0.6, pytest.approx(0.8))  # (4/5 + 4/5) / 2
    recall_heavy = search_threshold(Y, P, GRID, metric="fbeta", beta=2.0)
    assert recall_heavy == (0.4, pytest.approx(15 / 16))  # 5*3 / (5*3 + 4*0 + 1)
    precision_heavy = search_threshold(Y, P, GRID, metric="fbeta", beta=0.5)
    assert precision_heavy == (0.6, pytest.approx(2.5 / 2.75))  # 1.25*2 / (1.25*2 + 0.25*1 + 0)


def test_search_ties_go_to_the_threshold_closest_to_half_then_lower():
    # Both rows are separated by every grid point, so every threshold scores 1.0.
    assert search_threshold([1, 0], [0.8, 0.2], [0.3, 0.6, 0.7]).threshold == 0.6
    assert search_threshold([1, 0], [0.8, 0.2], [0.3, 0.45, 0.55, 0.7]).threshold == 0.45


def test_default_grid_is_clean_and_spans_020_080():
    low = search_threshold([1, 0, 0], [0.21, 0.205, 0.1])
    assert low.threshold == 0.21  # not 0.21000000000000002
    high = search_threshold([1, 0], [0.95, 0.795])
    assert high == (0.8, 1.0)  # only the top of the grid separates them
    unreachable = search_threshold([1, 0], [0.95, 0.85])  # no grid point separates: every one ties at 2/3
    assert unreachable == (0.5, pytest.approx(2 / 3))
    assert len(DEFAULT_GRID) == 61 and DEFAULT_GRID[0] == 0.2 and DEFAULT_GRID[-1] == 0.8


def test_search_refuses_bad_input():
    with pytest.raises(MedsiftError, match="labels 0/1"):
        search_threshold([1, 2], [0.3, 0.4])
    with pytest.raises(MedsiftError, match="one label per row"):
        search_threshold([1], [0.3, 0.4])
    with pytest.raises(MedsiftError, match="unknown metric"):
        search_threshold(Y, P, GRID, metric="auc")


# Calibration rows of three languages. en as above (best 0.4 on GRID).
# de: y 1,0,1,0 p .65,.55,.8,.2 -> F1 4/5 at 0.3-0.5, 1.0 at 0.6 -> 0.6.
# fr: a single positive, below min_positives=2 -> falls back.
Y_CAL = [*Y, 1, 0, 1, 0, 0, 0, 1]
P_CAL = [*P, 0.65, 0.55, 0.8, 0.2, 0.1, 0.2, 0.35]
L_CAL = ["en"] * 5 + ["de"] * 4 + ["fr"] * 3
# Pooled over all 12 rows: t=0.3 -> (6,3,0) F1 12/15 = 0.8; 0.4 -> (5,2,1) 10/13; 0.5 -> (4,2,2) 8/12;
# 0.6 -> (4,0,2) 8/10 = 0.8. Tie 0.3 / 0.6 -> 0.6 (closer to 0.5).


def _policy(**kwargs):
    return tune_thresholds(Y_CAL, P_CAL, L_CAL, grid=GRID, min_positives=2, **kwargs)


def test_per_language_thresholds_and_mean_fallback():
    policy = _policy(fallback="mean")
    assert policy.thresholds == {"de": 0.6, "en": 0.4}
    assert policy.fallback == pytest.approx(0.5)  # (0.4 + 0.6) / 2
    assert list(policy.fallback_languages) == ["fr"]
    assert "too few positives: 1 < min_positives 2" in policy.fallback_languages["fr"]
    assert policy.n_calibration == 12
    assert policy.counts["fr"] == {"rows": 3, "positives": 1}
    assert policy.scores == {"de": pytest.approx(1.0), "en": pytest.approx(6 / 7)}


def test_pooled_and_global_fallbacks():
    assert _policy(fallback="pooled").fallback == 0.6
    assert _policy(fallback="global").fallback == 0.5


def test_fallback_language_and_unseen_language_get_the_fallback_at_apply_time():
    mean_policy, pooled_policy = _policy(fallback="mean"), _policy(fallback="pooled")
    p = [0.55, 0.55, 0.55, 0.55]
    langs = ["fr", "fa", "en", "de"]
    # fr (too few positives) and fa (never seen) use 0.5 / 0.6; en 0.4; de 0.6.
    np.testing.assert_array_equal(mean_policy.apply(p, langs), [1, 1, 1, 0])
    np.testing.assert_array_equal(pooled_policy.apply(p, langs), [0, 0, 1, 0])
    assert mean_policy.threshold_for("fa") == mean_policy.fallback


def test_language_with_no_positives_falls_back():
    policy = tune_thresholds([1] * 5 + [0] * 3, [0.9] * 5 + [0.1] * 3, ["en"] * 5 + ["ja"] * 3)
    assert policy.thresholds.keys() == {"en"}
    assert policy.fallback_languages["ja"].startswith("too few positives: 0")
    assert policy.threshold_for("ja") == policy.fallback == policy.thresholds["en"]


def test_mean_fallback_without_any_tuned_language_is_half_with_a_note():
    policy = tune_thresholds([1, 0, 0], [0.9, 0.1, 0.2], ["en", "en", "de"], min_positives=5)
    assert policy.thresholds == {}
    assert policy.fallback == 0.5
    assert "no language had enough positives" in policy.notes[0]


def test_global_and_tuned_global_modes():
    fixed = _policy(mode="global")
    assert fixed.thresholds == {} and fixed.threshold_for("en") == 0.5
    pooled = _policy(mode="tuned_global")
    assert pooled.thresholds == {} and pooled.threshold_for("en") == 0.6 == pooled.threshold_for("fa")
    with pytest.raises(MedsiftError, match="unknown threshold mode"):
        _policy(mode="per_country")
    with pytest.raises(MedsiftError, match="unknown fallback"):
        _policy(fallback="median")


def test_policy_json_round_trip():
    policy = _policy(fallback="pooled")
    text = json.dumps(policy.to_dict())
    again = ThresholdPolicy.from_dict(json.loads(text))
    assert again == policy
    assert again.apply([0.45, 0.55], ["en", "fa"]).tolist() == [1, 0]


def test_policy_from_dict_refuses_foreign_payloads():
    data = _policy().to_dict()
    with pytest.raises(MedsiftError, match="unknown keys: colour"):
        ThresholdPolicy.from_dict({**data, "colour": "red"})
    with pytest.raises(MedsiftError, match="not a threshold policy"):
        ThresholdPolicy.from_dict({k: v for k, v in data.items() if k != "format"})


def test_score_labels_matches_metrics():
    assert score_labels([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(0.5)
    assert score_labels([1, 1, 0, 0], [1, 0, 0, 0], "macro_f1") == pytest.approx((2 / 3 + 0.8) / 2)


def _separable(n_per_class=12):
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(n_per_class), np.zeros(n_per_class)].astype(int)
    p = np.r_[rng.uniform(0.7, 0.9, n_per_class), rng.uniform(0.1, 0.3, n_per_class)]
    langs = np.array(["en", "de"] * n_per_class)
    return y, p, langs


def test_cross_fit_is_out_of_fold_and_deterministic():
    y, p, langs = _separable()
    kwargs = {"grid": GRID, "min_positives": 2, "fallback": "pooled"}
    result = cross_fit_thresholds(y, p, langs, folds=3, seed=1, **kwargs)
    again = cross_fit_thresholds(y, p, langs, folds=3, seed=1, **kwargs)
    np.testing.assert_array_equal(result.folds, again.folds)
    # Stratified by (language, label): each fold holds 2 rows of each of the 4 strata.
    assert np.bincount(result.folds).tolist() == [8, 8, 8]
    for k, fold_policy in enumerate(result.fold_policies):
        held = result.folds == k
        manual = tune_thresholds(y[~held], p[~held], langs[~held], **kwargs)
        assert fold_policy == manual
        np.testing.assert_array_equal(result.labels[held], manual.apply(p[held], langs[held]))
    assert result.score == pytest.approx(1.0)
    assert result.policy == tune_thresholds(y, p, langs, **kwargs)


def test_cross_fit_treats_a_language_missing_from_training_folds_as_unseen():
    y = np.array([1, 0, 1, 0, 1, 0, 1])
    p = np.array([0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.65])
    langs = np.array(["en"] * 6 + ["fa"])
    result = cross_fit_thresholds(y, p, langs, folds=2, seed=0, grid=GRID, min_positives=1)
    fa_fold = result.folds[6]
    assert "fa" not in result.fold_policies[fa_fold].thresholds
    assert result.thresholds[6] == result.fold_policies[fa_fold].fallback


def test_cross_fit_refuses_bad_fold_counts():
    y, p, langs = _separable(2)
    with pytest.raises(MedsiftError, match="at least 2 folds"):
        cross_fit_thresholds(y, p, langs, folds=1)
    with pytest.raises(MedsiftError, match="cannot make 5 folds from 4"):
        cross_fit_thresholds(y, p, langs, folds=5)


def test_cadec_rows_get_the_scorer_group_and_their_own_threshold():
    from medsift.decision import threshold_groups

    ids = ["de_1", "de_cadecv2_7", "fr_cadecv2_3", "en_4"]
    assert threshold_groups(ids, ["de", "de", "fr", "en"]).tolist() == ["de", "de_cadec", "fr_cadec", "en"]
    # native German posts are rarely positive, translated CADEC reviews mostly: one threshold would fit neither
    y = np.array([0, 0, 0, 0, 1, 1, 1] * 2 + [1, 1, 1, 1, 1, 0, 1] * 2)
    p = np.array([0.3, 0.35, 0.4, 0.45, 0.6, 0.65, 0.7] * 2 + [0.3, 0.3, 0.35, 0.35, 0.4, 0.2, 0.45] * 2)
    ids = [f"de_{i}" for i in range(14)] + [f"de_cadecv2_{i}" for i in range(14)]
    policy = tune_thresholds(y, p, threshold_groups(ids, ["de"] * 28), min_positives=3)
    assert set(policy.thresholds) == {"de", "de_cadec"}
    assert policy.thresholds["de_cadec"] < policy.thresholds["de"]
