"""Combine the ADE probabilities of several members (models, seeds, regimes) into one per row.

Conventions used throughout:

- ``probs`` has shape ``(n_rows, n_members)``; column ``j`` is member ``j``.
- A member votes positive when its probability is ``>= threshold`` (the same ``>=`` as
  :meth:`ThresholdPolicy.apply <medsift.decision.thresholds.ThresholdPolicy.apply>`).
- Hard voting returns the (weighted) fraction of positive votes as well as labels, so that the fraction can be
  thresholded later like any other probability.
- Weights are normalised to sum to one; equal weights make :func:`weighted_vote` equal :func:`soft_vote`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from medsift.decision._checks import prob_matrix
from medsift.errors import MedsiftError

Tie = Literal["positive", "negative", "mean_prob"]
Method = Literal["hard", "soft", "weighted"]

# Ties are detected on the vote fraction; weighted fractions are float sums, so exact equality is too strict.
_TIE_TOLERANCE = 1e-9
# combine(method="hard"): a tie resolved as negative gets the vote share 0.5 - TIE_SHIFT, so a cut at 0.5 obeys it.
TIE_SHIFT = 1e-6


def _normalised_weights(weights: npt.ArrayLike, n_members: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1 or w.shape[0] != n_members:
        raise MedsiftError(f"weights must have one value per member ({n_members}), got shape {w.shape}")
    if not np.all(np.isfinite(w)) or (w < 0).any():
        raise MedsiftError(f"weights must be finite and non-negative, got {w.tolist()}")
    total = w.sum()
    if total <= 0:
        raise MedsiftError("weights sum to zero: at least one member needs a positive weight")
    return w / total


def _member_thresholds(thresholds: float | npt.ArrayLike, n_members: int) -> np.ndarray:
    t = np.asarray(thresholds, dtype=float)
    if t.ndim == 0:
        t = np.full(n_members, float(t))
    if t.shape != (n_members,):
        raise MedsiftError(
            f"thresholds must be a scalar or one per member ({n_members}), got shape {t.shape}"
        )
    if not np.all((t >= 0) & (t <= 1)):
        raise MedsiftError(f"thresholds must lie in [0, 1], got {t.tolist()}")
    return t


def hard_vote(
    probs: npt.ArrayLike,
    thresholds: float | npt.ArrayLike = 0.5,
    tie: Tie = "positive",
    weights: npt.ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Majority vote of 0/1 member decisions.

    Each member votes ``probs[:, j] >= thresholds[j]``. Returns ``(votes_fraction, labels)``: the (weighted)
    fraction of positive votes per row, usable later as a probability, and the majority labels.

    A row is positive when the fraction is above 0.5 and negative when below. An exact split (only possible
    with an even number of members or with weights, e.g. 2 members voting 1-1) is resolved by ``tie``:

    - ``"positive"``: the row is positive (favours recall; ADE is the rare class);
    - ``"negative"``: the row is negative (favours precision);
    - ``"mean_prob"``: positive when the mean member probability is ``>=`` the mean member threshold (which is
      0.5 with the default threshold), i.e. the soft vote breaks the tie.
    """
    p = prob_matrix(probs)
    n_members = p.shape[1]
    t = _member_thresholds(thresholds, n_members)
    w = np.full(n_members, 1.0 / n_members) if weights is None else _normalised_weights(weights, n_members)
    votes = (p >= t[None, :]).astype(float)  # (n_rows, n_members)
    fraction = votes @ w  # (n_rows,)
    labels = (fraction > 0.5).astype(int)
    is_tie = np.abs(fraction - 0.5) <= _TIE_TOLERANCE
    if tie == "positive":
        labels[is_tie] = 1
    elif tie == "negative":
        labels[is_tie] = 0
    elif tie == "mean_prob":
        labels[is_tie] = (p[is_tie].mean(axis=1) >= t.mean()).astype(int)
    else:
        raise MedsiftError(f"unknown tie rule {tie!r}; expected positive, negative or mean_prob")
    return fraction, labels


