"""Pure BIO/IO utilities of the impact tagger, and subword alignment through real tiny tokenizers."""

from __future__ import annotations

import pytest

from medsift.impacts.bio import (
    IGNORE,
    align_labels,
    entity_types,
    io_to_bio,
    label_list,
    repair_bio,
    to_bio,
    to_scheme,
    vote_tags,
    word_predictions,
)
from medsift.scoring.impacts import spans_from_bio

C, S = "ClinicalImpacts", "SocialImpacts"


def test_label_sets_come_from_the_data():
    tags = [["O", f"B-{S}", f"I-{S}"], [f"B-{C}", "O"], ["O", "B-Other"]]
    assert entity_types(tags) == [C, "Other", S]
    assert label_list([C, S], "bio") == ["O", f"B-{C}", f"I-{C}", f"B-{S}", f"I-{S}"]
    assert label_list([C, S], "io") == ["O", C, S]
    assert to_scheme(["O", f"B-{C}", f"I-{C}"], "io") == ["O", C, C]


def test_align_bio_continuation_subwords_get_inside():
    labels = label_list([C, S], "bio")
    l2i = {label: i for i, label in enumerate(labels)}
    # [CLS] w0 w1 w1 w1 w2 w2 [SEP]
    word_ids = [None, 0, 1, 1, 1, 2, 2, None]
    tags = [f"B-{C}", f"B-{S}", f"I-{S}"]
    got = align_labels(tags, word_ids, "bio", l2i)
    assert got == [
        IGNORE,
        l2i[f"B-{C}"],
        l2i[f"B-{S}"],
        l2i[f"I-{S}"],
        l2i[f"I-{S}"],
        l2i[f"I-{S}"],
        l2i[f"I-{S}"],
        IGNORE,
    ]
    assert align_labels(["O", "O", "O"], word_ids, "bio", l2i) == [IGNORE, 0, 0, 0, 0, 0, 0, IGNORE]


def test_align_io_every_subword_gets_the_class():
    labels = label_list([C, S], "io")
    l2i = {label: i for i, label in enumerate(labels)}
    word_ids = [None, 0, 0, 1, None]
    assert align_labels([C, "O"], word_ids, "io", l2i) == [IGNORE, 1, 1, 0, IGNORE]


WORDS = ["I", "overdosed", "😩💊", "", "Übelkeit", "头晕和恶心", "withdrawalsssssss", "job", "."]
TAGS = ["O", f"B-{C}", "O", "O", f"B-{C}", f"I-{C}", f"I-{C}", f"B-{S}", "O"]


@pytest.mark.parametrize("fixture", ["wordpiece_tokenizer", "unigram_tokenizer"])
@pytest.mark.parametrize("scheme", ["bio", "io"])
def test_alignment_through_word_ids_round_trips(request, fixture, scheme):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(request.getfixturevalue(fixture)))
    enc = tok(WORDS, is_split_into_words=True)
    word_ids = enc.word_ids()
    labels = label_list([C, S], scheme)
    l2i = {label: i for i, label in enumerate(labels)}
    ids = align_labels(to_scheme(TAGS, scheme), word_ids, scheme, l2i)
    assert len(ids) == len(enc["input_ids"])
    # Special tokens are ignored, everything else is labelled.
    assert [i == IGNORE for i in ids] == [w is None for w in word_ids]
    # A word that splits into several subwords: the later ones continue (bio) or repeat the class (io).
    many = [lab for lab, w in zip(ids, word_ids, strict=True) if w == 6]
    assert len(many) > 1
    assert labels[many[0]] == to_scheme(TAGS, scheme)[6] and {labels[i] for i in many[1:]} == {
        "I-" + C if scheme == "bio" else C
    }
    # Predicting the gold subword labels gives back the gold word tags (words without a subword are O).
    sub_tags = [labels[i] if i != IGNORE else "O" for i in ids]
    words = word_predictions(sub_tags, word_ids, len(WORDS), "first")
    expected = [t if any(w == k for w in word_ids) else "O" for k, t in enumerate(TAGS)]
    assert (
        to_bio(words, scheme) == repair_bio(to_scheme(expected, "bio"))
        if scheme == "bio"
        else io_to_bio(to_scheme(expected, "io"))
    )
    # Every non-empty word (emoji, CJK, accents) is reached through word_ids.
    seen = {w for w in word_ids if w is not None}
    assert seen >= {k for k, w in enumerate(WORDS) if w}


def test_word_predictions_first_and_vote():
    word_ids = [None, 0, 0, 0, 1, None]
    sub = ["O", f"B-{C}", "O", "O", f"I-{S}", "O"]
    assert word_predictions(sub, word_ids, 3, "first") == [f"B-{C}", f"I-{S}", "O"]
    assert word_predictions(sub, word_ids, 3, "vote") == ["O", f"I-{S}", "O"]
    assert word_predictions(sub, word_ids, 3, "first", missing=None)[2] is None
    sub2 = ["O", "O", f"I-{C}", f"I-{C}", "O", "O"]
    assert word_predictions(sub2, word_ids, 2, "vote") == [f"I-{C}", "O"]
    # A tie keeps the first subword's class.
    assert word_predictions(["O", C, "O", "O"], [None, 0, 0, None], 1, "vote") == [C]


def test_io_to_bio():
    assert io_to_bio(["O", C, C, S, S, "O", S]) == [
        "O",
        f"B-{C}",
        f"I-{C}",
        f"B-{S}",
        f"I-{S}",
        "O",
        f"B-{S}",
    ]
    assert io_to_bio([]) == []


def test_repair_rule_is_conlleval_and_keeps_spans():
    broken = [f"I-{C}", f"I-{C}", "O", f"I-{S}", f"I-{C}", f"B-{C}", f"I-{C}"]
    fixed = repair_bio(broken)
    assert fixed == [f"B-{C}", f"I-{C}", "O", f"B-{S}", f"B-{C}", f"B-{C}", f"I-{C}"]
    # The scorer reads the broken and the repaired sequence as the same spans.
    assert spans_from_bio(broken) == spans_from_bio(fixed)
    assert repair_bio(fixed) == fixed


def test_vote_tags_majority_then_repair():
    a = ["O", f"B-{C}", f"I-{C}", "O"]
    b = ["O", f"B-{C}", f"I-{C}", f"B-{S}"]
    c = [f"B-{S}", "O", f"I-{C}", "O"]
    assert vote_tags([a]) == a
    assert vote_tags([a, b, c]) == ["O", f"B-{C}", f"I-{C}", "O"]
    # Two runs put an I- where the majority has O before it: repaired to B-.
    assert vote_tags([["O", f"I-{S}"], ["O", f"I-{S}"], [f"B-{S}", f"I-{S}"]]) == ["O", f"B-{S}"]
    with pytest.raises(ValueError):
        vote_tags([["O"], ["O", "O"]])
