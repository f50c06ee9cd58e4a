"""Assemble the report of one or more runs: comparison table, then one section per run and split.

Element ids are stable so tests and scripts can find them: ``comparison``; per run (``<r>`` = slug of the run
name) and split ``<s>``: tables ``scores-<r>-<s>``, ``errors-<r>-<s>``, ``seeds-<r>``, ``types-<r>``; figures
``fig-<r>-<s>-{bars,pr,f1-threshold,reliability,confusion}``, ``fig-<r>-training``, ``fig-<r>-types``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from medsift.report import figures
from medsift.report.ade import (
    SPLIT_ROLE,
    SplitAnalysis,
    analyse_split,
    best_epoch,
    history_frame,
    policy_of,
    score_groups,
    tuning_notes,
    worst_errors,
)
from medsift.report.compare import best_per_column, compare_rows
from medsift.report.document import Cell, Document, Figure, Table
from medsift.report.impacts import impacts_sections
from medsift.report.load import RunData

Progress = Callable[[str], None]


def slug(name: str) -> str:
    """An HTML-id-safe version of a run name."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "run"


def comparison_table(runs: list[RunData], split: str | None = None) -> Table:
    """The side-by-side table of every run, best value per score column marked."""
    columns, rows = compare_rows(runs, split)
    best = best_per_column(columns, rows)
    cells = [
        [
            Cell(
                r.get(c, float("nan"))
                if c not in ("run", "kind", "split", "best_epoch", "seeds")
                else r.get(c, ""),
                metric=c if isinstance(r.get(c), float) else None,
                best=i in best.get(c, set()),
            )
            for c in columns
        ]
        for i, r in enumerate(rows)
    ]
    return Table(
        "comparison", columns, cells, "runs side by side (★ = best in column)", [r["run"] for r in rows]
    )


def _scores_table(run_id: str, analysis: SplitAnalysis) -> Table:
    s = analysis.scores
    columns = ["language", "rows", "gold +", "pred +", "threshold", "precision", "recall", "f1", "macro_f1"]
    used = {g.name: g.threshold for g in score_groups(analysis)}
    rows, keys = [], []
    for lang, block in [*s["per_language"].items(), ("overall", s)]:
        threshold = used[lang]
        rows.append(
            [
                Cell(lang),
                Cell(block["support"], metric="support"),
                Cell(block["positives"], metric="positives"),
                Cell(block["predicted_positives"], metric="predicted_positives"),
                # overall pools rows cut at several thresholds when they are per language
                Cell(float(threshold), metric="threshold", digits=2)
                if threshold is not None
                else Cell("per group"),
                Cell(block["precision"], metric="precision"),
                Cell(block["recall"], metric="recall"),
                Cell(block["f1"], metric="f1"),
                Cell(block["macro_f1_two_class"], metric="macro_f1_two_class"),
            ]
        )
        keys.append(lang)
    caption = (
        f"{analysis.split}: {SPLIT_ROLE.get(analysis.split, '')}; overall pools the non-CADEC rows "
        f"(as the official scorer); ECE {analysis.ece:.3f}"
    )
    return Table(f"scores-{run_id}-{analysis.split}", columns, rows, caption, keys)


def _errors_table(run_id: str, analysis: SplitAnalysis, texts: dict[str, str], n: int) -> Table:
    errors = worst_errors(analysis, texts, n)
    rows = [
        [
            Cell(e.kind),
            Cell(str(e.id)),
            Cell(str(e.language)),
            Cell(float(e.p_ade), metric="p_ade", digits=3),
            Cell(float(e.threshold), metric="threshold", digits=2),
            Cell(e.text if len(e.text) <= 600 else e.text[:600] + " …"),
        ]
        for e in errors.itertuples()
    ]
    return Table(
        f"errors-{run_id}-{analysis.split}",
        ["kind", "id", "language", "p_ade", "threshold", "text"],
        rows,
        "most confident false positives (highest p) and false negatives (lowest p)",
        [str(i) for i in errors["id"]],
    )


def _seeds_table(run_id: str, run: RunData) -> Table:
    metric_keys = ["eval_f1", "eval_macro_f1", "eval_loss"]
    rows, keys = [], []
    for seed, metrics in run.seeds.items():
        best = metrics.get("best", {})
        epoch = best_epoch(metrics)
        rows.append(
            [
                Cell(str(seed)),
                Cell(
                    float(epoch) if epoch is not None else "-",
                    metric="best_epoch" if epoch else None,
                    digits=-1,
                ),
            ]
            + [Cell(float(best[k]) if k in best else float("nan"), metric=k) for k in metric_keys]
        )
        keys.append(str(seed))
    return Table(
        f"seeds-{run_id}",
        ["seed", "best epoch", *metric_keys],
        rows,
        "per seed: the kept checkpoint's validation scores (metrics.json 'best')",
        keys,
    )


