"""Raw text → words with character offsets (pure)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from medsift.impacts.words import split_words


def _texts(text):
    return [w.text for w in split_words(text)]


def test_words_and_punctuation_like_the_official_tokens():
    assert _texts("I've been clean 2 yrs!! lost my job.") == [
        "I've",
        "been",
        "clean",
        "2",
        "yrs",
        "!",
        "!",
        "lost",
        "my",
        "job",
        ".",
    ]


def test_emoji_keep_their_modifiers():
    assert _texts("ugh 😩💊 👍🏽 👩‍⚕️ ok") == ["ugh", "😩", "💊", "👍🏽", "👩\u200d⚕️", "ok"]


def test_non_latin_scripts():
    assert _texts("服用这种药") == ["服", "用", "这", "种", "药"]
    assert _texts("頭痛がひどい") == ["頭", "痛", "が", "ひ", "ど", "い"]
    assert _texts("сильно болела голова.") == ["сильно", "болела", "голова", "."]
    assert _texts("سرگیجه می\u200cشود.") == ["سرگیجه", "می\u200cشود", "."]
    assert _texts("cafe\u0301 ok") == ["cafe\u0301", "ok"]


def test_empty_and_blank():
    assert split_words("") == [] and split_words("  \n\t ") == []


@given(st.text())
def test_offsets_point_into_the_text_and_cover_all_visible_characters(text):
    words = split_words(text)
    covered = set()
    for w in words:
        assert text[w.start : w.end] == w.text and w.text and not w.text.isspace()
        covered.update(range(w.start, w.end))
    assert all(i in covered or ch.isspace() for i, ch in enumerate(text))
    assert all(a.end <= b.start for a, b in itertools.pairwise(words))
