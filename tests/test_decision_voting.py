"""Voting, weights and member alignment, checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from medsift.decision import align_members, combine, hard_vote, soft_vote, weighted_vote, weights_from_scores
from medsift.errors import MedsiftError

# 3 rows x 3 members.
PROBS = np.array([[0.9, 0.2, 0.6], [0.4, 0.5, 0.1], [0.3, 0.3, 0.8]])


def test_hard_vote_majority_by_hand():
    fraction, labels = hard_vote(PROBS)
    # Votes at 0.5 (>=): row 0 -> 1,0,1; row 1 -> 0,1,0 (0.5 counts as positive); row 2 -> 0,0,1.
    np.testing.assert_allclose(fraction, [2 / 3, 1 / 3, 1 / 3])
    np.testing.assert_array_equal(labels, [1, 0, 0])


def test_hard_vote_per_member_thresholds():
    fraction, labels = hard_vote(PROBS, thresholds=[0.95, 0.1, 0.5])
    # Row 0 -> 0,1,1; row 1 -> 0,1,0; row 2 -> 0,1,1.
    np.testing.assert_allclose(fraction, [2 / 3, 1 / 3, 2 / 3])
    np.testing.assert_array_equal(labels, [1, 0, 1])


TIES = np.array([[0.9, 0.2], [0.6, 0.3], [0.8, 0.9]])  # rows 0 and 1 split 1-1; row 2 is unanimous


@pytest.mark.parametrize(
    ("tie", "expected"),
    [
        ("positive", [1, 1, 1]),
        ("negative", [0, 0, 1]),
        ("mean_prob", [1, 0, 1]),  # mean 0.55 >= 0.5; mean 0.45 < 0.5
    ],
)
def test_hard_vote_ties_two_members(tie, expected):
    fraction, labels = hard_vote(TIES, tie=tie)
    np.testing.assert_allclose(fraction, [0.5, 0.5, 1.0])
    np.testing.assert_array_equal(labels, expected)


def test_hard_vote_weights_break_the_split():
    fraction, labels = hard_vote([[0.9, 0.2], [0.2, 0.9]], weights=[1.0, 0.7])
    np.testing.assert_allclose(fraction, [1 / 1.7, 0.7 / 1.7])
    np.testing.assert_array_equal(labels, [1, 0])


def test_hard_vote_rejects_unknown_tie_rule():
    with pytest.raises(MedsiftError, match="tie rule"):
        hard_vote(TIES, tie="coin")


def test_soft_vote_is_the_row_mean():
    np.testing.assert_allclose(soft_vote(PROBS), [1.7 / 3, 1.0 / 3, 1.4 / 3])


def test_weighted_vote_by_hand():
    # Weights 2,1,1 normalise to 0.5, 0.25, 0.25.
    np.testing.assert_allclose(weighted_vote(PROBS, [2, 1, 1]), [0.65, 0.35, 0.425])
    np.testing.assert_allclose(soft_vote(PROBS, weights=[2, 1, 1]), [0.65, 0.35, 0.425])


def test_cross_regime_weights_one_and_point_seven():
    p = weighted_vote([[0.8, 0.3]], [1.0, 0.7])
    np.testing.assert_allclose(p, [(0.8 * 1.0 + 0.3 * 0.7) / 1.7])


@settings(max_examples=50, deadline=None)
@given(
    matrix=st.integers(1, 6).flatmap(
        lambda m: arrays(np.float64, st.tuples(st.integers(1, 20), st.just(m)), elements=st.floats(0, 1))
    ),
    weight=st.floats(0.01, 100),
)
def test_equal_weights_equal_soft_vote(matrix, weight):
    weights = np.full(matrix.shape[1], weight)
    np.testing.assert_allclose(weighted_vote(matrix, weights), soft_vote(matrix), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "weights",
    [[1.0, 2.0], [0.0, 0.0, 0.0], [-1.0, 1.0, 1.0], [np.nan, 1.0, 1.0]],
)
def test_bad_weights_are_refused(weights):
    with pytest.raises(MedsiftError, match="weights"):
        weighted_vote(PROBS, weights)


def test_probabilities_outside_unit_interval_are_refused():
    with pytest.raises(MedsiftError, match=r"\[0, 1\]"):
        soft_vote([[0.2, 1.3]])
    with pytest.raises(MedsiftError, match="NaN"):
        soft_vote([[0.2, np.nan]])
    with pytest.raises(MedsiftError, match="shape"):
        soft_vote([0.2, 0.3])


def test_weights_from_scores_by_hand():
    np.testing.assert_allclose(weights_from_scores([0.6, 0.8]), [3 / 7, 4 / 7])
    np.testing.assert_allclose(weights_from_scores([0.6, 0.8], floor=0.5), [0.25, 0.75])
    np.testing.assert_allclose(weights_from_scores([0.6, 0.8], power=2), [0.36, 0.64])
    np.testing.assert_allclose(weights_from_scores({"xlmr": 0.4, "qwen": 0.6}, floor=0.5), [0.0, 1.0])
    with pytest.raises(MedsiftError, match="floor"):
        weights_from_scores([0.4, 0.5], floor=0.5)


def test_combine_dispatches():
    np.testing.assert_allclose(combine(PROBS, "hard"), [2 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(combine(PROBS, "soft"), soft_vote(PROBS))
    np.testing.assert_allclose(combine(PROBS, "weighted", [2, 1, 1]), [0.65, 0.35, 0.425])
    with pytest.raises(MedsiftError, match="needs weights"):
        combine(PROBS, "weighted")
    with pytest.raises(MedsiftError, match="unknown combination"):
        combine(PROBS, "median")


def _frame(ids, p):
    return pd.DataFrame({"id": ids, "language": "en", "p_ade": p})


def test_align_members_keeps_first_order_and_reorders_others():
    ids, matrix = align_members(
        {"a": _frame(["x1", "x2", "x3"], [0.1, 0.2, 0.3]), "b": _frame(["x3", "x1", "x2"], [0.9, 0.7, 0.8])}
    )
    assert ids.tolist() == ["x1", "x2", "x3"]
    np.testing.assert_allclose(matrix, [[0.1, 0.7], [0.2, 0.8], [0.3, 0.9]])


def test_align_members_refuses_mismatched_ids_naming_them():
    frames = {
        "seed42": _frame(["x1", "x2", "x3"], [0.1, 0.2, 0.3]),
        "seed7": _frame(["x1", "x2", "x9", "x10"], [0.1, 0.2, 0.3, 0.4]),
    }
    with pytest.raises(MedsiftError) as info:
        align_members(frames)
    message = str(info.value)
    assert "'seed7'" in message and "'seed42'" in message
    assert "1 missing (x3)" in message
    assert "2 extra (x9, x10)" in message
    assert "(4 ids)" in message and "(3 ids)" in message


def test_align_members_refuses_duplicates_and_missing_columns():
    with pytest.raises(MedsiftError, match=r"'b' has 1 duplicate ids \(x1\)"):
        align_members({"a": _frame(["x1", "x2"], [0.1, 0.2]), "b": _frame(["x1", "x1"], [0.1, 0.2])})
    with pytest.raises(MedsiftError, match="no 'p_ade' column"):
        align_members({"a": pd.DataFrame({"id": ["x1"], "prob": [0.2]})})
    with pytest.raises(MedsiftError, match="non-numeric p_ade"):
        align_members({"a": _frame(["x1", "x2"], [0.1, "oops"])})
    with pytest.raises(MedsiftError, match="no members"):
        align_members({})


@pytest.mark.parametrize(
    ("tie", "expected"),
    [("positive", [1, 1, 1]), ("negative", [0, 0, 1]), ("mean_prob", [1, 0, 1])],
)
def test_combine_hard_keeps_the_tie_rule_for_a_cut_at_one_half(tie, expected):
    share = combine(TIES, "hard", tie=tie)
    np.testing.assert_array_equal((share >= 0.5).astype(int), expected)  # the ensemble's default cut
    np.testing.assert_allclose(share, [0.5, 0.5, 1.0], atol=1e-5)  # still a readable vote share
    np.testing.assert_array_equal((share >= 0.4).astype(int), [1, 1, 1])  # a lower threshold: ties pass