def soft_vote(probs: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> np.ndarray:
    """Mean member probability per row; with ``weights``, the weighted mean (see :func:`weighted_vote`)."""
    p = prob_matrix(probs)
    if weights is not None:
        return weighted_vote(p, weights)
    return p.mean(axis=1)


def weighted_vote(probs: npt.ArrayLike, weights: npt.ArrayLike) -> np.ndarray:
    """Weighted mean member probability per row; weights are normalised to sum to one first.

    This is the dev-F1-weighted soft vote and the cross-regime ensemble (e.g. weights 1.0 and 0.7).
    """
    p = prob_matrix(probs)
    return p @ _normalised_weights(weights, p.shape[1])


def weights_from_scores(
    scores: Sequence[float] | Mapping[str, float] | npt.ArrayLike, *, power: float = 1.0, floor: float = 0.0
) -> np.ndarray:
    """Member weights from development scores (e.g. dev F1), normalised to sum to one.

    ``weight_j ∝ max(score_j - floor, 0) ** power``. With the defaults the weights are proportional to the
    scores (the papers' dev-F1 weighting). ``floor`` is a baseline score that earns nothing (a member at or
    below it gets weight 0), which sharpens the differences between members; ``power > 1`` sharpens further.
    A mapping is read in its iteration order.
    """
    values = np.asarray(list(scores.values()) if isinstance(scores, Mapping) else scores, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise MedsiftError(f"scores must be a non-empty list of numbers, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise MedsiftError(f"scores must be finite, got {values.tolist()}")
    if power <= 0:
        raise MedsiftError(f"power must be positive, got {power}")
    raw = np.clip(values - floor, 0.0, None) ** power
    if raw.sum() <= 0:
        raise MedsiftError(f"every score is at or below the floor {floor}: no member would get any weight")
    return raw / raw.sum()


def combine(
    probs: npt.ArrayLike,
    method: Method = "soft",
    weights: npt.ArrayLike | None = None,
    *,
    thresholds: float | npt.ArrayLike = 0.5,
    tie: Tie = "positive",
) -> np.ndarray:
    """Combine members into one probability per row.

    ``"hard"``: the (weighted) fraction of positive votes at ``thresholds``; ``"soft"``: the mean probability
    (weighted when ``weights`` is given); ``"weighted"``: the weighted mean, ``weights`` required.

    Hard voting and ``tie``: a row with exactly half the votes keeps the share 0.5 when :func:`hard_vote`
    resolves it as positive and gets ``0.5 - TIE_SHIFT`` when it resolves it as negative, so that the usual
    cut ``share >= 0.5`` decides ties by the rule (``"positive"``, the default, leaves every share as it is).
    A tuned threshold below 0.5 makes every tied row positive and one above 0.5 every tied row negative,
    as a majority rule at that threshold should.
    """
    if method == "hard":
        fraction, labels = hard_vote(probs, thresholds, tie=tie, weights=weights)
        is_tie = np.abs(fraction - 0.5) <= _TIE_TOLERANCE
        return np.where(is_tie, np.where(labels == 1, 0.5, 0.5 - TIE_SHIFT), fraction)
    if method == "soft":
        return soft_vote(probs, weights)
    if method == "weighted":
        if weights is None:
            raise MedsiftError("method 'weighted' needs weights (one per member)")
        return weighted_vote(probs, weights)
    raise MedsiftError(f"unknown combination method {method!r}; expected hard, soft or weighted")


def _preview(values: Sequence[object], limit: int = 5) -> str:
    shown = ", ".join(str(v) for v in list(values)[:limit])
    return shown + (", ..." if len(values) > limit else "")


def member_key(frames: Mapping[str, pd.DataFrame]) -> str:
    """The column members are matched on: ``uid`` when every member has one, else ``id``.

    A run's own val/calib files carry ``uid`` (unique across the merged training files, whose ids may
    repeat); probability files from elsewhere usually have ``id`` only, and then ``id`` must be unique.
    """
    return "uid" if frames and all("uid" in frame.columns for frame in frames.values()) else "id"


def _member_keys(name: str, frame: pd.DataFrame, key: str, frames: Mapping[str, pd.DataFrame]) -> pd.Series:
    for column in (key, "p_ade"):
        if column not in frame.columns:
            raise MedsiftError(f"member {name!r} has no {column!r} column (columns: {list(frame.columns)})")
    keys = frame[key].astype(str)
    duplicated = keys[keys.duplicated()].unique().tolist()
    if duplicated and key == "id" and "uid" in frame.columns:
        without = [other for other, f in frames.items() if "uid" not in f.columns]
        raise MedsiftError(
            f"member {name!r} has {len(duplicated)} ids that repeat ({_preview(duplicated)}), told apart by its "
            f"uid column, but member(s) {', '.join(map(repr, without))} have no uid column, so the members "
            "can only be matched by id; give every member a uid column (or ids that are unique)"
        )
    if duplicated:
        raise MedsiftError(
            f"member {name!r} has {len(duplicated)} duplicate {key}s ({_preview(duplicated)}); "
            f"{key}s must be unique"
        )
    return keys


def align_members(frames: Mapping[str, pd.DataFrame]) -> tuple[np.ndarray, np.ndarray]:
    """Stack the ``p_ade`` columns of several member frames into a ``(n_rows, n_members)`` matrix.

    Rows are matched on :func:`member_key` (``uid`` when every member has it, else ``id``), compared as
    strings. Every member must score exactly the same rows: a mismatch is refused with a message naming the
    member, the counts and a few missing / extra keys, never silently inner-joined, because an ensemble over
    a subset of rows would be scored on fewer rows than the submission needs. Duplicate keys in a member are
    refused too. Rows follow the first member's order; columns follow the mapping's order.
    Returns ``(keys, matrix)``.
    """
    if not frames:
        raise MedsiftError("no members to align")
    key = member_key(frames)
    names = list(frames)
    reference_name = names[0]
    reference = _member_keys(reference_name, frames[reference_name], key, frames)
    reference_set = set(reference)
    columns = []
    for name in names:
        frame = frames[name]
        keys = _member_keys(name, frame, key, frames)
        key_set = set(keys)
        if name != reference_name and key_set != reference_set:
            missing = [i for i in reference if i not in key_set]
            extra = [i for i in keys if i not in reference_set]
            raise MedsiftError(
                f"member {name!r} ({len(keys)} {key}s) does not score the same rows as {reference_name!r} "
                f"({len(reference)} {key}s): {len(missing)} missing ({_preview(missing)}), "
                f"{len(extra)} extra ({_preview(extra)}); refusing to combine members over different rows"
            )
        series = pd.Series(pd.to_numeric(frame["p_ade"], errors="coerce").to_numpy(dtype=float), index=keys)
        column = series.reindex(reference).to_numpy()
        if np.isnan(column).any():
            bad = reference[np.isnan(column)].tolist()
            raise MedsiftError(
                f"member {name!r} has {len(bad)} missing or non-numeric p_ade ({_preview(bad)})"
            )
        columns.append(column)
    matrix = prob_matrix(np.column_stack(columns), name="member probabilities")
    return reference.to_numpy(dtype=object), matrix
