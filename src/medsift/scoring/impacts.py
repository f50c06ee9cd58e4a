"""Task 7 (impact spans) scores: strict entity F1 (seqeval default mode) and relaxed token-overlap F1.

Strict: seqeval's ``classification_report``/``f1_score`` in their DEFAULT mode (``mode=None``, the
conlleval-like chunker): an entity is (type, start, end) and must match exactly; an ``I-X`` after ``O`` or
after another type opens an entity.

Relaxed, as the official script computes it (micro over entity types):

- spans come from BIO (:func:`spans_from_bio`);
- for each gold span in order, every not-yet-used predicted span of the same type that overlaps it adds
  its overlapping token count to the overlap total and is marked used;
- precision = overlap / tokens in predicted spans, recall = overlap / tokens in gold spans, F1 from them;
  the official script prints each rounded to 3 decimals (``SpanScores.rounded``).

Undefined ratios (no predicted or no gold tokens) are 0.0, as in both official computations.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field

import pandas as pd

from medsift.errors import MedsiftError

Span = tuple[str, int, int]  # (type, start, end_exclusive)


def spans_from_bio(tags: list[str]) -> list[Span]:
    """Spans ``(type, start, end_exclusive)`` of a BIO tag sequence, in order.

    ``B-X`` opens a span; ``I-X`` continues the open span only when it has type X, otherwise it opens a
    new span of type X; ``O`` closes. Raises ``ValueError`` on a tag that is none of ``O``/``B-*``/``I-*``.
    """
    spans: list[Span] = []
    open_type: str | None = None
    start = 0
    for i, tag in enumerate(tags):
        if tag == "O":
            prefix, kind = "O", None
        elif len(tag) > 2 and tag[:2] in ("B-", "I-"):
            prefix, kind = tag[0], tag[2:]
        else:
            raise ValueError(f"tag {tag!r} at position {i} is not O, B-<type> or I-<type>")
        if prefix == "I" and kind == open_type:
            continue
        if open_type is not None:
            spans.append((open_type, start, i))
        open_type, start = kind, i
    if open_type is not None:
        spans.append((open_type, start, len(tags)))
    return spans


def bio_from_spans(spans: list[Span], length: int) -> list[str]:
    """Write spans back as BIO tags of ``length`` tokens (inverse of :func:`spans_from_bio`)."""
    tags = ["O"] * length
    for kind, start, end in spans:
        if not 0 <= start < end <= length:
            raise ValueError(f"span {(kind, start, end)} does not fit in {length} tokens")
        tags[start] = f"B-{kind}"
        tags[start + 1 : end] = [f"I-{kind}"] * (end - start - 1)
    return tags


@dataclass(frozen=True)
class SpanScores:
    """Precision/recall/F1 per entity type and micro overall, unrounded.

    ``per_type[type]`` has ``precision, recall, f1`` and counts: ``support`` (gold entities) for strict;
    ``overlap, gold_tokens, pred_tokens`` for relaxed. ``overall`` has the same keys, micro over types.
    """

    mode: str  # "strict" or "relaxed"
    overall: dict[str, float | int]
    per_type: dict[str, dict[str, float | int]] = field(default_factory=dict)

    @property
    def f1(self) -> float:
        return float(self.overall["f1"])

    @property
    def rounded(self) -> dict:
        """The same numbers rounded to 3 decimals with Python's ``round``, as the official script prints."""
        return {
            "overall": _round_block(self.overall),
            "per_type": {k: _round_block(v) for k, v in self.per_type.items()},
        }

    def to_dict(self) -> dict:
        return asdict(self)


def _round_block(block: dict) -> dict:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in block.items()}


