"""The report's figures, drawn with matplotlib's Agg backend (no display) and returned as PNG bytes.

Each function takes the numbers it draws and returns ``bytes``; the renderer inlines them as base64 (HTML)
or writes them beside the Markdown file.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd

from medsift.decision.calibration import expected_calibration_error
from medsift.report.ade import GRID, ScoreGroup, SplitAnalysis, f1_curve, pr_curve, reliability, score_groups

DPI = 90


@contextmanager
def _figure(width: float = 6.0, height: float = 3.6) -> Iterator[tuple[object, object]]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=DPI)
    try:
        yield fig, ax
    finally:
        plt.close(fig)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def language_bars(analysis: SplitAnalysis) -> bytes:
    """Grouped precision / recall / F1 bars per language plus the pooled overall."""
    scores = analysis.scores
    names = [*scores["per_language"], "overall"]
    blocks = [*scores["per_language"].values(), scores]
    x = np.arange(len(names))
    with _figure(max(5.0, 1.1 * len(names) + 2), 3.4) as (fig, ax):
        for k, metric in enumerate(("precision", "recall", "f1")):
            values = [b[metric] for b in blocks]
            bars = ax.bar(x + (k - 1) * 0.27, values, 0.27, label=metric)
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(x, names)
        ax.set_ylim(0, 1.1)
        ax.set_ylabel("score (positive class)")
        ax.legend(loc="upper left", fontsize=8, ncols=3)
        return _png(fig)


def _label(group: ScoreGroup) -> str:
    return f"{group.name} (n={len(group.y)}, +{int(group.y.sum())})"


def pr_curves(analysis: SplitAnalysis) -> bytes:
    """Precision-recall curve per scoring group (and pooled overall), each with its operating point."""
    scores = analysis.scores
    with _figure() as (fig, ax):
        for group in score_groups(analysis):
            if not len(group.y):
                continue
            precision, recall = pr_curve(group.y, group.p)
            (line,) = ax.plot(recall, precision, label=_label(group), lw=2 if group.name == "overall" else 1)
            block = scores if group.name == "overall" else scores["per_language"][group.name]
            ax.plot([block["recall"]], [block["precision"]], "o", color=line.get_color(), ms=6)
        ax.set_xlabel("recall; dots = operating points at the thresholds in use")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7, loc="lower left")
        return _png(fig)


def f1_threshold_curves(analysis: SplitAnalysis) -> bytes:
    """F1 against the decision threshold per scoring group, the threshold its rows were cut at marked.

    ``overall`` pools rows cut at different thresholds when the policy is per language: it then has no
    single threshold, and a dashed horizontal line marks the pooled F1 those thresholds reach instead.
    """
    with _figure() as (fig, ax):
        for group in score_groups(analysis):
            if not len(group.y):
                continue
            f1 = f1_curve(group.y, group.p)
            (line,) = ax.plot(GRID, f1, label=_label(group), lw=2 if group.name == "overall" else 1)
            colour = line.get_color()
            if group.threshold is None:
                ax.axhline(analysis.scores["f1"], color=colour, ls="--", lw=0.8)
                continue
            used = float(f1_curve(group.y, group.p, np.array([group.threshold]))[0])
            ax.axvline(group.threshold, color=colour, ls=":", lw=0.8)
            ax.plot([group.threshold], [used], "o", color=colour, ms=6)
        ax.set_xlabel("threshold (p_ade >= t is ADE); dots = thresholds in use")
        ax.set_ylabel("F1 (positive class)")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
        return _png(fig)


def reliability_diagram(analysis: SplitAnalysis) -> bytes:
    """Observed positive rate against mean predicted probability per bin and scoring group; bars are the
    pooled overall rows; the diagonal is perfect calibration."""
    with _figure(4.8, 4.2) as (fig, ax):
        ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="perfect")
        for group in score_groups(analysis):
            if not len(group.y):
                continue
            bins = reliability(group)
            used = bins.count > 0
            ece = expected_calibration_error(group.y, group.p)
            overall = group.name == "overall"
            if overall:
                ax.bar(
                    (bins.lower + bins.upper)[used] / 2,
                    bins.positive_rate[used],
                    width=(bins.upper - bins.lower)[used] * 0.9,
                    alpha=0.3,
                    color="grey",
                )
            ax.plot(
                bins.mean_p[used],
                bins.positive_rate[used],
                "o-" if overall else ".-",
                lw=2 if overall else 1,
                label=f"{group.name} (n={len(group.y)}, ECE {ece:.3f})",
            )
        ax.set_xlabel("predicted p_ade")
        ax.set_ylabel("observed share of ADE")
        ax.set_title(f"overall ECE = {analysis.ece:.3f}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
        return _png(fig)


def confusion_matrix(analysis: SplitAnalysis) -> bytes:
    """2x2 confusion counts of the pooled overall rows (CADEC excluded) at the thresholds in use."""
    c = analysis.confusion
    matrix = np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]])
    with _figure(3.6, 3.2) as (fig, ax):
        ax.imshow(matrix, cmap="Blues")
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=12)
        ax.set_xticks([0, 1], ["pred 0", "pred 1"])
        ax.set_yticks([0, 1], ["gold 0", "gold 1"])
        return _png(fig)


def training_curves(history: pd.DataFrame, metric: str = "eval_f1") -> bytes:
    """Training and validation loss (left) and the validation metric (right) per epoch, one line per seed."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=DPI)
    try:
        for seed, rows in history.groupby("seed"):
            if "train_loss" in rows:
                left.plot(rows["epoch"], rows["train_loss"], "o-", label=f"train seed {seed}")
            if "eval_loss" in rows:
                left.plot(rows["epoch"], rows["eval_loss"], "s--", label=f"val seed {seed}")
            if metric in rows:
                right.plot(rows["epoch"], rows[metric], "o-", label=f"seed {seed}")
        left.set_xlabel("epoch")
        left.set_ylabel("loss")
        left.legend(fontsize=7)
        right.set_xlabel("epoch")
        right.set_ylabel(f"validation {metric.removeprefix('eval_')}")
        right.legend(fontsize=7)
        return _png(fig)
    finally:
        plt.close(fig)


