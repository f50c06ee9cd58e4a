"""Impact-tagger sections: per-type strict/relaxed scores and posts with gold and predicted spans highlighted.

Tagger runs keep their dev scores per seed in ``seed-N/metrics.json`` (``dev``: ``ImpactScores.to_dict()``).
They do not save dev predictions, so highlighted examples need a labelled file and a submission predicted on
it (``medsift report RUN --test GOLD.csv --pred SUBMISSION.csv``).
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

from medsift.report import figures
from medsift.report.document import Cell, Document, Figure, Table
from medsift.report.load import RunData
from medsift.scoring import spans_from_bio


def per_type_scores(run: RunData) -> dict[str, dict[str, tuple[float, float]]]:
    """Seed -> type -> (strict F1, relaxed F1), with ``overall`` last, from each seed's ``metrics.json``."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for seed, metrics in run.seeds.items():
        dev = metrics.get("dev") or {}
        strict, relaxed = dev.get("strict", {}), dev.get("relaxed", {})
        types = sorted(set(strict.get("per_type", {})) | set(relaxed.get("per_type", {})))
        row = {
            t: (
                float(strict.get("per_type", {}).get(t, {}).get("f1", np.nan)),
                float(relaxed.get("per_type", {}).get(t, {}).get("f1", np.nan)),
            )
            for t in types
        }
        if strict or relaxed:
            row["overall"] = (
                float(strict.get("overall", {}).get("f1", np.nan)),
                float(relaxed.get("overall", {}).get("f1", np.nan)),
            )
        out[str(seed)] = row
    return out


def highlight(tokens: list[str], gold: list[str], pred: list[str]) -> str:
    """Tokens as HTML with gold-only, predicted-only and agreed tokens marked, span types as titles."""
    marks: list[set[str]] = [set() for _ in tokens]
    kinds: list[list[str]] = [[] for _ in tokens]
    for name, tags in (("gold", gold), ("pred", pred)):
        for kind, start, end in spans_from_bio(list(tags)):
            for i in range(start, min(end, len(tokens))):
                marks[i].add(name)
                kinds[i].append(f"{name}:{kind}")
    out = []
    for token, mark, kind in zip(tokens, marks, kinds, strict=True):
        text = html.escape(token)
        if mark:
            css = "both" if len(mark) == 2 else next(iter(mark))
            text = f'<mark class="{css}" title="{html.escape(" ".join(kind))}">{text}</mark>'
        out.append(text)
    return " ".join(out)


def _examples(doc: Document, run_id: str, gold: pd.DataFrame, pred: pd.DataFrame, n: int = 8) -> None:
    """Show the posts with the most disagreement first (then some agreed ones) with spans highlighted."""
    pred_tags = dict(zip(pred["ID"].astype(str), pred["predicted_ner_tags"], strict=True))
    scored: list[tuple[int, Any]] = []
    for row in gold.itertuples():
        p = pred_tags.get(str(row.ID))
        if p is None or row.ner_tags is None:
            continue
        diff = sum(g != q for g, q in zip(row.ner_tags, p, strict=False))
        if any(t != "O" for t in row.ner_tags) or any(t != "O" for t in p):
            scored.append((diff, row))
    scored.sort(key=lambda x: -x[0])
    chosen = scored[: n // 2] + [s for s in scored[n // 2 :] if s[0] == 0][: n - n // 2]
    rows = []
    for diff, row in chosen:
        p = pred_tags[str(row.ID)]
        shown = highlight(list(row.tokens), list(row.ner_tags), list(p))
        plain = " ".join(row.tokens)
        rows.append([Cell(str(row.ID)), Cell(diff, metric="tags_differing"), Cell(plain, raw_html=shown)])
    doc.para("highlights: blue = gold only, orange = predicted only, green = both (hover for types)")
    doc.table(
        Table(
            f"examples-{run_id}",
            ["id", "tags differing", "post"],
            rows,
            "example posts: gold and predicted spans",
            [str(r[0].value) for r in rows],
        )
    )


def impacts_sections(doc: Document, run: RunData, run_id: str, examples: tuple | None) -> None:
    """Per-type score table and figure per seed, then highlighted examples when given."""
    scores = per_type_scores(run)
    if not scores:
        doc.para("no per-type dev scores in this run's seed metrics.", "note")
    rows, keys = [], []
    for seed, per_type in scores.items():
        for kind, (strict, relaxed) in per_type.items():
            rows.append(
                [Cell(seed), Cell(kind), Cell(strict, metric="strict_f1"), Cell(relaxed, metric="relaxed_f1")]
            )
            keys.append(f"{seed}:{kind}")
    if rows:
        doc.table(
            Table(
                f"types-{run_id}",
                ["seed", "type", "strict F1", "relaxed F1"],
                rows,
                "dev scores per type",
                keys,
            )
        )
        first_seed = next(iter(scores))
        doc.figure(
            Figure(
                f"fig-{run_id}-types",
                f"{run.name} seed {first_seed}: strict and relaxed F1 per impact type (dev posts)",
                figures.span_type_bars(scores[first_seed]),
            )
        )
    if examples is not None:
        _examples(doc, run_id, *examples)
