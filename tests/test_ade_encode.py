"""Long posts are never cut silently; batching by token budget keeps every input exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from medsift.ade.encode import _window_starts, encode_posts
from medsift.ade.inference import token_budget_batches


@pytest.fixture(scope="module")
def tok(tiny_bert: Path):
    return AutoTokenizer.from_pretrained(tiny_bert)


def test_short_posts_pass_unchanged(tok):
    enc = encode_posts(tok, ["a short post"], max_length=32)
    assert enc.n_too_long == 0 and len(enc.features) == 1
    assert enc.features[0]["input_ids"] == tok("a short post")["input_ids"]


@pytest.mark.parametrize("policy", ["head", "head_tail", "windows"])
def test_long_posts_are_counted_and_fit(tok, policy):
    long_text = " ".join(["withdrawal"] * 40 + ["headache"] * 40)
    enc = encode_posts(tok, [long_text, "ok"], max_length=16, policy=policy, stride=4)
    assert enc.n_too_long == 1
    assert all(len(f["input_ids"]) <= 16 for f in enc.features)
    assert {f["post"] for f in enc.features} == {0, 1}


def test_head_tail_keeps_both_ends(tok):
    body = tok("one two three four five six seven eight nine ten", add_special_tokens=False)["input_ids"]
    enc = encode_posts(
        tok, ["one two three four five six seven eight nine ten"], max_length=6, policy="head_tail"
    )
    inner = enc.features[0]["input_ids"][1:-1]
    assert inner == body[:2] + body[-2:]


def test_windows_cover_every_token():
    for n in range(1, 60):
        for room, stride in ((8, 2), (10, 5), (7, 0)):
            starts = _window_starts(n, room, stride)
            covered = set()
            for s in starts:
                covered.update(range(s, min(n, s + room)))
            assert covered == set(range(n))
            assert starts[-1] + min(room, n) == n


def test_token_budget_batches_partition_inputs():
    lengths = [5, 50, 7, 7, 120, 3, 64, 64, 9]
    batches = list(token_budget_batches(lengths, batch_tokens=128, max_batch=4))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= 4
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 128
