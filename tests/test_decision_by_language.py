"""Member weights per language group and threshold shrinkage, on made-up probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from medsift.decision import tune_thresholds
from medsift.decision.by_language import GroupWeights, fit_group_weights, simplex_grid
from medsift.errors import MedsiftError

RNG = np.random.default_rng(0)


def _rows(n: int, language: str, good: int):
    """n rows of one language where member ``good`` separates the classes and the other is noise."""
    y = (np.arange(n) % 4 == 0).astype(int)
    sharp = np.where(y == 1, 0.8, 0.2) + RNG.normal(0, 0.02, n)
    noise = RNG.uniform(0, 1, n)
    probs = np.column_stack([sharp, noise] if good == 0 else [noise, sharp])
    return y, probs, np.array([language] * n, dtype=object)


def _data():
    parts = [_rows(200, "en", good=0), _rows(200, "ru", good=1), _rows(40, "de", good=0)]
    return (np.concatenate([p[i] for p in parts]) for i in range(3))


def test_simplex_grid_covers_every_split_of_one():
    grid = simplex_grid(3, 0.5)
    assert sorted(map(tuple, grid)) == sorted(
        [(0, 0, 1), (0, 0.5, 0.5), (0, 1, 0), (0.5, 0, 0.5), (0.5, 0.5, 0), (1, 0, 0)]
    )
    with pytest.raises(MedsiftError, match="divide 1"):
        simplex_grid(2, 0.3)


def test_each_language_gets_the_member_that_works_there():
    y, probs, langs = _data()
    gw = fit_group_weights(y, probs, langs, ["ngram", "encoder"], [None, None], shrink=0.0)
    en, ru = gw.weights_for("en"), gw.weights_for("ru")
    assert en[0] > en[1] and ru[1] > ru[0]
    # ties go to the most even weights that still separate the classes perfectly
    for lang in ("en", "ru"):
        rows = langs == lang
        p = gw.combine(probs[rows], langs[rows])
        assert p[y[rows] == 1].min() > p[y[rows] == 0].max()
    assert gw.support == {"de": 10, "en": 50, "ru": 50}


def test_shrinkage_pulls_small_groups_toward_the_pooled_weights():
    y, probs, langs = _data()
    free = fit_group_weights(y, probs, langs, ["a", "b"], [None, None], shrink=0.0)
    shrunk = fit_group_weights(y, probs, langs, ["a", "b"], [None, None], shrink=20.0)
    pooled = np.asarray(shrunk.pooled)
    raw_de = np.asarray(shrunk.raw["de"])
    # de has 10 positives: w = (10 * raw + 20 * pooled) / 30
    np.testing.assert_allclose(shrunk.weights_for("de"), (10 * raw_de + 20 * pooled) / 30, atol=1e-6)
    assert abs(shrunk.weights_for("de")[0] - pooled[0]) < abs(free.weights_for("de")[0] - pooled[0])


def test_unseen_languages_go_to_the_members_that_know_them():
    y, probs, langs = _data()
    gw = fit_group_weights(y, probs, langs, ["ngram", "encoder"], [["en", "ru", "de"], None])
    np.testing.assert_array_equal(gw.weights_for("ja"), [0.0, 1.0])
    np.testing.assert_array_equal(gw.weights_for("fa"), [0.0, 1.0])
    assert gw.weights_for("de_cadec")[0] > 0  # CADEC posts are in a language the n-gram member knows
    combined = gw.combine(np.array([[0.9, 0.3], [0.9, 0.3]]), ["ja", "en"])
    assert combined[0] == pytest.approx(0.3)
    again = GroupWeights.from_dict(gw.to_dict())
    np.testing.assert_array_equal(again.combine(probs, langs), gw.combine(probs, langs))


def test_no_member_knowing_a_language_falls_back_to_all():
    gw = GroupWeights(members=["a", "b"], knows=[["en"], ["ru"]], pooled=[0.25, 0.75])
    np.testing.assert_allclose(gw.weights_for("ja"), [0.25, 0.75])
    np.testing.assert_allclose(gw.weights_for("en"), [1.0, 0.0])


def test_threshold_shrinkage_by_support():
    # en: 2 positives whose own best threshold is 0.7; pooled over both languages the best one is 0.4.
    y = np.array([1, 1, 0, 0, 1, 1, 1, 1, 0, 0])
    p = np.array([0.75, 0.72, 0.65, 0.1, 0.45, 0.42, 0.41, 0.44, 0.3, 0.2])
    langs = np.array(["en"] * 4 + ["ru"] * 6)
    grid = [0.4, 0.5, 0.6, 0.7]
    plain = tune_thresholds(y, p, langs, mode="per_language", grid=grid, min_positives=2, fallback="pooled")
    assert plain.thresholds == {"en": 0.7, "ru": 0.4} and plain.fallback == 0.4
    shrunk = tune_thresholds(
        y, p, langs, mode="per_language", grid=grid, min_positives=2, fallback="pooled", shrink=2.0
    )
    assert shrunk.thresholds["en"] == pytest.approx((2 * 0.7 + 2 * 0.4) / 4)  # 0.55
    assert shrunk.thresholds["ru"] == pytest.approx(0.4)  # its own equals the pooled one
    assert shrunk.raw_thresholds == {"en": 0.7, "ru": 0.4} and shrunk.shrink == 2.0
    with pytest.raises(MedsiftError, match="shrinkage"):
        tune_thresholds(y, p, langs, shrink=-1)
