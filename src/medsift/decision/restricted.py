"""Members restricted to some languages: used on rows of those languages, ignored elsewhere.

A member can score only some languages: a Japanese BERT trained for ``ja`` (config key ``languages: [ja]``),
or a character n-gram model that records the languages it was trained on. Its probability on a post in
another language is not evidence, so every vote leaves it out there: the members that know a row's language
share that row's vote, their weights renormalised over them. When no member knows a row's language (Farsi in
an ensemble of restricted members only), every member votes, as if none were restricted.

``--weights-by language`` does the same through its per-group weights (:mod:`medsift.decision.by_language`);
this module serves the other methods (soft, weighted, hard).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medsift.decision.by_language import base_language
from medsift.decision.voting import Tie, combine


def known_mask(knows: Sequence[Sequence[str] | None], groups: Sequence[str] | np.ndarray) -> np.ndarray:
    """Boolean ``(n_rows, n_members)``: does member ``j`` know the language of row ``i``'s group?

    ``knows[j]`` is the languages member ``j`` scores (None: every language). A row no member knows is
    all True (every member votes there).
    """
    langs = [base_language(g) for g in groups]
    mask = np.array([[k is None or lang in k for k in knows] for lang in langs], dtype=bool)
    mask = mask.reshape(len(langs), len(knows))
    mask[~mask.any(axis=1)] = True
    return mask


def is_restricted(knows: Sequence[Sequence[str] | None] | None) -> bool:
    return bool(knows) and any(k is not None for k in knows)  # type: ignore[union-attr]


def combine_known(
    probs: np.ndarray,
    method: str,
    weights: np.ndarray | None,
    known: np.ndarray,
    *,
    tie: Tie = "positive",
) -> np.ndarray:
    """:func:`medsift.decision.voting.combine` per row over the members that know the row's language.

    Rows are grouped by which members know them; each group is combined over those members alone, with their
    weights (equal when ``weights`` is None) renormalised.
    """
    probs = np.asarray(probs, dtype=float)
    out = np.empty(probs.shape[0])
    patterns, inverse = np.unique(known, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    for k, pattern in enumerate(patterns):
        rows = inverse == k
        cols = np.flatnonzero(pattern)
        w = None if weights is None else np.asarray(weights, dtype=float)[cols]
        if w is not None and w.sum() <= 0:
            w = None  # the members that know this language all had weight 0: weigh them equally
        sub_method = "soft" if method == "weighted" and w is None else method
        out[rows] = combine(probs[np.ix_(rows, cols)], sub_method, w, tie=tie)  # type: ignore[arg-type]
    return out
