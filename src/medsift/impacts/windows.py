"""Overlapping windows over long posts, and the rule that merges their predictions (pure).

The official test has posts of up to 9,009 words; an encoder sees at most ``max_length`` subwords. A post
is cut into windows of whole words whose subwords fit the budget; consecutive windows overlap by about
``stride`` subwords, so no word is ever dropped and nothing is truncated silently.

Merge rule: every word takes the prediction of the window in which it is farthest from a window edge
(the most context on its poorer side, counted in subwords); ties go to the earlier window. Inside an
overlap the seam therefore falls in its middle, and a span that crosses one window's border is taken whole
from the window that sees it with context on both sides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Window = tuple[int, int]  # word range [start, end)


def plan_windows(subword_counts: Sequence[int], budget: int, stride: int) -> list[Window]:
    """Word ranges covering every word once or more, each within ``budget`` subwords.

    ``stride`` is the wanted overlap in subwords between consecutive windows (as in the tokenizers'
    ``stride``); it is capped below ``budget`` so every window moves forward. A single word longer than
    the budget gets a window of its own (the encoder truncates its tail subwords, but its first subword —
    the one that carries the prediction — is kept). An empty post has no windows.
    """
    if budget < 1:
        raise ValueError(f"window budget must be at least 1 subword, got {budget}")
    stride = max(0, min(stride, budget - 1))
    n = len(subword_counts)
    windows: list[Window] = []
    start = 0
    while start < n:
        end, used = start, 0
        while end < n and (end == start or used + subword_counts[end] <= budget):
            used += subword_counts[end]
            end += 1
        windows.append((start, end))
        if end >= n:
            break
        # Step back from the end while the overlap stays within the stride and leaves room for the next
        # word (so every window reaches further than the one before), but always move forward.
        room = min(stride, budget - subword_counts[end])
        nxt, overlap = end, 0
        while nxt - 1 > start and overlap + subword_counts[nxt - 1] <= room:
            nxt -= 1
            overlap += subword_counts[nxt]
        start = nxt
    return windows


def _context(i: int, window: Window, prefix: list[int]) -> int:
    start, end = window
    left = prefix[i] - prefix[start]
    right = prefix[end] - prefix[i + 1]
    return min(left, right)


def merge_windows(
    windows: Sequence[Window],
    predictions: Sequence[Sequence[Any]],
    n_words: int,
    subword_counts: Sequence[int] | None = None,
    default: Any = "O",
) -> list[Any]:
    """One tag per word from per-window tag lists (``predictions[k]`` has one tag per word of window k).

    A ``None`` tag means the window could not predict that word (the encoder truncated it away); a word
    that no window could predict gets ``default`` (``O``). The predictions may be any per-word values
    (the tagger also merges word probabilities this way): the window chosen for a word depends only on the
    windows and on which values are ``None``. Raises ``ValueError`` when a window's prediction has the
    wrong length or a word is in no window at all.
    """
    counts = list(subword_counts) if subword_counts is not None else [1] * n_words
    # Words with no subword still count as one position, so distances stay meaningful.
    prefix = [0]
    for c in counts:
        prefix.append(prefix[-1] + max(int(c), 1))
    best: list[tuple[int, Any] | None] = [None] * n_words
    for window, preds in zip(windows, predictions, strict=True):
        start, end = window
        if len(preds) != end - start:
            raise ValueError(f"window {window} has {len(preds)} predictions for {end - start} words")
        for offset, tag in enumerate(preds):
            i = start + offset
            ctx = _context(i, window, prefix)
            current = best[i]
            if current is None or (tag is not None and (current[1] is None or ctx > current[0])):
                best[i] = (ctx, tag)
    missing = [i for i, b in enumerate(best) if b is None]
    if missing:
        raise ValueError(f"words {missing[:5]} are covered by no window")
    return [default if b[1] is None else b[1] for b in best]  # type: ignore[index]
