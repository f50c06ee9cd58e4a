"""Impact-tagger sections: per-type strict/relaxed scores and posts with gold and predicted spans highlighted.

Tagger runs keep their dev scores per seed in ``seed-N/metrics.json`` (``dev``: ``ImpactScores.to_dict()``).
They do not save dev predictions, so test scores and highlighted examples need a labelled file and a
submission predicted on it (``medsift report RUN --test GOLD.csv --pred SUBMISSION.csv``, which attaches
:class:`medsift.report.load.ImpactTest`).

Highlights: in HTML, ``<mark class="gold|pred|both">`` around the tokens of a span (types in the title); in
Markdown, ``[[gold TYPE: tokens]]``, ``[[pred TYPE: tokens]]`` and ``[[both TYPE: tokens]]`` (``[[gold A /
pred B: tokens]]`` when both tag the tokens with different types). Other tokens are plain text.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from medsift.report import figures
from medsift.report.document import Cell, Document, Figure, Table, md_escape
from medsift.report.load import RunData
from medsift.scoring import spans_from_bio

LEGEND_HTML = (
    "<p>highlights: <mark class='gold'>gold only</mark>, <mark class='pred'>predicted only</mark>, "
    "<mark class='both'>both</mark> (hover for types)</p>"
)
LEGEND_MD = (
    "highlights: `[[gold TYPE: …]]` = gold only, `[[pred TYPE: …]]` = predicted only, `[[both TYPE: …]]` = "
    "gold and predicted (`[[gold A / pred B: …]]` when their types differ)"
)


def _per_type(scores: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Type -> (strict F1, relaxed F1), ``overall`` last, from an ``ImpactScores.to_dict()``."""
    strict, relaxed = scores.get("strict", {}), scores.get("relaxed", {})
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
    return row


def per_type_scores(run: RunData) -> dict[str, dict[str, tuple[float, float]]]:
    """Seed -> type -> (strict F1, relaxed F1), with ``overall`` last, from each seed's ``metrics.json``."""
    return {str(seed): _per_type(metrics.get("dev") or {}) for seed, metrics in run.seeds.items()}


@dataclass
class Segment:
    """Consecutive tokens covered by the same gold and predicted spans (types in span order)."""

    tokens: list[str]
    gold: list[str]
    pred: list[str]

    @property
    def mark(self) -> str | None:
        if self.gold and self.pred:
            return "both"
        return "gold" if self.gold else ("pred" if self.pred else None)


def segments(tokens: list[str], gold: list[str], pred: list[str]) -> list[Segment]:
    """Split a post where the set of gold or predicted spans covering a token changes."""
    cover: list[tuple[list, list]] = [([], []) for _ in tokens]
    for side, tags in ((0, gold), (1, pred)):
        for kind, start, end in spans_from_bio(list(tags)):
            for i in range(start, min(end, len(tokens))):
                cover[i][side].append((kind, start))
    out: list[Segment] = []
    previous = None
    for token, (g, p) in zip(tokens, cover, strict=True):
        if out and (g, p) == previous:
            out[-1].tokens.append(token)
        else:
            out.append(Segment([token], [k for k, _ in g], [k for k, _ in p]))
        previous = (g, p)
    return out


def _kinds(seg: Segment) -> str:
    return " ".join([f"gold:{k}" for k in seg.gold] + [f"pred:{k}" for k in seg.pred])


def highlight(tokens: list[str], gold: list[str], pred: list[str]) -> str:
    """Tokens as HTML with gold-only, predicted-only and agreed spans marked, span types as titles."""
    out = []
    for seg in segments(tokens, gold, pred):
        text = " ".join(html.escape(t) for t in seg.tokens)
        if seg.mark:
            text = f'<mark class="{seg.mark}" title="{html.escape(_kinds(seg))}">{text}</mark>'
        out.append(text)
    return " ".join(out)


