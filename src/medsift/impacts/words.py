"""Split raw text into words with character offsets (pure), so the tagger accepts plain text.

The official data comes pre-split into words (``tokens``); plain text does not. Rules, chosen to look like
the official tokens (words and punctuation apart) and to survive any script:

- a run of letters, digits, combining marks and joiners is one word, with inner apostrophes kept
  (``I've``, ``don't``), as in the official tokens;
- CJK ideographs and kana are one word each (those scripts do not separate words with spaces);
- every other visible character is its own word (punctuation), except that an emoji keeps its modifiers,
  variation selectors and zero-width-joiner sequences (``👩‍⚕️`` stays one word);
- whitespace separates and is never part of a word.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u31f0-\u31ff"
# Letters/digits (not CJK, not underscore) plus combining marks and the ZWNJ used inside Persian words.
_LETTER = rf"(?:(?![{_CJK}_])\w|[\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u064b-\u065f\u0900-\u0963\u200c])"
_WORD = rf"{_LETTER}+(?:['’]{_LETTER}+)*"
_MODIFIERS = r"(?:[\ufe0e\ufe0f\u20e3\U0001f3fb-\U0001f3ff]|\u200d\S)*"
_PATTERN = re.compile(rf"[{_CJK}]|{_WORD}|\S{_MODIFIERS}")


class Word(NamedTuple):
    """A word and where it sits in the text: ``text[start:end] == word``."""

    text: str
    start: int
    end: int


def split_words(text: str) -> list[Word]:
    """Words of ``text`` with character offsets (see the module docstring for the rules)."""
    return [Word(m.group(), m.start(), m.end()) for m in _PATTERN.finditer(text)]
