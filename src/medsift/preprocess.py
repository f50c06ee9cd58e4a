"""Pure preprocessing: text normalisation, positive oversampling and stratified splits.

Nothing here needs a model; every function returns new objects and leaves its inputs untouched.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

# Placeholders the official files really use. en: ``HTTPURL____`` and ``@USER_____`` (the underscores pad
# the masked text to its original length; short handles appear cut to ``@USE``, ``@US``, ``@U``);
# de: ``<user>``, ``<url>``; KEEPHA-Ja: ``<user_name>``, ``<url>``. Other German tags (``<pi>``,
# ``<doctor>``, ``<date>``) are not URLs or users and are left alone.
# A bare ``URL`` counts only in capitals: the lower-case word "url" is ordinary text.
# A URL's trailing punctuation (``see www.x.org, then``) belongs to the sentence, so the match stops before it.
_URL_END = r"\S+?(?=[.,;:!?)\]'\"]*(?:\s|$))"
_URL_RE = re.compile(rf"(?i:https?://{_URL_END}|\bwww\.{_URL_END}|HTTPURL_*|<url>|\[url\])|\bURL\b_*")
# ``(?<!\w)`` keeps e-mail addresses (name@host) from being read as mentions; the masked placeholders
# ``@USER___`` and ``HTTPURL___`` are replaced even when glued to a word (en rows have ``readHTTPURL___``).
_USER_RE = re.compile(r"(?i:<user(?:_?name)?>|\[user\])|@USER\w*|(?<!\w)@\w+")
_SPACE_RE = re.compile(r"\s+")
# Digits are exempt from flood collapsing: 10000 is a number, not an emphatic 1000.
_FLOOD_RE = "([^\\d])\\1{%d,}"


def _padded(match: re.Match, replacement: str) -> str:
    """The replacement, with a space on a side where it would otherwise glue to a letter (``foo<url>``)."""
    text, start, end = match.string, match.start(), match.end()
    left = " " if start > 0 and text[start - 1].isalnum() else ""
    right = " " if end < len(text) and text[end].isalnum() else ""
    return f"{left}{replacement}{right}"


def normalize_text(text: str, *, url: str = "[URL]", user: str = "@USER", max_repeat: int = 3) -> str:
    """Unify URLs, user mentions, character floods and whitespace; keep casing and all other text.

    - URLs (``http(s)://...``, ``www...``) and URL placeholders (``HTTPURL___``, ``<url>``, ``URL``) → ``url``;
    - ``@mentions`` and user placeholders (``@USER___``, ``<user>``, ``<user_name>``) → ``user``;
    - a run of one character longer than ``max_repeat`` is cut to ``max_repeat`` (``sooooo`` → ``sooo``);
      digits are exempt (``10000`` stays) and ``max_repeat <= 0`` turns this off;
    - whitespace runs become one space, and the ends are stripped.
    """
    text = _URL_RE.sub(lambda m: _padded(m, url), text)
    text = _USER_RE.sub(lambda m: _padded(m, user), text)
    if max_repeat > 0:
        text = re.sub(_FLOOD_RE % max_repeat, lambda m: m.group(1) * max_repeat, text, flags=re.DOTALL)
    return _SPACE_RE.sub(" ", text).strip()


def oversample_positives(
    frame: pd.DataFrame, factor: float, *, seed: int, label_col: str = "label"
) -> pd.DataFrame:
    """Repeat positive rows so that they appear ``factor`` times in total; negatives are kept once.

    ``factor=3`` gives each positive 3 copies; for ``factor=2.5`` each positive gets 2 copies and a
    reproducible random half of them a third. ``factor=1`` returns the input unchanged (same object).
    The result is shuffled with ``seed``; it gains a column ``copy`` (0 = the original row, 1, 2, ... the
    repeats) and keeps ``uid`` so that copies stay traceable. Raises ``ValueError`` for ``factor < 1``.
    """
    if factor < 1:
        raise ValueError(f"oversampling factor must be >= 1, got {factor}")
    if factor == 1:
        return frame
    rng = np.random.default_rng(seed)
    positive = (frame[label_col] == 1).fillna(False).to_numpy(dtype=bool)
    whole, fraction = int(factor), factor - int(factor)
    copies = np.where(positive, whole, 1)
    if fraction > 0:
        pos_index = np.flatnonzero(positive)
        extra = rng.choice(pos_index, size=round(fraction * len(pos_index)), replace=False)
        copies[extra] += 1
    # positional repeat, so a frame with a repeated index is still copied row by row
    repeated = frame.iloc[np.repeat(np.arange(len(frame)), copies)].copy()
    repeated["copy"] = np.concatenate([np.arange(n) for n in copies]) if len(copies) else []
    order = rng.permutation(len(repeated))
    return repeated.iloc[order].reset_index(drop=True)


def _allocate(n: int, fractions: list[float], behind: list[float]) -> list[int]:
    """Split ``n`` rows by ``fractions``: each split gets the floor of its share or one more.

    The rows left after the floors go to the largest remainders plus ``behind`` (how far each split
    already trails its share over the earlier strata), so many small strata do not all round the same way.
    """
    exact = [n * f for f in fractions]
    counts = [int(np.floor(x)) for x in exact]
    order = sorted(range(len(fractions)), key=lambda i: (-(exact[i] - counts[i] + behind[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    for i in range(len(fractions)):
        behind[i] += exact[i] - counts[i]
    return counts


def stratified_split(
    frame: pd.DataFrame,
    fractions: dict[str, float] | float,
    *,
    seed: int,
    by: tuple[str, ...] | str = ("label", "language"),
) -> dict[str, pd.DataFrame]:
    """Split ``frame`` into named parts, stratified jointly on the ``by`` columns.

        ``fractions`` maps split names to fractions summing to 1 (e.g. ``{"train": .8, "val": .1, "calib": .1}``);
        a float ``f`` means ``{"train": 1 - f, "test": f}``. In each stratum the rows are shuffled with
        ``seed`` and cut so that every split gets its share within one row (leftover rows rotate between splits
    across strata). A stratum with
        fewer rows than splits is too small to split and goes whole to the FIRST split (the training part), so
        that no class/language combination is lost from training. The parts partition the input exactly (same
        rows, index kept, none lost or duplicated). Missing values in ``by`` form their own stratum.
    """
    if isinstance(fractions, float | int):
        if not 0 < fractions < 1:
            raise ValueError(f"a single split fraction must be in (0, 1), got {fractions}")
        fractions = {"train": 1 - float(fractions), "test": float(fractions)}
    names, shares = list(fractions), [float(v) for v in fractions.values()]
    if not names or any(s < 0 for s in shares) or not np.isclose(sum(shares), 1.0):
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    by = [by] if isinstance(by, str) else list(by)
    rng = np.random.default_rng(seed)
    parts: dict[str, list] = {name: [] for name in names}
    behind = [0.0] * len(names)
    keys = frame[by].astype("string").fillna("<NA>")
    for _, positions in sorted(keys.groupby(by, sort=True).indices.items(), key=lambda kv: str(kv[0])):
        positions = rng.permutation(positions)
        if len(positions) < len(names):
            parts[names[0]].extend(positions)
            continue
        start = 0
        for name, count in zip(names, _allocate(len(positions), shares, behind), strict=True):
            parts[name].extend(positions[start : start + count])
            start += count
    return {name: frame.iloc[sorted(pos)] for name, pos in parts.items()}
