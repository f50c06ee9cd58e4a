"""Tagger levers chosen by cross-validation: span merging, oversampling of posts by type (pure)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from medsift.impacts.bio import merge_close_spans
from medsift.impacts.predict import postprocess
from medsift.impacts.train import oversample_posts
from medsift.scoring.impacts import spans_from_bio

C, S = "ClinicalImpacts", "SocialImpacts"


def test_merge_joins_fragments_of_one_type_split_by_o():
    tags = [f"B-{C}", f"I-{C}", "O", f"B-{C}", "O", "O", f"B-{C}"]
    assert merge_close_spans(tags, 1) == [f"B-{C}", f"I-{C}", f"I-{C}", f"I-{C}", "O", "O", f"B-{C}"]
    assert merge_close_spans(tags, 2) == [f"B-{C}"] + [f"I-{C}"] * 6


def test_merge_never_joins_across_types_or_another_span():
    tags = [f"B-{C}", "O", f"B-{S}", "O", f"B-{C}"]
    assert merge_close_spans(tags, 1) == tags
    assert merge_close_spans(tags, 3) == tags  # the S span between them blocks the merge


def test_merge_reads_spans_as_the_scorers_do():
    # a stray I- opens a span (conlleval reading); touching spans of one type join at any gap
    assert merge_close_spans(["O", f"I-{S}", "O", f"I-{S}"], 1) == ["O", f"B-{S}", f"I-{S}", f"I-{S}"]
    assert merge_close_spans([f"B-{C}", f"B-{C}"], 1) == [f"B-{C}", f"I-{C}"]
    with pytest.raises(ValueError):
        merge_close_spans(["O"], -1)


def test_merge_keeps_length_and_never_adds_a_span():
    tags = ["O", f"B-{C}", "O", f"I-{C}", f"B-{S}", "O", "O", f"I-{S}", "O"]
    for gap in range(4):
        out = merge_close_spans(tags, gap)
        assert len(out) == len(tags)
        assert len(spans_from_bio(out)) <= len(spans_from_bio(tags))


def test_postprocess_is_off_by_default():
    tags = [[f"B-{C}", "O", f"B-{C}"]]
    assert postprocess(tags, {}) is tags
    assert postprocess(tags, {"merge_gap": 0}) is tags
    assert postprocess(tags, {"merge_gap": 1}) == [[f"B-{C}", f"I-{C}", f"I-{C}"]]


def test_oversampling_repeats_posts_of_a_type():
    tags = [["O"], [f"B-{S}"], [f"B-{C}"], [f"B-{C}", f"B-{S}"]]
    assert oversample_posts(tags, {}, 0) == [0, 1, 2, 3]
    assert oversample_posts(tags, {S: 3}, 0) == [0, 1, 1, 1, 2, 3, 3, 3]
    # the largest factor of a post's types wins
    assert oversample_posts(tags, {S: 2, C: 3}, 0) == [0, 1, 1, 2, 2, 2, 3, 3, 3]


def test_fractional_oversampling_is_seeded_and_proportional():
    tags = [[f"B-{S}"]] * 10 + [["O"]] * 5
    order = oversample_posts(tags, {S: 1.5}, 7)
    assert order == oversample_posts(tags, {S: 1.5}, 7)
    assert len(order) == 15 + 5  # half of the 10 posts get a second copy
    assert order.count(12) == 1


def test_config_options_are_validated():
    from medsift.config import ConfigError, parse_config

    raw = {"task": "impacts", "model": {"name": "x"}, "data": {"train": ["t.csv"]}}
    cfg = parse_config({**raw, "postprocess": {"merge_gap": 1, "o_bias": 1.5}})
    assert (
        cfg.postprocess.merge_gap == 1 and cfg.postprocess.o_bias == 1.5 and cfg.data.oversample_types == {}
    )
    with pytest.raises(ConfigError, match="factor must be >= 1"):
        parse_config({**raw, "data": {"train": ["t.csv"], "oversample_types": {S: 0.5}}})
    with pytest.raises(ConfigError, match="merge_gap"):
        parse_config({**raw, "postprocess": {"merge_gap": -1}})


class _FixedScores(torch.nn.Module):
    """A stand-in tagger: the same label scores at every position."""

    def __init__(self, scores: list[float]):
        super().__init__()
        self.scores = torch.nn.Parameter(torch.tensor(scores))

    def forward(self, input_ids, attention_mask):  # (batch, seq) -> logits (batch, seq, labels)
        return SimpleNamespace(logits=self.scores.expand(*input_ids.shape, -1).detach())


def test_o_bias_moves_tokens_from_o_into_spans():
    from medsift.impacts.model import EncodedWindow
    from medsift.impacts.predict import _batch_tags

    labels = ["O", C, S]
    window = EncodedWindow(post=0, window=(0, 2), input_ids=[1, 5, 6, 2], word_ids=[None, 0, 1, None])
    model = _FixedScores([1.0, 0.4, 0.0])  # O wins by 0.6
    meta = {"labels": labels, "crf": False}
    assert _batch_tags(model, 0, meta, [window])[0][1:3] == ["O", "O"]
    assert _batch_tags(model, 0, {**meta, "o_bias": 0.5}, [window])[0][1:3] == ["O", "O"]
    assert _batch_tags(model, 0, {**meta, "o_bias": 0.7}, [window])[0][1:3] == [C, C]
    assert model.scores.tolist() == pytest.approx([1.0, 0.4, 0.0])  # the model's own scores are untouched


def test_type_bias_raises_one_type_only():
    from medsift.impacts.model import EncodedWindow
    from medsift.impacts.predict import _batch_tags

    window = EncodedWindow(post=0, window=(0, 1), input_ids=[1, 5, 2], word_ids=[None, 0, None])
    model = _FixedScores([1.0, 0.4, 0.0])  # O, then Clinical 0.6 behind, Social 1.0 behind
    io = {"labels": ["O", C, S], "crf": False}
    assert _batch_tags(model, 0, {**io, "type_bias": {S: 0.9}}, [window])[0][1] == "O"
    assert _batch_tags(model, 0, {**io, "type_bias": {S: 1.1}}, [window])[0][1] == S
    # o_bias 0.7 first (O at 0.3 falls behind Clinical's 0.4), then Social at 0.8 wins over both
    assert _batch_tags(model, 0, {**io, "o_bias": 0.7, "type_bias": {S: 0.8}}, [window])[0][1] == S
    # BIO: both B- and I- of the type move; another type is untouched
    bio = _FixedScores([1.0, 0.0, 0.2, 0.0, 0.0])
    meta = {"labels": ["O", f"B-{C}", f"I-{C}", f"B-{S}", f"I-{S}"], "crf": False}
    assert _batch_tags(bio, 0, {**meta, "type_bias": {C: 0.9}}, [window])[0][1] == f"I-{C}"
    assert _batch_tags(bio, 0, {**meta, "type_bias": {S: 0.9}}, [window])[0][1] == "O"


def test_per_seed_validation_splits_differ_and_cover_the_posts(tmp_path):
    import csv

    from medsift.config import parse_config
    from medsift.impacts.train import load_data

    path = tmp_path / "t.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["tokens", "labels", "ID", "ner_tags"])
        for i in range(40):
            tag = f"B-{C}" if i % 3 else "O"
            w.writerow([repr([f"w{i}", "x"]), repr([tag[2:] or "_", "_"]), f"p{i}", repr([tag, "O"])])
    raw = {"task": "impacts", "model": {"name": "x"}, "data": {"train": [str(path)], "val_fraction": 0.25}}
    shared = parse_config(raw)
    per_seed = parse_config({**raw, "data": {**raw["data"], "val_split": "per_seed"}})

    def held_out(cfg, seed):
        return {w[0] for w in load_data(cfg, seed)["dev"][0]}

    assert held_out(shared, 1) == held_out(shared, 2) == held_out(shared, None)
    a, b = held_out(per_seed, 1), held_out(per_seed, 2)
    assert len(a) == len(b) == 10 and a != b
    assert a == held_out(per_seed, 1)  # seeded: a resumed seed holds out the same posts
    assert len(set.union(*(held_out(per_seed, s) for s in range(42, 50)))) > 30


def test_extend_grows_spans_into_likely_neighbours_only():
    from medsift.impacts.bio import extend_spans

    tags = ["O", "O", f"B-{C}", "O", "O", f"B-{S}", "O"]
    probs = [  # O, Clinical, Social per word
        [0.9, 0.1, 0.0],
        [0.5, 0.4, 0.1],
        [0.1, 0.9, 0.0],
        [0.6, 0.35, 0.05],
        [0.55, 0.0, 0.45],
        [0.2, 0.0, 0.8],
        [0.7, 0.0, 0.3],
    ]
    assert extend_spans(tags, probs, [C, S], 0.0) == tags
    assert extend_spans(tags, probs, [C, S], 0.3) == [
        "O", f"B-{C}", f"I-{C}", f"I-{C}", f"B-{S}", f"I-{S}", f"I-{S}",
    ]  # fmt: skip
    assert extend_spans(tags, probs, [C, S], 0.4) == [
        "O", f"B-{C}", f"I-{C}", "O", f"B-{S}", f"I-{S}", "O",
    ]  # fmt: skip
    assert extend_spans(tags, probs, [C, S], 0.95) == tags


def test_extend_joins_spans_that_meet_and_keeps_touching_ones_apart():
    from medsift.impacts.bio import extend_spans

    probs = [[0.1, 0.9, 0.0]] * 4
    # two spans one O apart grow into each other: one span
    assert extend_spans([f"B-{C}", "O", f"B-{C}", "O"], probs, [C, S], 0.5) == [f"B-{C}"] + [f"I-{C}"] * 3
    # spans that already touched stay two spans
    assert extend_spans([f"B-{C}", f"B-{C}", "O", "O"], probs, [C, S], 0.5) == [
        f"B-{C}", f"B-{C}", f"I-{C}", f"I-{C}",
    ]  # fmt: skip
    # a word two types reach goes to the likelier one
    probs = [[0.0, 0.0, 1.0], [0.2, 0.3, 0.5], [0.0, 1.0, 0.0]]
    assert extend_spans([f"B-{S}", "O", f"B-{C}"], probs, [C, S], 0.25) == [f"B-{S}", f"I-{S}", f"B-{C}"]


def test_label_probabilities_sum_into_type_probabilities():
    from medsift.impacts.predict import _type_matrix, label_types

    labels = ["O", f"B-{C}", f"I-{C}", f"B-{S}", f"I-{S}"]
    assert label_types(labels) == [C, S] and label_types(["O", S, C]) == [S, C]
    matrix = _type_matrix(labels)
    row = [0.1, 0.2, 0.3, 0.15, 0.25]
    assert (torch.tensor(row).numpy() @ matrix).tolist() == pytest.approx([0.1, 0.5, 0.4])