def _prf(hit: float, n_pred: float, n_gold: float) -> tuple[float, float, float]:
    precision = hit / n_pred if n_pred > 0 else 0.0
    recall = hit / n_gold if n_gold > 0 else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def _check_lengths(gold_tags: list[list[str]], pred_tags: list[list[str]]) -> None:
    """Refuse sequences that cannot be compared: count or length mismatch, or a tag that is not BIO."""
    if len(gold_tags) != len(pred_tags):
        raise MedsiftError(f"gold has {len(gold_tags)} sequences but prediction has {len(pred_tags)}")
    for n, (g, p) in enumerate(zip(gold_tags, pred_tags, strict=True), start=1):
        if len(g) != len(p):
            raise MedsiftError(f"sequence {n}: gold has {len(g)} tags but prediction has {len(p)}")
        for what, tags in (("gold", g), ("prediction", p)):
            try:
                spans_from_bio(tags)
            except ValueError as exc:
                raise MedsiftError(f"sequence {n} ({what}): {exc}") from exc


def strict_scores(gold_tags: list[list[str]], pred_tags: list[list[str]]) -> SpanScores:
    """Strict entity-level scores from seqeval in its default mode, per type and micro overall."""
    from seqeval.metrics import classification_report

    _check_lengths(gold_tags, pred_tags)
    gold_tags, pred_tags = [list(t) for t in gold_tags], [list(t) for t in pred_tags]
    with warnings.catch_warnings():
        # seqeval warns about undefined metrics even with zero_division set; the value is 0.0 either way
        warnings.simplefilter("ignore")
        report = classification_report(gold_tags, pred_tags, output_dict=True, mode=None, zero_division=0)

    def block(entry: dict) -> dict:
        return {
            "precision": float(entry["precision"]),
            "recall": float(entry["recall"]),
            "f1": float(entry["f1-score"]),
            "support": int(entry["support"]),
        }

    per_type = {k: block(v) for k, v in sorted(report.items()) if not k.endswith(" avg")}
    return SpanScores(mode="strict", overall=block(report["micro avg"]), per_type=per_type)


def _relaxed_counts(gold: list[str], pred: list[str], counts: dict[str, Counter]) -> None:
    gold_spans, pred_spans = spans_from_bio(gold), spans_from_bio(pred)
    for kind, _, _ in gold_spans + pred_spans:
        counts.setdefault(kind, Counter())
    used: set[int] = set()
    for kind, g_start, g_end in gold_spans:
        for j, (p_kind, p_start, p_end) in enumerate(pred_spans):
            if j in used or p_kind != kind:
                continue
            overlap = min(g_end, p_end) - max(g_start, p_start)
            if overlap > 0:
                counts[kind]["overlap"] += overlap
                used.add(j)
        counts[kind]["gold_tokens"] += g_end - g_start
    for p_kind, p_start, p_end in pred_spans:
        counts[p_kind]["pred_tokens"] += p_end - p_start


def relaxed_scores(gold_tags: list[list[str]], pred_tags: list[list[str]]) -> SpanScores:
    """Relaxed token-overlap scores (the official rule, see the module docstring), unrounded.

    Types are those seen in gold or prediction; the overall is micro: summed overlaps over summed tokens.
    """
    _check_lengths(gold_tags, pred_tags)
    counts: dict[str, Counter] = {}
    for gold, pred in zip(gold_tags, pred_tags, strict=True):
        _relaxed_counts(list(gold), list(pred), counts)

    def block(c: Counter) -> dict:
        p, r, f = _prf(c["overlap"], c["pred_tokens"], c["gold_tokens"])
        return {
            "precision": p,
            "recall": r,
            "f1": f,
            **{k: int(c[k]) for k in ("overlap", "gold_tokens", "pred_tokens")},
        }

    total = sum(counts.values(), Counter())
    per_type = {k: block(counts[k]) for k in sorted(counts)}
    return SpanScores(mode="relaxed", overall=block(total), per_type=per_type)


@dataclass(frozen=True)
class ImpactScores:
    """Strict and relaxed Task 7 scores of one submission over ``sequences`` posts."""

    strict: SpanScores
    relaxed: SpanScores
    sequences: int

    def to_dict(self) -> dict:
        return {
            "sequences": self.sequences,
            "strict": self.strict.to_dict(),
            "relaxed": self.relaxed.to_dict(),
            "relaxed_rounded": self.relaxed.rounded,
        }


