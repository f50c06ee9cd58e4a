"""Window plans over long posts and the merge rule (pure)."""

from __future__ import annotations

import itertools
import random

import pytest

from medsift.impacts.windows import merge_windows, plan_windows


def _check_plan(counts, budget, stride, windows):
    n = len(counts)
    assert windows[0][0] == 0 and windows[-1][1] == n
    for (s0, e0), (s1, e1) in itertools.pairwise(windows):
        assert s0 < s1 <= e0 < e1  # moves forward, no gap
    for s, e in windows:
        assert e - s == 1 or sum(counts[s:e]) <= budget


def test_plan_covers_everything_with_overlap():
    counts = [1, 2, 1, 3, 1, 1, 2, 1, 1, 1]
    windows = plan_windows(counts, budget=5, stride=2)
    _check_plan(counts, 5, 2, windows)
    assert windows[0] == (0, 3)
    assert windows[1][0] == 2  # steps back to keep about `stride` subwords of overlap


def test_plan_edge_cases():
    assert plan_windows([], 10, 2) == []
    assert plan_windows([3, 4], 100, 10) == [(0, 2)]
    # A word longer than the budget gets a window of its own.
    assert plan_windows([1, 50, 1], 4, 1) == [(0, 1), (1, 2), (2, 3)]
    # Words with no subword never stall the plan.
    windows = plan_windows([0, 0, 2, 0, 2, 2], 3, 2)
    _check_plan([0, 0, 2, 0, 2, 2], 3, 2, windows)
    with pytest.raises(ValueError):
        plan_windows([1], 0, 0)


def test_plan_random_posts():
    rng = random.Random(0)
    for _ in range(200):
        counts = [rng.choice([0, 1, 1, 1, 2, 3, 7]) for _ in range(rng.randint(1, 300))]
        budget, stride = rng.randint(1, 40), rng.randint(0, 20)
        _check_plan(counts, budget, stride, plan_windows(counts, budget, stride))


def test_span_crossing_a_border_comes_back_whole():
    words = 20
    gold = ["O"] * words
    gold[8:12] = ["B-SocialImpacts", "I-SocialImpacts", "I-SocialImpacts", "I-SocialImpacts"]
    windows = [(0, 10), (6, 16), (12, 20)]
    # Window 0 sees only the first two words of the span; window 1 sees it whole; window 2 not at all.
    preds = [gold[0:10], gold[6:16], gold[12:20]]
    preds[0] = ["O"] * 8 + ["O", "O"]  # the cut span is missed near the edge of window 0
    assert merge_windows(windows, preds, words) == gold


def test_merge_prefers_most_context_and_fills_gaps():
    windows = [(0, 4), (2, 6)]
    preds = [["a0", "a1", "a2", "a3"], ["b2", "b3", "b4", "b5"]]
    # word 2: context 1 in window 0 (right side) vs 0 in window 1 (left side) → a; word 3: b.
    assert merge_windows(windows, preds, 6) == ["a0", "a1", "a2", "b3", "b4", "b5"]
    # Distances count subwords: a long word 1 gives word 2 more left context in the second window.
    two = [(0, 5), (1, 6)]
    preds2 = [["a0", "a1", "a2", "a3", "a4"], ["b1", "b2", "b3", "b4", "b5"]]
    assert merge_windows(two, preds2, 6)[2] == "a2"
    assert merge_windows(two, preds2, 6, subword_counts=[1, 5, 1, 1, 1, 1])[2] == "b2"
    # A window that could not predict a word (None) defers to another; no prediction at all is O.
    assert merge_windows(windows, [["a0", None, "a2", "a3"], ["b2", "b3", "b4", "b5"]], 6)[1] == "O"
    assert merge_windows([(0, 2), (1, 3)], [["x", None], [None, "y"]], 3) == ["x", "O", "y"]
    with pytest.raises(ValueError):
        merge_windows([(0, 2)], [["x", "y"]], 3)
    with pytest.raises(ValueError):
        merge_windows([(0, 2)], [["x"]], 2)


@pytest.mark.parametrize("kind", ["wordpiece_tokenizer", "unigram_tokenizer"])
def test_batched_window_encoding_equals_encoding_each_post_alone(kind, request):
    """encode_windows tokenises a whole chunk at once; every post must get the windows it gets alone."""
    from transformers import AutoTokenizer

    from medsift.impacts.model import encode_windows

    tokenizer = AutoTokenizer.from_pretrained(str(request.getfixturevalue(kind)))
    rng = random.Random(3)
    vocab = ["pain", "overdosed", "job", "lost", "🙏", "после", "работу", ",", "withdrawal", "x" * 40, ""]
    posts = [[rng.choice(vocab) for _ in range(rng.randint(0, 60))] for _ in range(40)] + [[]]
    windows, counts = encode_windows(tokenizer, posts, max_length=16, stride=4)
    alone = [encode_windows(tokenizer, [post], max_length=16, stride=4) for post in posts]
    assert counts == [c[0] for _, c in alone]
    per_post = [[w for w in windows if w.post == p] for p in range(len(posts))]
    assert [[(w.window, w.input_ids, w.word_ids) for w in ws] for ws in per_post] == [
        [(w.window, w.input_ids, w.word_ids) for w in ws] for ws, _ in alone
    ]
    assert not per_post[-1] and sum(map(len, per_post)) == len(windows) > len(posts)
