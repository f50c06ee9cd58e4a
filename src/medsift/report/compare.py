"""The side-by-side table of runs (``medsift compare`` and the report's first table).

Rows are runs; columns are the pooled F1, two-class macro F1 and per-language F1 on one split (ADE runs), the
strict and relaxed F1 (impact taggers: on the attached test file, else the mean of the seeds' dev scores),
the best epoch and the seeds. Higher is better in
every score column; :func:`best_per_column` says which row holds each column's best.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medsift.report.ade import analyse_split, best_epoch, policy_of
from medsift.report.load import RunData

SCORE_PREFIXES = ("f1", "macro_f1", "strict_f1", "relaxed_f1")


def default_split(run: RunData, split: str | None) -> str | None:
    """The split a run is compared on: the one asked for, else ``test``, else ``calib`` (untuned), else ``val``."""
    if split is not None:
        return split if split in run.probabilities else None
    for name in ("test", "calib", "val"):
        if name in run.probabilities:
            return name
    return None


def impacts_split(run: RunData, split: str | None) -> str | None:
    """A tagger's split: ``test`` when a test file is attached (and not another split asked for), else ``dev``
    (the seeds' own dev scores, its only held-out rows); None when ``test`` is asked for but not attached."""
    if run.impact_test is not None and split in (None, "test"):
        return "test"
    return None if split == "test" else "dev"


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def compare_row(run: RunData, split: str | None = None) -> dict[str, Any]:
    """One run's comparison row (keys ``run, kind, split, f1, macro_f1, f1_<lang>..., best_epoch, seeds``)."""
    row: dict[str, Any] = {"run": run.name, "kind": run.kind}
    used = default_split(run, split) if run.task == "ade" else impacts_split(run, split)
    row["split"] = used or "-"
    if run.task == "ade" and used is not None:
        scores = analyse_split(run.probabilities[used], policy_of(run), used).scores
        row["f1"] = scores["f1"]
        row["macro_f1"] = scores["macro_f1_two_class"]
        for lang, block in scores["per_language"].items():
            row[f"f1_{lang}"] = block["f1"]
    if used == "test" and run.impact_test is not None:
        row["strict_f1"] = float(run.impact_test.scores["strict"]["overall"]["f1"])
        row["relaxed_f1"] = float(run.impact_test.scores["relaxed"]["overall"]["f1"])
    elif used == "dev":
        summaries = [m.get("summary", {}) for m in run.seeds.values()]
        row["strict_f1"] = _mean([s["strict_f1"] for s in summaries if "strict_f1" in s])
        row["relaxed_f1"] = _mean([s["relaxed_f1"] for s in summaries if "relaxed_f1" in s])
    key = "eval_f1" if run.task == "ade" else None
    epochs = [best_epoch(m, key) if key else best_epoch(m, _impacts_key(m)) for m in run.seeds.values()]
    epochs = [e for e in epochs if e is not None]
    row["best_epoch"] = "/".join(f"{e:g}" for e in epochs) if epochs else "-"
    row["seeds"] = ",".join(str(s) for s in (run.manifest.seeds or sorted(run.seeds))) or "-"
    return row


def _impacts_key(metrics: dict[str, Any]) -> str:
    history = metrics.get("history") or [{}]
    names = [k for k in history[0] if k.startswith("eval_") and k.endswith("f1")]
    return names[0] if names else "eval_f1"


def compare_rows(runs: list[RunData], split: str | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    """Rows for every run and the ordered union of their columns."""
    rows = [compare_row(run, split) for run in runs]
    columns = ["run", "kind", "split"]
    fixed_scores = [c for c in ("f1", "macro_f1", "strict_f1", "relaxed_f1") if any(c in r for r in rows)]
    languages = sorted({k for r in rows for k in r if k.startswith("f1_")})
    columns += fixed_scores + languages + ["best_epoch", "seeds"]
    return columns, rows


def is_score(column: str) -> bool:
    return column in SCORE_PREFIXES or column.startswith("f1_")


def best_per_column(columns: list[str], rows: list[dict[str, Any]]) -> dict[str, set[int]]:
    """Score column -> indices of the rows holding its highest value (ties all marked; NaN never best)."""
    out: dict[str, set[int]] = {}
    for column in columns:
        if not is_score(column):
            continue
        values = [(i, r.get(column)) for i, r in enumerate(rows)]
        values = [(i, v) for i, v in values if isinstance(v, float) and not np.isnan(v)]
        if len(values) < 2:
            continue  # one run: nothing to compare
        top = max(v for _, v in values)
        out[column] = {i for i, v in values if np.isclose(v, top, rtol=0, atol=1e-12)}
    return out