def _tag_lists(frame: pd.DataFrame, column: str, what: str) -> list[list[str]]:
    out = []
    for row_id, tags in zip(frame["ID"], frame[column], strict=True):
        if tags is None or isinstance(tags, float):  # a missing cell reads as None or NaN
            raise MedsiftError(f"{what} ID {row_id}: no tags")
        out.append([str(t) for t in tags])
    return out


def _align(gold: pd.DataFrame, pred: pd.DataFrame) -> pd.DataFrame:
    """Prediction rows in gold order.

    With unique gold IDs the prediction is joined by ID (any order). When gold IDs repeat (the official
    train file repeats ``Train_1``) an ID cannot say which row it means, so rows are aligned by position and
    the prediction must list the same IDs in the same order.
    """
    gold_ids, pred_ids = gold["ID"].tolist(), pred["ID"].tolist()
    gold_set, pred_set = set(gold_ids), set(pred_ids)
    if gold["ID"].is_unique:
        if dup := list(dict.fromkeys(pred["ID"][pred["ID"].duplicated()])):
            raise MedsiftError(f"prediction repeats IDs {', '.join(dup[:5])} ({len(dup)} in all)")
        if missing := [i for i in gold_ids if i not in pred_set]:
            raise MedsiftError(f"prediction is missing IDs {', '.join(missing[:5])} ({len(missing)} in all)")
        if extra := [i for i in pred_ids if i not in gold_set]:
            raise MedsiftError(
                f"prediction has IDs not in gold: {', '.join(extra[:5])} ({len(extra)} in all)"
            )
        return pred.set_index("ID").loc[gold_ids].reset_index()
    if len(gold_ids) != len(pred_ids):
        raise MedsiftError(
            f"gold repeats IDs, so rows are matched by position, but gold has {len(gold_ids)} rows "
            f"and prediction {len(pred_ids)}"
        )
    for n, (g, p) in enumerate(zip(gold_ids, pred_ids, strict=True), start=1):
        if g != p:
            raise MedsiftError(
                f"gold repeats IDs, so rows are matched by position; row {n} is {g} in gold but {p} in prediction"
            )
    return pred


def score_impacts(gold: pd.DataFrame, pred: pd.DataFrame) -> ImpactScores:
    """Strict and relaxed scores of a Task 7 submission.

    ``gold`` needs ``ID, ner_tags``; ``pred`` needs ``ID, predicted_ner_tags`` (lists of tags). Rows are
    joined by ID, or by position when gold IDs repeat (see :func:`_align`). Raises :class:`MedsiftError` for
    missing, extra or duplicate IDs and for a row whose tag count differs, naming the ID and both lengths.
    """
    for frame, cols, what in (
        (gold, ("ID", "ner_tags"), "gold"),
        (pred, ("ID", "predicted_ner_tags"), "prediction"),
    ):
        if absent := [c for c in cols if c not in frame.columns]:
            raise MedsiftError(f"{what} frame lacks column(s) {', '.join(absent)}")
    gold = gold.assign(ID=gold["ID"].astype(str)).reset_index(drop=True)
    pred = _align(gold, pred.assign(ID=pred["ID"].astype(str)).reset_index(drop=True))
    gold_tags = _tag_lists(gold, "ner_tags", "gold")
    pred_tags = _tag_lists(pred, "predicted_ner_tags", "prediction")
    for row_id, g, p in zip(gold["ID"], gold_tags, pred_tags, strict=True):
        if len(g) != len(p):
            raise MedsiftError(f"ID {row_id}: gold has {len(g)} tags but prediction has {len(p)}")
        for what, tags in (("gold", g), ("prediction", p)):
            try:
                spans_from_bio(tags)
            except ValueError as exc:
                raise MedsiftError(f"ID {row_id} ({what}): {exc}") from exc
    return ImpactScores(
        strict=strict_scores(gold_tags, pred_tags),
        relaxed=relaxed_scores(gold_tags, pred_tags),
        sequences=len(gold_tags),
    )
