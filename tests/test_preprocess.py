"""Preprocessing: normalisation of the placeholders the real data uses, oversampling, stratified splits."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medsift.preprocess import normalize_text, oversample_positives, stratified_split

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


# ---------------------------------------------------------------- normalize_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # en (official Task 1): padded placeholders and handles cut short by the masking
        ("@USER_____ @USE it's HTTPURL________________", "@USER @USER it's [URL]"),
        # de (official Task 1) and KEEPHA-Ja placeholders
        ("<user> schau unter <url> nach", "@USER schau unter [URL] nach"),
        ("<user_name> メトトレキサート <url>", "@USER メトトレキサート [URL]"),
        ("<USER> and [url] and URL", "@USER and [URL] and [URL]"),
        # real URLs and mentions; trailing punctuation stays with the sentence
        ("see https://x.com/a?b=1. and (www.foo.org), ok", "see [URL]. and ([URL]), ok"),
        ("Привет @Dr_ulitka!", "Привет @USER!"),
        ("<user>schau<url>da", "@USER schau [URL] da"),
        ("readHTTPURL___ via@USER__", "read [URL] via @USER"),
        # floods, whitespace, casing, digits
        ("sooooo GOOD!!!!!!", "sooo GOOD!!!"),
        ("a\t\n  b   c ", "a b c"),
        ("10000mg", "10000mg"),
        ("😀😀😀😀😀 ок", "😀😀😀 ок"),
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


def test_normalize_keeps_ordinary_words_emails_and_other_tags():
    text = "the url is wrong, mail a@b.com to <doctor> on <date>"
    assert normalize_text(text) == text


def test_normalize_options():
    assert normalize_text("@x http://y soooo", url="<U>", user="<P>", max_repeat=2) == "<P> <U> soo"
    assert normalize_text("soooo", max_repeat=0) == "soooo"


def test_normalize_leaves_cjk_and_persian_untouched():
    for text in ("頭痛がひどい。薬のせいかな", "服药后头疼", "بعد از مصرف قرص سردرد دارم"):
        assert normalize_text(text) == text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_normalize_is_idempotent(text):
    once = normalize_text(text)
    assert normalize_text(once) == once


def test_real_rows_lose_every_url_and_user_placeholder():
    files = [*(DATA / "task1").glob("train_*.csv"), DATA / "keepha-ja" / "task1_ja.csv"]
    files = [f for f in files if f.exists()]
    if not files:
        pytest.skip("shared data not present")
    for path in files:
        texts = pd.read_csv(path, dtype=str, keep_default_na=False)["text"].head(3000).map(normalize_text)
        joined = "\n".join(texts)
        for leftover in ("HTTPURL", "<url>", "<user>", "<user_name>", "@USER_", "http://", "https://"):
            assert leftover not in joined, (path.name, leftover)


# ---------------------------------------------------------------- oversample_positives


def _frame(n_pos: int, n_neg: int) -> pd.DataFrame:
    labels = [1] * n_pos + [0] * n_neg
    return pd.DataFrame(
        {
            "uid": [f"u{i}" for i in range(len(labels))],
            "label": pd.array(labels, dtype="Int64"),
            "language": ["en", "de"] * (len(labels) // 2) + ["en"] * (len(labels) % 2),
        }
    )


def test_oversample_integer_factor():
    frame = _frame(4, 6)
    out = oversample_positives(frame, 3, seed=0)
    counts = out.groupby("uid").size()
    assert len(out) == 4 * 3 + 6
    assert all(counts[f"u{i}"] == 3 for i in range(4)) and all(counts[f"u{i}"] == 1 for i in range(4, 10))
    assert sorted(out[out["uid"] == "u0"]["copy"]) == [0, 1, 2]
    assert set(out[out["label"] == 0]["copy"]) == {0}
    assert out["uid"].tolist() != sorted(out["uid"].tolist(), key=lambda u: int(u[1:]))  # shuffled


def test_oversample_fractional_factor_is_reproducible():
    frame = _frame(10, 5)
    a, b = (oversample_positives(frame, 2.5, seed=3) for _ in range(2))
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 10 * 2 + 5 + 5  # half the positives get a third copy
    assert set(a.groupby("uid").size()[[f"u{i}" for i in range(10)]]) == {2, 3}
    assert not a.equals(oversample_positives(frame, 2.5, seed=4))


def test_oversample_factor_one_and_invalid():
    frame = _frame(2, 2)
    assert oversample_positives(frame, 1, seed=0) is frame
    with pytest.raises(ValueError):
        oversample_positives(frame, 0.5, seed=0)


def test_oversample_unlabelled_rows_are_not_positives():
    frame = _frame(1, 1)
    frame.loc[1, "label"] = pd.NA
    assert len(oversample_positives(frame, 2, seed=0)) == 3


# ---------------------------------------------------------------- stratified_split


def _assert_partition(frame: pd.DataFrame, parts: dict[str, pd.DataFrame]) -> None:
    joined = pd.concat(parts.values())
    assert len(joined) == len(frame) and joined.index.is_unique
    pd.testing.assert_frame_equal(joined.sort_index(), frame.sort_index())


def test_three_way_split_partitions_and_keeps_proportions_per_stratum():
    frame = _frame(60, 140)
    parts = stratified_split(frame, {"train": 0.8, "val": 0.1, "calib": 0.1}, seed=0)
    _assert_partition(frame, parts)
    for (label, lang), stratum in frame.groupby(["label", "language"]):
        for name, share in (("train", 0.8), ("val", 0.1), ("calib", 0.1)):
            part = parts[name]
            got = ((part["label"] == label) & (part["language"] == lang)).sum()
            assert abs(got - share * len(stratum)) < 1, (label, lang, name)


def test_float_fraction_and_reproducibility():
    frame = _frame(20, 20)
    a = stratified_split(frame, 0.25, seed=1)
    assert set(a) == {"train", "test"} and len(a["test"]) == 10
    b = stratified_split(frame, 0.25, seed=1)
    assert a["test"].index.equals(b["test"].index)
    assert not a["test"].index.equals(stratified_split(frame, 0.25, seed=2)["test"].index)


def test_small_strata_go_to_the_first_split():
    frame = pd.DataFrame({"label": [1, 0, 0, 0, 0, 0], "language": ["fa", "en", "en", "en", "en", "en"]})
    parts = stratified_split(frame, {"train": 0.5, "val": 0.3, "calib": 0.2}, seed=0)
    assert 0 in parts["train"].index  # the lone fa positive cannot be split three ways
    _assert_partition(frame, parts)


def test_many_small_strata_rotate_leftovers():
    frame = pd.DataFrame({"label": [0] * 50, "language": [f"l{i // 5}" for i in range(50)]})
    parts = stratified_split(frame, {"train": 0.8, "val": 0.1, "calib": 0.1}, seed=0)
    assert (len(parts["train"]), len(parts["val"]), len(parts["calib"])) == (40, 5, 5)


def test_bad_fractions_are_refused():
    frame = _frame(2, 2)
    for bad in ({"a": 0.5, "b": 0.6}, {"a": -0.1, "b": 1.1}, 1.5, {}):
        with pytest.raises(ValueError):
            stratified_split(frame, bad, seed=0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.sampled_from(["en", "de", "ja"])), min_size=1, max_size=80),
    st.integers(0, 10),
)
def test_split_always_partitions(rows, seed):
    frame = pd.DataFrame(rows, columns=["label", "language"])
    _assert_partition(frame, stratified_split(frame, {"train": 0.7, "val": 0.2, "calib": 0.1}, seed=seed))
