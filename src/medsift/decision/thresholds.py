"""Decision thresholds for ADE probabilities: search, per-language policies, fallbacks and cross-fitting.

A row is predicted positive when ``p >= threshold``. Thresholds are tuned on *calibration rows*: rows used
neither for training nor for checkpoint selection. Tuning on the dev set that also picked the checkpoint
overstates the score (one published system: 0.75 dev vs 0.60 test). When the calibration set is small, use
:func:`cross_fit_thresholds` to report an out-of-fold score.

Modes of :func:`tune_thresholds`:

- ``"global"``: no tuning; every language uses 0.5.
- ``"tuned_global"``: one threshold, optimal on all calibration rows pooled, for every language.
- ``"per_language"``: one threshold per language that has at least ``min_positives`` positive calibration
  rows; other languages (too few positives) and languages never seen (e.g. Farsi) use the fallback.

Fallback rules (the threshold for a language without its own):

- ``"mean"``: the mean of the tuned per-language thresholds. This is the rule of the #SMM4H 2026 papers.
- ``"pooled"``: the single threshold optimal on all calibration rows pooled. Better founded: the official
  overall score is F1 pooled over rows, and this is the threshold that pooled F1 rewards; it also uses the
  rows of languages that had too few positives to be tuned alone.
- ``"global"``: 0.5, the threshold a calibrated probability implies for accuracy.

Search ties (several grid points with the best score) go to the threshold closest to 0.5, then the lower one:
the least extreme cut among equally good ones is the least likely to be an artefact of a few rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from medsift.decision._checks import binary_labels, language_vector, prob_vector
from medsift.errors import MedsiftError

Metric = Literal["f1", "macro_f1", "fbeta"]
Mode = Literal["global", "tuned_global", "per_language"]
Fallback = Literal["mean", "pooled", "global"]

DEFAULT_GRID = np.round(np.arange(0.20, 0.801, 0.01), 10)
POLICY_FORMAT = "medsift.threshold_policy/1"
_SCORE_TOLERANCE = 1e-12


class SearchResult(NamedTuple):
    """The best threshold on a grid and its score."""

    threshold: float
    score: float


def _check_grid(grid: npt.ArrayLike) -> np.ndarray:
    g = np.round(np.asarray(grid, dtype=float), 10)  # arange leaves 0.21000000000000002; keep JSON clean
    if g.ndim != 1 or g.size == 0:
        raise MedsiftError(f"threshold grid must be a non-empty list of numbers, got shape {g.shape}")
    if not np.all((g >= 0) & (g <= 1)):
        raise MedsiftError(f"threshold grid must lie in [0, 1], got [{g.min():g}, {g.max():g}]")
    return g


def _metric_from_counts(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray, metric: str, beta: float
) -> np.ndarray:
    """Score(s) from confusion counts; an undefined ratio (0/0) counts as 0, as scikit-learn does."""

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0)

    if metric == "f1":
        return ratio(2 * tp, 2 * tp + fp + fn)
    if metric == "macro_f1":
        return (ratio(2 * tp, 2 * tp + fp + fn) + ratio(2 * tn, 2 * tn + fp + fn)) / 2
    if metric == "fbeta":
        if beta <= 0:
            raise MedsiftError(f"beta must be positive, got {beta}")
        b2 = beta * beta
        return ratio((1 + b2) * tp, (1 + b2) * tp + b2 * fn + fp)
    raise MedsiftError(f"unknown metric {metric!r}; expected f1, macro_f1 or fbeta")


def score_labels(
    y: npt.ArrayLike, labels: npt.ArrayLike, metric: Metric = "f1", *, beta: float = 1.0
) -> float:
    """Score 0/1 predictions against 0/1 labels with the same metrics as :func:`search_threshold`."""
    yy = binary_labels(y, len(np.asarray(y)))
    pred = binary_labels(labels, yy.shape[0], name="labels").astype(bool)
    pos = yy.astype(bool)
    counts = [np.sum(pred & pos), np.sum(pred & ~pos), np.sum(~pred & pos), np.sum(~pred & ~pos)]
    return float(_metric_from_counts(*counts, metric=metric, beta=beta))


def search_threshold(
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    grid: npt.ArrayLike = DEFAULT_GRID,
    metric: Metric = "f1",
    *,
    beta: float = 1.0,
) -> SearchResult:
    """Return the grid threshold that maximises ``metric`` of ``p >= t`` against ``y``, and that score.

    Metrics: ``"f1"`` (positive-class F1, the official one), ``"macro_f1"`` (mean of the F1 of both classes),
    ``"fbeta"`` (positive-class F-beta with ``beta``). Ties go to the threshold closest to 0.5, then the lower.
    """
    pp = prob_vector(p)
    if pp.size == 0:
        raise MedsiftError("cannot search a threshold on zero rows")
    yy = binary_labels(y, pp.shape[0]).astype(bool)
    g = _check_grid(grid)
    pred = pp[:, None] >= g[None, :]  # (n_rows, n_grid)
    tp = np.sum(pred & yy[:, None], axis=0)
    fp = np.sum(pred & ~yy[:, None], axis=0)
    fn = np.sum(~pred & yy[:, None], axis=0)
    tn = np.sum(~pred & ~yy[:, None], axis=0)
    scores = _metric_from_counts(tp, fp, fn, tn, metric, beta)
    best = np.flatnonzero(scores >= scores.max() - _SCORE_TOLERANCE)
    order = np.lexsort((g[best], np.abs(g[best] - 0.5)))  # distance to 0.5 first, then the lower threshold
    chosen = best[order[0]]
    return SearchResult(float(g[chosen]), float(scores[chosen]))


@dataclass
class ThresholdPolicy:
    """Thresholds per language plus the fallback for every other language; JSON-serialisable.

    ``thresholds`` holds only the languages tuned on their own rows. ``fallback_languages`` maps each
    calibration language that fell back to the reason. ``fallback`` serves those and any unseen language.
    """

    mode: str
    fallback: float
    fallback_rule: str
    thresholds: dict[str, float] = field(default_factory=dict)
    fallback_languages: dict[str, str] = field(default_factory=dict)
    n_calibration: int = 0
    metric: str = "f1"
    beta: float = 1.0
    min_positives: int = 5
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    shrink: float = 0.0
    raw_thresholds: dict[str, float] = field(default_factory=dict)  # per language, before shrinking

    def threshold_for(self, language: str) -> float:
        """The threshold of ``language``: its own when tuned, otherwise the fallback."""
        return float(self.thresholds.get(str(language), self.fallback))

    def thresholds_for(self, languages: npt.ArrayLike | Sequence[str]) -> np.ndarray:
        """One threshold per row (vectorised :meth:`threshold_for`)."""
        langs = np.asarray(languages, dtype=object).ravel()
        return np.array([self.threshold_for(lang) for lang in langs], dtype=float)

    def apply(self, p: npt.ArrayLike, languages: npt.ArrayLike | Sequence[str]) -> np.ndarray:
        """0/1 labels: ``p >= threshold_for(language)`` row by row (unseen languages get the fallback)."""
        pp = prob_vector(p)
        langs = language_vector(languages, pp.shape[0])
        return (pp >= self.thresholds_for(langs)).astype(int)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with a ``format`` tag) that :meth:`from_dict` reads back."""
        return {"format": POLICY_FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ThresholdPolicy:
        """Rebuild a policy from :meth:`to_dict` output, refusing unknown or missing keys."""
        payload = dict(data)
        fmt = payload.pop("format", None)
        if fmt != POLICY_FORMAT:
            raise MedsiftError(f"not a threshold policy: format is {fmt!r}, expected {POLICY_FORMAT!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise MedsiftError(f"threshold policy has unknown keys: {', '.join(unknown)}")
        missing = sorted(k for k in ("mode", "fallback", "fallback_rule") if k not in payload)
        if missing:
            raise MedsiftError(f"threshold policy misses keys: {', '.join(missing)}")
        payload["thresholds"] = {str(k): float(v) for k, v in payload.get("thresholds", {}).items()}
        payload["fallback"] = float(payload["fallback"])
        return cls(**payload)


def _fallback_value(
    rule: str,
    tuned: dict[str, float],
    y: np.ndarray,
    p: np.ndarray,
    grid: np.ndarray,
    metric: str,
    beta: float,
) -> tuple[float, list[str]]:
    """The fallback threshold for ``rule`` and any note on how it was obtained."""
    if rule == "global":
        return 0.5, []
    if rule == "mean":
        if not tuned:
            return 0.5, ["no language had enough positives to be tuned; the mean fallback is 0.5"]
        return float(np.round(np.mean(list(tuned.values())), 10)), []
    if rule == "pooled":
        if not y.any():
            return 0.5, ["no positive calibration rows; the pooled fallback is 0.5"]
        return search_threshold(y, p, grid, metric, beta=beta).threshold, []  # type: ignore[arg-type]
    raise MedsiftError(f"unknown fallback rule {rule!r}; expected mean, pooled or global")


def tune_thresholds(
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    languages: npt.ArrayLike | Sequence[str],
    *,
    mode: Mode = "per_language",
    grid: npt.ArrayLike = DEFAULT_GRID,
    metric: Metric = "f1",
    beta: float = 1.0,
    min_positives: int = 5,
    fallback: Fallback = "mean",
    shrink: float = 0.0,
) -> ThresholdPolicy:
    """Fit a :class:`ThresholdPolicy` on calibration rows (labels ``y``, probabilities ``p``, ``languages``).

    See the module docstring for the modes and fallback rules. In ``"per_language"`` mode a language with
    fewer than ``min_positives`` positive rows is not tuned alone; it is listed in ``fallback_languages``.

    ``shrink`` > 0 pulls each tuned language threshold toward the pooled one by how many positives support
    it: ``t = (n_pos * t_language + shrink * t_pooled) / (n_pos + shrink)`` (rounded to 0.01). A threshold
    tuned on 14 positives is mostly noise; one tuned on 500 is mostly signal.
    """
    if shrink < 0:
        raise MedsiftError(f"threshold shrinkage must be >= 0, got {shrink}")
    pp = prob_vector(p)
    yy = binary_labels(y, pp.shape[0])
    langs = language_vector(languages, pp.shape[0])
    g = _check_grid(grid)
    if pp.size == 0:
        raise MedsiftError("cannot tune thresholds on zero calibration rows")
    counts = {
        str(lang): {"rows": int(np.sum(langs == lang)), "positives": int(yy[langs == lang].sum())}
        for lang in sorted(set(langs))
    }
    common = {"n_calibration": int(pp.size), "metric": metric, "beta": beta, "min_positives": min_positives}
    if mode == "global":
        return ThresholdPolicy(mode=mode, fallback=0.5, fallback_rule="global", counts=counts, **common)
    if mode == "tuned_global":
        value, notes = _fallback_value("pooled", {}, yy, pp, g, metric, beta)
        return ThresholdPolicy(
            mode=mode, fallback=value, fallback_rule="pooled", counts=counts, notes=notes, **common
        )
    if mode != "per_language":
        raise MedsiftError(f"unknown threshold mode {mode!r}; expected global, tuned_global or per_language")
    tuned: dict[str, float] = {}
    scores: dict[str, float] = {}
    fell_back: dict[str, str] = {}
    for lang, c in counts.items():
        if c["positives"] < min_positives:
            fell_back[lang] = f"too few positives: {c['positives']} < min_positives {min_positives}"
            continue
        mask = langs == lang
        tuned[lang], scores[lang] = search_threshold(yy[mask], pp[mask], g, metric, beta=beta)
    raw: dict[str, float] = {}
    if shrink > 0 and tuned:
        pooled = _fallback_value("pooled", {}, yy, pp, g, metric, beta)[0]
        raw = dict(tuned)
        for lang, t in raw.items():
            n_pos = counts[lang]["positives"]
            tuned[lang] = float(np.round((n_pos * t + shrink * pooled) / (n_pos + shrink), 2))
    value, notes = _fallback_value(fallback, tuned, yy, pp, g, metric, beta)
    return ThresholdPolicy(
        mode=mode,
        fallback=value,
        fallback_rule=fallback,
        thresholds=tuned,
        shrink=float(shrink),
        raw_thresholds=raw,
        fallback_languages=fell_back,
        counts=counts,
        scores=scores,
        notes=notes,
        **common,
    )


@dataclass
class CrossFitResult:
    """Out-of-fold decisions of a threshold policy, and the policy fit on every calibration row.

    ``labels[i]`` and ``thresholds[i]`` come from the policy fit on the folds that do not hold row ``i``;
    ``score`` is the metric of those labels pooled over all rows (an honest estimate); ``policy`` is the one
    to deploy.
    """

    labels: np.ndarray
    thresholds: np.ndarray
    folds: np.ndarray
    score: float
    policy: ThresholdPolicy
    fold_policies: list[ThresholdPolicy]


def stratified_folds(y: np.ndarray, languages: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Assign each row a fold in ``0..folds-1``, stratified by (language, label) so that every fold sees
    the rare positives of every language in proportion."""
    rng = np.random.default_rng(seed)
    assignment = np.empty(y.shape[0], dtype=int)
    offset = 0
    for key in sorted({(str(lang), int(label)) for lang, label in zip(languages, y, strict=True)}):
        idx = np.flatnonzero((languages == key[0]) & (y == key[1]))
        idx = rng.permutation(idx)
        # Continue the round-robin across strata so that small strata do not all land in fold 0.
        assignment[idx] = (offset + np.arange(idx.size)) % folds
        offset = (offset + idx.size) % folds
    return assignment


def cross_fit_thresholds(
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    languages: npt.ArrayLike | Sequence[str],
    folds: int = 5,
    seed: int = 13,
    **tune_kwargs: Any,
) -> CrossFitResult:
    """Cross-fit :func:`tune_thresholds`: each row is decided by a policy fit on the other folds.

    Use it to report an honest score when the calibration set is small. ``tune_kwargs`` are passed to
    :func:`tune_thresholds` (mode, grid, metric, beta, min_positives, fallback). A language absent from the
    training folds of a fold is treated as unseen there, exactly as at test time.
    """
    pp = prob_vector(p)
    yy = binary_labels(y, pp.shape[0])
    langs = language_vector(languages, pp.shape[0])
    if folds < 2:
        raise MedsiftError(f"cross-fitting needs at least 2 folds, got {folds}")
    if folds > pp.size:
        raise MedsiftError(f"cannot make {folds} folds from {pp.size} calibration rows")
    assignment = stratified_folds(yy, langs, folds, seed)
    labels = np.zeros(pp.size, dtype=int)
    thresholds = np.zeros(pp.size, dtype=float)
    fold_policies = []
    for k in range(folds):
        held = assignment == k
        policy = tune_thresholds(yy[~held], pp[~held], langs[~held], **tune_kwargs)
        fold_policies.append(policy)
        thresholds[held] = policy.thresholds_for(langs[held])
        labels[held] = (pp[held] >= thresholds[held]).astype(int)
    full = tune_thresholds(yy, pp, langs, **tune_kwargs)
    score = score_labels(yy, labels, full.metric, beta=full.beta)  # type: ignore[arg-type]
    return CrossFitResult(labels, thresholds, assignment, score, full, fold_policies)


def threshold_groups(
    ids: Sequence[str] | npt.ArrayLike, languages: Sequence[str] | npt.ArrayLike
) -> np.ndarray:
    """The group a row's threshold belongs to: the group the official scorer puts it in.

    CADEC rows (ids containing ``cadec``) are scored as ``<lang>_cadec``, apart from the native posts of the
    same language, and their base rates differ wildly (60 % positive translated reviews against 5-10 % in the
    forum posts), so they get thresholds of their own instead of dragging ``de``/``fr`` towards theirs.
    """
    from medsift.scoring.ade import scoring_language

    return np.array([scoring_language(i, lang) for i, lang in zip(ids, languages, strict=True)], dtype=object)
