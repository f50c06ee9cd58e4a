"""Long posts: cut the token list into disjoint chunks whose prompt and answer fit the context.

Chunks are disjoint and their tags concatenated: each chunk is enumerated from 0, exactly as in training,
so the model never sees indices larger than a chunk. (The tagger's overlapping windows merge per-subword
scores; a generated answer has no scores to merge, so overlap would only add conflicts.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def plan_chunks(
    tokens: Sequence[str], chunk_tokens: int, fits: Callable[[Sequence[str]], bool] | None = None
) -> list[tuple[int, int]]:
    """``(start, end)`` ranges covering ``tokens`` in order, each at most ``chunk_tokens`` long.

    ``fits(chunk)`` (e.g. "prompt plus the longest possible answer fits ``max_length``") halves a chunk
    until it holds; a single token always counts as fitting.
    """
    if chunk_tokens < 1:
        raise ValueError("chunk_tokens must be at least 1")
    pending = [(s, min(s + chunk_tokens, len(tokens))) for s in range(0, len(tokens), chunk_tokens)]
    out: list[tuple[int, int]] = []
    while pending:
        start, end = pending.pop(0)
        if fits is None or end - start == 1 or fits(tokens[start:end]):
            out.append((start, end))
            continue
        middle = (start + end) // 2
        pending[:0] = [(start, middle), (middle, end)]
    return out


def join_chunks(pieces: Sequence[Sequence[str]]) -> list[str]:
    """Concatenate per-chunk tags back into one tag per token of the post."""
    return [tag for piece in pieces for tag in piece]
