"""Numbers behind the ADE report: scores per split and language, curves, confusion counts, worst errors.

Pure functions over the frames :mod:`medsift.report.load` builds (``id, language, label, p_ade``), so each
can be tested on hand-made probabilities. Labels are cut with the run's own threshold policy: the scores are
the ones ``medsift predict`` would give those rows.

Rows are grouped as the official scorer groups them (:func:`medsift.decision.threshold_groups`): CADEC rows
form ``<lang>_cadec`` apart from the native posts of ``<lang>``, and ``overall`` pools every non-CADEC row.
Tables, curves and reliability diagrams all use these groups (:func:`score_groups`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from medsift.decision import ThresholdPolicy, reliability_bins, threshold_groups
from medsift.decision.calibration import expected_calibration_error
from medsift.report.load import RunData, row_keys
from medsift.scoring import score_ade
from medsift.scoring.ade import CADEC_SUFFIX

GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)
SPLIT_ROLE = {
    "val": "validation rows: chose the best epoch (checkpoint selection)",
    "calib": "calibration rows: never trained or selected on",
    "test": "held-out labelled file given with --test",
}


@dataclass
class SplitAnalysis:
    """Everything the ADE sections show for one split of one run."""

    split: str
    scores: dict[str, Any]  # AdeScores.to_dict()
    confusion: dict[str, int]  # tp, fp, fn, tn (pooled overall rows, CADEC excluded, as the overall F1)
    ece: float  # of the pooled overall rows
    frame: pd.DataFrame  # the rows with group (scoring group), predicted_label and threshold


@dataclass
class ScoreGroup:
    """The rows of one scoring group: ``overall`` (non-CADEC rows pooled), a language, or ``<lang>_cadec``."""

    name: str
    y: np.ndarray
    p: np.ndarray
    threshold: float | None  # the one threshold its rows were cut at; None when they used several


def policy_of(run: RunData) -> ThresholdPolicy:
    """The run's threshold policy; 0.5 for a run that has none."""
    if run.policy is not None:
        return run.policy
    return ThresholdPolicy(mode="global", fallback=0.5, fallback_rule="global")


def analyse_split(frame: pd.DataFrame, policy: ThresholdPolicy, split: str) -> SplitAnalysis:
    """Cut ``frame`` with ``policy`` and score it as the official scorer would."""
    languages = frame["language"].astype(str).to_numpy()
    groups = threshold_groups(frame["id"].astype(str), languages)
    thresholds = policy.thresholds_for(groups)
    p = frame["p_ade"].to_numpy(dtype=float)
    pred = (p >= thresholds).astype(int)
    rows = frame.assign(group=groups, predicted_label=pred, threshold=thresholds)
    scores = score_ade(*_scoring_frames(rows)).to_dict()
    pooled = rows[~_is_cadec(rows)]
    y, yhat, pp = (pooled[c].to_numpy() for c in ("label", "predicted_label", "p_ade"))
    confusion = {
        "tp": int(((yhat == 1) & (y == 1)).sum()),
        "fp": int(((yhat == 1) & (y == 0)).sum()),
        "fn": int(((yhat == 0) & (y == 1)).sum()),
        "tn": int(((yhat == 0) & (y == 0)).sum()),
    }
    ece = expected_calibration_error(y.astype(int), pp.astype(float)) if len(y) else float("nan")
    return SplitAnalysis(split, scores, confusion, float(ece), rows)


