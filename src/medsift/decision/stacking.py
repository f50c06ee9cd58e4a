"""Stacking: a logistic regression over member probabilities and optional per-post member features.

The paper's "XLM-R-base + GLiNER feature ensemble" fed the XLM-R probability and nine GLiNER features (entity
counts, maximum scores) to a logistic regression. Here any member's probability joins as its logit, and any
member may add per-post features (columns ``feat__<name>`` of its probability files, e.g. a GLiNER scorer's
entity counts and maximum scores).

Which rows fit what: the regression is fit on the **calib rows only** (the val rows chose the members'
checkpoints). To give the stacker a score of its own that is honest, it is cross-fitted there: each calib row
is scored by a regression fit on the other folds, and those out-of-fold probabilities are what thresholds are
tuned on and what its calib score reports. The model kept for prediction is then fit on every calib row.

A member restricted to some languages contributes its logit only on rows of those languages; elsewhere its
feature is 0, the logit of 0.5 (no evidence either way).

Everything here is pure numpy / scikit-learn: arrays in, a :class:`Stacker` out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from medsift.errors import MedsiftError

FEATURE_PREFIX = "feat__"  # extra per-post member features in probability files: feat__<name>
_EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    """Log-odds, clipped so that probabilities of exactly 0 or 1 stay finite."""
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def design_matrix(
    probs: np.ndarray,
    member_names: list[str],
    known: np.ndarray | None = None,
    features: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """The stacker's inputs ``(n_rows, n_features)`` and their names.

    One column per member: the logit of its probability (``p:<member>``), set to 0 on rows of a language the
    member does not know (``known``: a boolean ``(n_rows, n_members)`` mask, None = every member knows every
    row). Then one column per extra feature, named ``<member>:<feature>`` by the caller, in sorted order.
    """
    probs = np.asarray(probs, dtype=float)
    columns = logit(probs)
    if known is not None:
        columns = np.where(known, columns, 0.0)
    names = [f"p:{n}" for n in member_names]
    extra = features or {}
    blocks = [columns]
    for name in sorted(extra):
        values = np.asarray(extra[name], dtype=float).reshape(-1, 1)
        if values.shape[0] != probs.shape[0]:
            raise MedsiftError(f"feature {name!r}: {values.shape[0]} rows for {probs.shape[0]} posts")
        if not np.isfinite(values).all():
            raise MedsiftError(f"feature {name!r} has missing or non-finite values")
        blocks.append(values)
        names.append(name)
    return np.hstack(blocks), names


@dataclass
class Stacker:
    """A fitted logistic regression on standardised features (``(x - mean) / scale``)."""

    names: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]  # per standardised feature: the change in log-odds per standard deviation
    intercept: float
    C: float

    def apply(self, X: np.ndarray) -> np.ndarray:
        """P(ADE) per row of ``X`` (columns in :attr:`names` order)."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != len(self.names):
            raise MedsiftError(
                f"the stacker takes {len(self.names)} features ({', '.join(self.names)}), got shape {X.shape}"
            )
        z = (X - np.asarray(self.mean)) / np.asarray(self.scale)
        return 1 / (1 + np.exp(-(z @ np.asarray(self.coef) + self.intercept)))

    def coefficients(self) -> list[dict[str, float | str]]:
        """Each feature's coefficient (log-odds per standard deviation) and odds ratio, largest effect first."""
        rows = [
            {"feature": n, "coefficient": c, "odds_ratio": float(np.exp(c))}
            for n, c in zip(self.names, self.coef, strict=True)
        ]
        return sorted(rows, key=lambda r: -abs(float(r["coefficient"])))  # type: ignore[arg-type]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Stacker:
        return cls(**data)


def fit_stacker(y: np.ndarray, X: np.ndarray, names: list[str], *, C: float = 1.0) -> Stacker:
    """Fit the regression on every given row (L2, ``C`` the inverse regularisation, lbfgs)."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y, dtype=int)
    X = np.asarray(X, dtype=float)
    if len(np.unique(y)) < 2:
        raise MedsiftError("stacking needs positive and negative rows to fit on")
    if C <= 0:
        raise MedsiftError(f"the stacker's C must be positive, got {C}")
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)  # a constant feature keeps coefficient ~0
    model = LogisticRegression(C=C, max_iter=1000)
    model.fit((X - mean) / scale, y)
    return Stacker(
        names=list(names),
        mean=mean.tolist(),
        scale=scale.tolist(),
        coef=model.coef_[0].tolist(),
        intercept=float(model.intercept_[0]),
        C=float(C),
    )


@dataclass
class StackingFit:
    """The stacker fit on every tuning row, and each row's out-of-fold probability (honest for those rows)."""

    stacker: Stacker
    out_of_fold: np.ndarray
    folds: int


def cross_fit_stacker(
    y: np.ndarray,
    X: np.ndarray,
    names: list[str],
    strata: np.ndarray,
    *,
    folds: int = 5,
    seed: int = 13,
    C: float = 1.0,
) -> StackingFit:
    """Out-of-fold probabilities over ``folds`` folds stratified by label and ``strata`` (languages), then the
    final stacker on every row."""
    from medsift.decision.thresholds import stratified_folds

    y = np.asarray(y, dtype=int)
    if folds < 2:
        raise MedsiftError(f"stacking is cross-fitted over at least 2 folds, got {folds}")
    if min(int(y.sum()), int((1 - y).sum())) < folds:
        raise MedsiftError(
            f"stacking over {folds} folds needs at least {folds} positive and {folds} negative calib rows "
            f"(found {int(y.sum())} and {int((1 - y).sum())})"
        )
    fold_of = stratified_folds(y, np.asarray(strata, dtype=object), folds, seed)
    oof = np.zeros(len(y))
    for k in range(folds):
        held = fold_of == k
        if not held.any():
            continue
        if len(np.unique(y[~held])) < 2:
            raise MedsiftError(
                "a stacking fold left no positive (or no negative) row to fit on; use fewer folds"
            )
        oof[held] = fit_stacker(y[~held], X[~held], names, C=C).apply(X[held])
    return StackingFit(fit_stacker(y, X, names, C=C), oof, folds)
