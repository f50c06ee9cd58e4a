"""A tolerant parser for span answers: ``<Index> : <Token> : <Label>`` lines or ``None``.

Models write many things besides the format: extra spaces, brackets around the index, a missing token or
index field, indices past the end, a token that belongs to another index, repeated indices, labels without
their B-/I- prefix, chatter before and after. Every line either maps to one token or is dropped, and each
fix is counted in a :class:`RepairReport`, so the share of outputs that needed repair can be reported.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from medsift.llm.prompts import NONE_ANSWER, display_token

# index, then the rest; the rest is "token : label" (label after the LAST colon, so a ":" token survives)
_LINE = re.compile(r"^\s*[\[(<]?\s*(\d+)\s*[\])>]?\s*[:\-|.]\s*(.*?)\s*$")
_CANONICAL = re.compile(r"^\d+ : .* : \S+$")
_NEAR = 5  # how far from its index a token's text is looked for


@dataclass
class RepairReport:
    """Counts of every repair over one or more outputs."""

    outputs: int = 0
    outputs_repaired: int = 0
    counts: Counter = field(default_factory=Counter)

    def add(self, other: RepairReport) -> None:
        self.outputs += other.outputs
        self.outputs_repaired += other.outputs_repaired
        self.counts.update(other.counts)

    @property
    def repair_share(self) -> float:
        return self.outputs_repaired / self.outputs if self.outputs else 0.0

    def to_dict(self) -> dict:
        return {
            "outputs": self.outputs,
            "outputs_repaired": self.outputs_repaired,
            "repair_share": self.repair_share,
            "counts": dict(sorted(self.counts.items())),
        }


def _norm(text: str) -> str:
    return display_token(text).casefold()


def _match_label(raw: str, labels: Sequence[str], previous: str | None) -> tuple[str | None, str | None]:
    """(label, repair kind or None); None label means the line says 'outside' or is unusable."""
    text = raw.strip().strip("`'\"*.,;").strip()
    if text in labels:
        return text, None
    folded = {lab.casefold(): lab for lab in labels}
    if text.casefold() in folded:
        return folded[text.casefold()], "label_case"
    if text.casefold() in ("o", "outside", "none", "_"):
        return None, "label_outside"
    # A bare type ("ClinicalImpacts", "clinical"): continue the previous token's span or open one.
    for lab in labels:
        kind = lab.split("-", 1)[-1]
        if text.casefold() in (kind.casefold(), kind.casefold().removesuffix("impacts")):
            prefix = "I-" if previous is not None and previous.split("-", 1)[-1] == kind else "B-"
            chosen = prefix + kind
            return (chosen if chosen in labels else lab), "label_prefix"
    return None, "label_unknown"


def _split_fields(line: str) -> tuple[int | None, str | None, str] | None:
    """(index, token text or None, label text), or None for a line that is not an entry."""
    match = _LINE.match(line)
    if match:
        index, rest = int(match.group(1)), match.group(2)
        if ":" in rest:
            token, label = rest.rsplit(":", 1)
            return index, token.strip(), label
        return index, None, rest
    parts = [p.strip() for p in line.split(":")]
    if len(parts) >= 2 and parts[0] and not parts[0].isdigit():
        return None, ":".join(parts[:-1]), parts[-1]
    return None


def _locate(
    index: int | None, token: str | None, tokens: Sequence[str], used: set[int], after: int
) -> tuple[int | None, str | None]:
    """The token position a line means, and the repair made to find it (None when it was as written)."""
    n = len(tokens)
    if index is None:
        if token is None:
            return None, "unparsable_line"
        # the first free occurrence after the last entry, else anywhere: lines usually come in order
        for i in [*range(after + 1, n), *range(after + 1)]:
            if i not in used and _norm(tokens[i]) == _norm(token):
                return i, "index_recovered"
        return None, "free_text"
    if token is None:
        return (index, "token_missing") if index < n else (None, "index_out_of_range")
    if index < n and _norm(tokens[index]) == _norm(token):
        return index, None if display_token(tokens[index]) == token else "token_spacing"
    near = [
        i for i in range(max(0, index - _NEAR), min(n, index + _NEAR + 1)) if _norm(tokens[i]) == _norm(token)
    ]
    free = [i for i in near if i not in used]
    if free:
        return min(free, key=lambda i: abs(i - index)), "token_realigned"
    if index >= n:
        return None, "index_out_of_range"
    return index, "token_mismatch"


def parse_spans(text: str, tokens: Sequence[str], labels: Sequence[str]) -> tuple[list[str], RepairReport]:
    """One BIO tag per token from a model's answer, and the repairs needed to get there."""
    report = RepairReport(outputs=1)
    counts = report.counts
    tags = ["O"] * len(tokens)
    stripped = text.strip()
    if stripped == NONE_ANSWER:
        return tags, report
    if not stripped:
        counts["empty_output"] += 1
    last, used = -1, set()
    for line in stripped.splitlines():
        if not line.strip() or line.strip() == NONE_ANSWER:
            if line.strip() == NONE_ANSWER:
                counts["none_with_entries"] += 1
            continue
        fields = _split_fields(line)
        if fields is None:
            counts["free_text"] += 1
            continue
        if not _CANONICAL.match(line) or line != line.strip():
            counts["format"] += 1
        index, token, raw_label = fields
        position, repair = _locate(index, token, tokens, used, last)
        if repair:
            counts[repair] += 1
        if position is None:
            continue
        if position in used:
            counts["duplicate_index"] += 1
            continue
        if position < last:
            counts["out_of_order"] += 1
        previous = tags[position - 1] if position > 0 and tags[position - 1] != "O" else None
        label, label_repair = _match_label(raw_label, labels, previous)
        if label_repair:
            counts[label_repair] += 1
        used.add(position)
        last = max(last, position)
        if label is not None:
            tags[position] = label
    fixed = repair_bio(tags)
    counts["bio_fixed"] += sum(a != b for a, b in zip(tags, fixed, strict=True))
    report.counts = Counter({k: v for k, v in counts.items() if v})
    report.outputs_repaired = int(bool(report.counts))
    return fixed, report


def repair_bio(tags: Sequence[str]) -> list[str]:
    """An ``I-X`` that does not continue an ``X`` span becomes ``B-X`` (what the scorers would read anyway)."""
    out = list(tags)
    for i, tag in enumerate(out):
        if tag.startswith("I-") and (i == 0 or out[i - 1] == "O" or out[i - 1][2:] != tag[2:]):
            out[i] = "B-" + tag[2:]
    return out
