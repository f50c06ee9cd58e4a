"""Official-compatible scores for both tasks.

Task 1 (``ade``): :func:`score_ade`. Task 7 (``impacts``): :func:`score_impacts`, with the
building blocks :func:`strict_scores`, :func:`relaxed_scores` and :func:`spans_from_bio`.
Every function takes plain Python or pandas inputs, so scoring never depends on the readers.
"""

from __future__ import annotations

from medsift.scoring.ade import AdeScores, LanguageScore, score_ade
from medsift.scoring.impacts import (
    ImpactScores,
    SpanScores,
    bio_from_spans,
    relaxed_scores,
    score_impacts,
    spans_from_bio,
    strict_scores,
)

__all__ = [
    "AdeScores",
    "ImpactScores",
    "LanguageScore",
    "SpanScores",
    "bio_from_spans",
    "relaxed_scores",
    "score_ade",
    "score_impacts",
    "spans_from_bio",
    "strict_scores",
]
