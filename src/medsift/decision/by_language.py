"""Member weights per language group: trust each member where it is good, and only where it can work at all.

The members of a CPU ensemble fail differently. A character n-gram model is strong in the languages it was
trained on and blind in a new script; a multilingual encoder transfers to languages it never saw but is weaker
on long forum posts. One global weight wastes both: it halves the encoder's signal exactly where it is the only
one, and dilutes the n-gram model where it is the better one. So the weights are fit per threshold group (a
language, or ``<lang>_cadec``) on the calib rows:

- **pooled weights**: a grid over the weight simplex (step ``step``), each point scored by the best F1 any
  threshold reaches with it on every calib row;
- **group weights**: the same search on one group's rows, limited to the members that know its language, then
  shrunk toward the pooled weights by support: ``w = (n_pos * w_group + shrink * w_pooled) / (n_pos + shrink)``,
  so a group with a dozen positives moves little and one with hundreds follows its own rows;
- **a group never tuned** (a language with no calib rows, such as ja or fa): the pooled weights of the members
  that know its language. A member that records the languages it was trained on (an n-gram run's manifest
  ``languages``) knows only those; every other member knows every language. When no member knows the language,
  all members are used at their pooled weights.

Everything here is pure numpy: member probabilities and labels in, weights out.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from medsift.decision.thresholds import DEFAULT_GRID, search_threshold
from medsift.errors import MedsiftError


def base_language(group: str) -> str:
    """``de_cadec`` -> ``de``: the language a threshold group's posts are written in."""
    return str(group).removesuffix("_cadec")


def simplex_grid(members: int, step: float) -> np.ndarray:
    """Every weight vector over ``members`` with entries in multiples of ``step`` that sum to 1."""
    if members < 1:
        raise MedsiftError("a weight grid needs at least one member")
    units = round(1 / step)
    if units < 1 or abs(units * step - 1) > 1e-9:
        raise MedsiftError(f"the weight step must divide 1 (0.1, 0.05, 0.25, ...), got {step}")
    points = [c for c in itertools.product(range(units + 1), repeat=members - 1) if sum(c) <= units]
    return np.array([[*c, units - sum(c)] for c in points], dtype=float) / units


def _best_weights(y: np.ndarray, probs: np.ndarray, step: float, grid: np.ndarray, metric: str) -> np.ndarray:
    """The simplex point whose weighted mean reaches the best thresholded score (ties: the most even one)."""
    candidates = simplex_grid(probs.shape[1], step)
    scores = np.array([search_threshold(y, probs @ w, grid, metric).score for w in candidates])  # type: ignore[arg-type]
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    spread = np.abs(candidates[best] - 1 / probs.shape[1]).sum(axis=1)
    return candidates[best[np.argmin(spread)]]


@dataclass
class GroupWeights:
    """Weights per threshold group, the pooled weights, and which languages each member knows."""

    members: list[str]
    knows: list[list[str] | None]  # None: the member knows every language
    pooled: list[float]
    groups: dict[str, list[float]] = field(default_factory=dict)
    support: dict[str, int] = field(default_factory=dict)  # calib positives behind each group's weights
    raw: dict[str, list[float]] = field(default_factory=dict)  # before shrinking
    step: float = 0.1
    shrink: float = 20.0

    def available(self, group: str) -> np.ndarray:
        """0/1 per member: does it know the language of ``group``? (all 1 when none does)"""
        lang = base_language(group)
        mask = np.array([k is None or lang in k for k in self.knows], dtype=float)
        return mask if mask.any() else np.ones(len(self.members))

    def weights_for(self, group: str) -> np.ndarray:
        """The normalised weights used for rows of ``group``."""
        if str(group) in self.groups:
            return np.asarray(self.groups[str(group)], dtype=float)
        mask = self.available(str(group))
        w = np.asarray(self.pooled, dtype=float) * mask
        return w / w.sum() if w.sum() > 0 else mask / mask.sum()

    def combine(self, probs: np.ndarray, groups: np.ndarray | list[str]) -> np.ndarray:
        """The weighted mean of each row's member probabilities, with its group's weights."""
        probs = np.asarray(probs, dtype=float)
        groups = np.asarray([str(g) for g in groups], dtype=object)
        if probs.shape != (len(groups), len(self.members)):
            raise MedsiftError(
                f"member probabilities of shape {probs.shape} for {len(groups)} rows and {len(self.members)} members"
            )
        out = np.zeros(len(groups))
        for group in set(groups):
            rows = groups == group
            out[rows] = probs[rows] @ self.weights_for(group)
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroupWeights:
        return cls(**data)


def fit_group_weights(
    y: np.ndarray,
    probs: np.ndarray,
    groups: np.ndarray | list[str],
    members: list[str],
    knows: list[list[str] | None],
    *,
    step: float = 0.1,
    shrink: float = 20.0,
    min_positives: int = 5,
    grid: np.ndarray = DEFAULT_GRID,
    metric: str = "f1",
) -> GroupWeights:
    """Fit :class:`GroupWeights` on labelled rows (the calib rows); see the module docstring."""
    y = np.asarray(y, dtype=int)
    probs = np.asarray(probs, dtype=float)
    groups = np.asarray([str(g) for g in groups], dtype=object)
    if probs.ndim != 2 or probs.shape[0] != len(y) or probs.shape[1] != len(members) or len(groups) != len(y):
        raise MedsiftError("fit_group_weights: labels, groups and member probabilities disagree in shape")
    if shrink < 0:
        raise MedsiftError(f"the weight shrinkage must be >= 0, got {shrink}")
    if not y.any():
        raise MedsiftError("cannot weigh members per language on rows without a positive label")
    pooled = _best_weights(y, probs, step, grid, metric)
    out = GroupWeights(members=list(members), knows=knows, pooled=pooled.tolist(), step=step, shrink=shrink)
    for group in sorted(set(groups)):
        rows = groups == group
        positives = int(y[rows].sum())
        mask = out.available(group)
        anchor = out.weights_for(group)  # pooled weights over the members that know the language
        if positives < min_positives or mask.sum() == 1:
            continue  # too little evidence, or nothing to weigh: the anchor serves it
        keep = np.flatnonzero(mask)
        raw = np.zeros(len(members))
        raw[keep] = _best_weights(y[rows], probs[rows][:, keep], step, grid, metric)
        w = (positives * raw + shrink * anchor) / (positives + shrink)
        out.groups[group] = (w / w.sum()).round(6).tolist()
        out.raw[group] = raw.tolist()
        out.support[group] = positives
    return out