def _ade_split(doc: Document, run: RunData, run_id: str, split: str, errors: int, progress: Progress) -> None:
    policy = policy_of(run)
    analysis = analyse_split(run.probabilities[split], policy, split)
    doc.heading(f"{run.name} — {split} rows", 3, id=f"{run_id}-{split}")
    doc.table(_scores_table(run_id, analysis))
    progress(f"{run.name}/{split}: figures")
    base = f"fig-{run_id}-{split}"
    for suffix, png, caption in (
        (
            "bars",
            figures.language_bars(analysis),
            "precision, recall and F1 per scoring group at the thresholds in use",
        ),
        (
            "pr",
            figures.pr_curves(analysis),
            "precision-recall curve per scoring group (groups of the score table); dots = operating points",
        ),
        (
            "f1-threshold",
            figures.f1_threshold_curves(analysis),
            "F1 against the threshold per scoring group; dots mark the threshold each group's rows were cut "
            "at (a dashed line: the pooled F1 when overall mixes per-language thresholds)",
        ),
        (
            "reliability",
            figures.reliability_diagram(analysis),
            "reliability diagram (calibration) per scoring group, 10 bins; bars = pooled overall rows",
        ),
        (
            "confusion",
            figures.confusion_matrix(analysis),
            "confusion matrix of the pooled overall rows (CADEC excluded) at the thresholds in use",
        ),
    ):
        doc.figure(Figure(f"{base}-{suffix}", f"{run.name} / {split}: {caption}", png))
    if errors:  # 0: no post texts on the page (data that may not be redistributed)
        doc.table(_errors_table(run_id, analysis, run.texts.get(split, {}), errors))


def _ade_sections(doc: Document, run: RunData, run_id: str, errors: int, progress: Progress) -> None:
    if not run.probabilities:
        doc.para("no labelled probability file in this run: nothing to score.", "note")
    for split in run.probabilities:
        _ade_split(doc, run, run_id, split, errors, progress)


def _training_sections(doc: Document, run: RunData, run_id: str) -> None:
    history = history_frame(run)
    if run.task == "ade" and run.seeds:
        doc.table(_seeds_table(run_id, run))
    if not history.empty and "epoch" in history:
        metric = (
            "eval_f1"
            if "eval_f1" in history
            else next((c for c in history.columns if c.startswith("eval_") and c.endswith("f1")), "eval_loss")
        )
        doc.figure(
            Figure(
                f"fig-{run_id}-training",
                f"{run.name}: training/validation loss and validation {metric} per epoch",
                figures.training_curves(history, metric),
            )
        )


def _describe(run: RunData) -> str:
    model = run.config.get("model", {}).get("name") or run.manifest.extra.get("model") or "-"
    seeds = ", ".join(map(str, run.manifest.seeds)) or "-"
    return f"kind {run.kind}, task {run.task}, model {model}, seeds {seeds}, created {run.manifest.created}, path {run.path}"


def build_report(
    runs: list[RunData],
    *,
    title: str = "medsift report",
    errors: int = 10,
    split: str | None = None,
    progress: Progress | None = None,
    impact_examples: dict[str, tuple] | None = None,
) -> Document:
    """The whole report document for ``runs`` (render it with :func:`medsift.report.document.write`).

    ``errors`` is the number of worst errors shown per split; 0 puts no post text on the page at all (no
    error table, no highlighted impact posts), for reports of data that may not be redistributed.
    ``impact_examples`` maps a run name to ``(gold_frame, pred_frame)`` of impact posts to show highlighted
    (default: those of the run's attached :class:`~medsift.report.load.ImpactTest`).
    """
    progress = progress or (lambda _msg: None)
    doc = Document(title)
    doc.heading("Runs compared", 2, id="runs")
    doc.table(comparison_table(runs, split))
    for run in runs:
        run_id = slug(run.name)
        progress(f"{run.name}: sections")
        doc.heading(run.name, 2, id=f"run-{run_id}")
        doc.para(_describe(run))
        if run.task == "ade":
            for note in tuning_notes(run):
                doc.para(note, "note")
        _training_sections(doc, run, run_id)
        if run.task == "ade":
            _ade_sections(doc, run, run_id, errors, progress)
        else:
            impacts_sections(doc, run, run_id, (impact_examples or {}).get(run.name), show_posts=errors > 0)
    return doc