def highlight_markdown(tokens: list[str], gold: list[str], pred: list[str]) -> str:
    """Tokens as Markdown text with ``[[gold|pred|both TYPE: …]]`` around spans (see the module docstring)."""
    out = []
    for seg in segments(tokens, gold, pred):
        text = " ".join(md_escape(t) for t in seg.tokens)
        if seg.mark == "both" and seg.gold == seg.pred:
            label = "both " + "+".join(seg.gold)
        elif seg.mark == "both":
            label = f"gold {'+'.join(seg.gold)} / pred {'+'.join(seg.pred)}"
        elif seg.mark:
            label = f"{seg.mark} {'+'.join(seg.gold or seg.pred)}"
        out.append(f"[[{label}: {text}]]" if seg.mark else text)
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
        tokens, g, p = list(row.tokens), list(row.ner_tags), list(pred_tags[str(row.ID)])
        post = Cell(
            " ".join(tokens), raw_html=highlight(tokens, g, p), markdown=highlight_markdown(tokens, g, p)
        )
        rows.append([Cell(str(row.ID)), Cell(diff, metric="tags_differing"), post])
    doc.raw(LEGEND_HTML, LEGEND_MD)
    doc.table(
        Table(
            f"examples-{run_id}",
            ["id", "tags differing", "post"],
            rows,
            "example posts: gold and predicted spans",
            [str(r[0].value) for r in rows],
        )
    )


def _test_table(run_id: str, scores: dict[str, Any]) -> Table:
    """Per-type precision/recall/F1, strict and relaxed, of the submission on the --test file."""
    strict, relaxed = scores["strict"], scores["relaxed"]
    types = [*sorted(set(strict["per_type"]) | set(relaxed["per_type"])), "overall"]
    rows = []
    for kind in types:
        s = strict["overall"] if kind == "overall" else strict["per_type"].get(kind, {})
        r = relaxed["overall"] if kind == "overall" else relaxed["per_type"].get(kind, {})
        cells = [Cell(kind)]
        for prefix, block in (("strict", s), ("relaxed", r)):
            for key in ("precision", "recall", "f1"):
                cells.append(Cell(float(block.get(key, np.nan)), metric=f"{prefix}_{key}"))
        rows.append(cells)
    columns = ["type", "strict P", "strict R", "strict F1", "relaxed P", "relaxed R", "relaxed F1"]
    caption = f"test: the --pred submission on the --test file ({scores['sequences']} posts), per type"
    return Table(f"types-{run_id}-test", columns, rows, caption, types)


def _dev_sections(doc: Document, run: RunData, run_id: str) -> None:
    scores = {seed: row for seed, row in per_type_scores(run).items() if row}
    if not scores:
        doc.para("no per-type dev scores in this run's seed metrics.", "note")
        return
    rows, keys = [], []
    for seed, per_type in scores.items():
        for kind, (strict, relaxed) in per_type.items():
            rows.append(
                [Cell(seed), Cell(kind), Cell(strict, metric="strict_f1"), Cell(relaxed, metric="relaxed_f1")]
            )
            keys.append(f"{seed}:{kind}")
    doc.table(
        Table(
            f"types-{run_id}", ["seed", "type", "strict F1", "relaxed F1"], rows, "dev scores per type", keys
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


def impacts_sections(
    doc: Document, run: RunData, run_id: str, examples: tuple | None, *, show_posts: bool = True
) -> None:
    """Per-type dev scores per seed; with a test file, its per-type scores and (``show_posts``) highlighted
    examples."""
    _dev_sections(doc, run, run_id)
    if run.impact_test is not None:
        doc.heading(f"{run.name} — test posts", 3, id=f"{run_id}-test")
        doc.table(_test_table(run_id, run.impact_test.scores))
        doc.figure(
            Figure(
                f"fig-{run_id}-test-types",
                f"{run.name}: strict and relaxed F1 per impact type (test posts)",
                figures.span_type_bars(_per_type(run.impact_test.scores)),
            )
        )
        if examples is None:
            examples = (run.impact_test.gold, run.impact_test.pred)
    if examples is not None and show_posts:
        _examples(doc, run_id, *examples)