def span_type_bars(per_type: dict[str, tuple[float, float]]) -> bytes:
    """Strict and relaxed F1 per impact type (``type -> (strict, relaxed)``)."""
    names = list(per_type)
    x = np.arange(len(names))
    with _figure(max(5.0, 0.9 * len(names) + 2), 3.4) as (fig, ax):
        for k, label in enumerate(("strict", "relaxed")):
            bars = ax.bar(x + (k - 0.5) * 0.38, [per_type[n][k] for n in names], 0.38, label=label)
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
        ax.set_ylim(0, 1.1)
        ax.set_ylabel("F1")
        ax.legend(fontsize=8)
        return _png(fig)


def histogram_panels(hists: dict, title: str) -> bytes:
    """``medsift histograms --png``: one panel per language, positive and negative shares per bin, the overlap
    coefficient in each panel's title."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(hists), 1, figsize=(6, 2.2 * len(hists)), squeeze=False)
    try:
        for ax, (lang, h) in zip(axes[:, 0], hists.items(), strict=True):
            centres, width = (h.edges[:-1] + h.edges[1:]) / 2, h.edges[1] - h.edges[0]
            ax.bar(centres, h.negative_share, width=width, alpha=0.5, label=f"negative ({h.n_negative})")
            ax.bar(centres, h.positive_share, width=width, alpha=0.5, label=f"positive ({h.n_positive})")
            ax.set_title(f"{lang}: overlap {h.overlap:.3f}", fontsize=9)
            ax.set_xlim(0, 1)
            ax.legend(fontsize=7)
        axes[-1, 0].set_xlabel("p_ade")
        fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        return buf.getvalue()
    finally:
        plt.close(fig)
