"""Typed results: what a prediction over a file reports, and what a tagger member is.

Every run kind's file predictor reports the same few facts (rows written, blank and long posts, fallback
thresholds, parser repairs, scores when the input was labelled); :class:`PredictionResult` names them once.
It is also a read-only mapping of the facts that were reported (``result["rows"]``, ``"scores" in result``),
so code that read the plain dictionaries of earlier releases keeps working.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple


class TaggerMember(NamedTuple):
    """One trained tagger (a seed's model folder): the model, its tokenizer and ``tagger.json``'s settings."""

    model: Any
    tokenizer: Any
    meta: dict[str, Any]


@dataclass(frozen=True)
class PredictionResult(Mapping[str, Any]):
    rows: int | None = None  # rows written (one per input row)
    task: str | None = None  # ade | impacts (LLM runs say it themselves)
    positives: int | None = None  # ADE: rows predicted positive
    truncated: int | None = None  # ADE classifier: posts longer than max_length
    truncation: list[dict[str, Any]] | None = None  # ADE ensemble: the same, per classifier member
    blank_posts: int | None = None  # empty or whitespace-only posts (predicted like any row)
    resumed_rows: int | None = None  # rows a killed run had scored, kept
    thresholds: dict[str, float] | None = None  # ADE ensemble: the threshold each group got
    fallback_rows: int | None = None  # rows of a group with no tuned threshold of its own
    fallback_groups: list[str] = field(default_factory=list)
    tokens: int | None = None  # taggers: tokens tagged
    spans: int | None = None  # taggers: spans found
    members: int | None = None  # taggers: models voting
    repairs: dict[str, Any] | None = None  # LLM spans: the parser's repair report
    constrained: bool | None = None  # LLM spans: constrained decoding used
    posts_per_second: float | None = None
    load_seconds: float | None = None
    shards: int | None = None  # --engine ray: shard files scored
    outputs: list[str] | None = None  # --engine ray: the files written
    scores: dict[str, Any] | None = None  # labelled input: the official scores (``to_dict()``)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PredictionResult:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:  # a predictor reporting a fact no field names: a bug to fix here, not to drop silently
            raise TypeError(f"unknown prediction result keys: {', '.join(unknown)}")
        return cls(**dict(data))

    def _reported(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) not in (None, [])
        }

    def __getitem__(self, key: str) -> Any:
        return self._reported()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._reported())

    def __len__(self) -> int:
        return len(self._reported())