def _scoring_frames(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(gold, prediction) frames for :func:`score_ade`.

    Rows with ``uid`` (a run's own val/calib files) may repeat ids across merged training files, which the
    scorer refuses: they are scored under their row positions as ids, each in the group its real id gave
    it (``group``: language or ``<lang>_cadec``), so the per-language scores stay the official ones.
    """
    if "uid" not in rows.columns or not rows["id"].astype(str).duplicated().any():
        return rows[["id", "label", "language"]], rows[["id", "predicted_label"]]
    keys = [str(i) for i in range(len(rows))]  # digits only: never read as a CADEC id
    gold = pd.DataFrame({"id": keys, "label": rows["label"].to_numpy(), "language": rows["group"].to_numpy()})
    return gold, pd.DataFrame({"id": keys, "predicted_label": rows["predicted_label"].to_numpy()})


def _is_cadec(rows: pd.DataFrame) -> pd.Series:
    return rows["group"].astype(str).str.endswith(CADEC_SUFFIX)


def score_groups(analysis: SplitAnalysis) -> list[ScoreGroup]:
    """``overall`` then every scoring group in the order of the score table (``scores["per_language"]``).

    The same rows the official scorer counts in each group, so a curve's ``n`` is the table's ``rows``.
    """
    rows = analysis.frame
    parts = [("overall", rows[~_is_cadec(rows)])]
    parts += [(name, rows[rows["group"] == name]) for name in analysis.scores["per_language"]]
    out = []
    for name, part in parts:
        used = np.unique(part["threshold"].to_numpy(dtype=float))
        out.append(
            ScoreGroup(
                name,
                part["label"].to_numpy(dtype=int),
                part["p_ade"].to_numpy(dtype=float),
                float(used[0]) if len(used) == 1 else None,
            )
        )
    return out


def analyse_run(run: RunData) -> dict[str, SplitAnalysis]:
    """One :class:`SplitAnalysis` per labelled split the run has (val, calib, and test when attached)."""
    policy = policy_of(run)
    return {split: analyse_split(frame, policy, split) for split, frame in run.probabilities.items()}


def pr_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at every distinct probability as the cut (from sklearn)."""
    from sklearn.metrics import precision_recall_curve

    if y.sum() == 0:
        return np.array([1.0]), np.array([0.0])
    precision, recall, _ = precision_recall_curve(y, p)
    return precision, recall


def f1_curve(y: np.ndarray, p: np.ndarray, grid: np.ndarray = GRID) -> np.ndarray:
    """Positive-class F1 at each threshold of ``grid`` (rule ``p >= t``)."""
    pred = p[None, :] >= grid[:, None]
    tp = (pred & (y[None, :] == 1)).sum(axis=1)
    fp = (pred & (y[None, :] == 0)).sum(axis=1)
    fn = ((~pred) & (y[None, :] == 1)).sum(axis=1)
    den = 2 * tp + fp + fn
    return np.where(den > 0, 2 * tp / np.maximum(den, 1), 0.0)


def reliability(group: ScoreGroup, n_bins: int = 10):
    """Reliability bins of one group's rows (see :func:`medsift.decision.reliability_bins`)."""
    return reliability_bins(group.y, group.p, n_bins)


def worst_errors(analysis: SplitAnalysis, texts: dict[str, str], n: int = 10) -> pd.DataFrame:
    """The most confident mistakes: false positives by highest ``p_ade``, false negatives by lowest.

    Columns ``kind, id, language, label, p_ade, threshold, text`` (text empty when the source file is gone).
    """
    rows = analysis.frame
    fp = rows[(rows["predicted_label"] == 1) & (rows["label"] == 0)].sort_values("p_ade", ascending=False)
    fn = rows[(rows["predicted_label"] == 0) & (rows["label"] == 1)].sort_values("p_ade", ascending=True)
    out = pd.concat([fp.head(n).assign(kind="false positive"), fn.head(n).assign(kind="false negative")])
    out = out.assign(text=[texts.get(k, "") for k in row_keys(out)])  # uid when the rows have one
    return out[["kind", "id", "language", "label", "p_ade", "threshold", "text"]].reset_index(drop=True)


def tuning_notes(run: RunData) -> list[str]:
    """Plain sentences saying which rows tuned what, from ``splits.csv`` / ``ensemble.json`` / the policy."""
    notes = []
    if run.splits is not None and "split" in run.splits.columns:
        counts = run.splits["split"].value_counts()
        parts = ", ".join(f"{k} {int(counts.get(k, 0))}" for k in ("train", "val", "calib"))
        notes.append(f"splits.csv rows: {parts}. train = learned from; val = chose the best epoch.")
    if run.ensemble is not None:
        used = run.ensemble.get("rows_used", {})
        weights = used.get("weights", {})
        tuned = used.get("calibration_and_thresholds", {})
        notes.append(
            f"ensemble ({run.ensemble.get('method')}): member weights from {weights.get('split')} rows "
            f"({weights.get('rows')}); calibration and thresholds from {tuned.get('split')} rows "
            f"({tuned.get('rows')})."
        )
        notes.extend(run.ensemble.get("warnings", []))
    policy = policy_of(run)
    if policy.n_calibration:
        notes.append(
            f"thresholds ({policy.mode}) were tuned on {policy.n_calibration} rows: scores on those rows are "
            "optimistic for the threshold step."
        )
    else:
        notes.append(
            f"thresholds were not tuned (fallback {policy.fallback:g}): the calib rows are untouched by any step."
        )
    return notes


def history_frame(run: RunData) -> pd.DataFrame:
    """Per-epoch history of every seed: ``seed, epoch, train_loss, eval_loss, eval_f1, eval_macro_f1``."""
    rows = []
    for seed, metrics in run.seeds.items():
        seen = set()
        for entry in metrics.get("history", []):
            # The evaluation of the reloaded best model is logged again at the last epoch: keep the first.
            if entry.get("epoch") in seen:
                continue
            seen.add(entry.get("epoch"))
            rows.append({"seed": seed, **entry})
    return pd.DataFrame(rows)


def best_epoch(metrics: dict[str, Any], key: str = "eval_f1") -> float | None:
    """The epoch of the checkpoint the Trainer kept (its step in ``best_checkpoint``), else the best ``key``."""
    history = [h for h in metrics.get("history", []) if h.get(key) is not None]
    if not history:
        return None
    found = re.search(r"checkpoint-(\d+)$", str(metrics.get("best_checkpoint") or ""))
    if found:
        for entry in history:
            if entry.get("step") == int(found.group(1)):
                return entry.get("epoch")
    return max(history, key=lambda h: h[key]).get("epoch")
