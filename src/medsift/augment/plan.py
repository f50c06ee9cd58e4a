"""Which rows to translate into which language, and the guard against the paper's Clever Hans failure.

The Gladiators paper translated only positive posts into Farsi (a script no training row had): the model learned
"this script = positive" and called 99.9 % of Farsi posts positive, which the dev set (no Farsi) could not show.
The rows added for a language must therefore not be mostly one class. :func:`balance_findings` measures, per
target language, the share of the majority class among the rows added for it; ``medsift augment`` refuses a plan
where that share is above the limit unless the user overrides it explicitly, and then warns loudly.

Modes:

- ``positives``: only the label-1 rows of the source languages (the paper's EN/RU positives to DE/FR; always
  one class, so it needs the explicit override);
- ``balanced``: every positive and ``negatives_per_positive`` times as many negatives, drawn at random (seeded);
- ``all``: every row of the source languages, with their own class balance.

Everything here is pure pandas: rows in, the plan out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from medsift.errors import MedsiftError

MODES = ("positives", "balanced", "all")
PLAN_COLUMNS = ["key", "source_id", "source_language", "target_language", "text", "label", "origin", "type"]


def plan_augmentation(
    rows: pd.DataFrame,
    *,
    targets: list[str],
    sources: list[str] | None = None,
    mode: str = "balanced",
    negatives_per_positive: float = 1.0,
    max_rows_per_target: int | None = None,
    seed: int = 13,
) -> pd.DataFrame:
    """One row per (source post, target language) to translate, in a stable order.

    ``rows`` is a labelled Task 1 frame (``id, text, label, language``, ids unique). ``sources``: the languages
    to translate from (default: every language in the file that is not a target). A post is never translated into
    its own language. ``max_rows_per_target`` caps each target's rows, keeping the plan's class shares.
    Columns: :data:`PLAN_COLUMNS` (``key`` = ``<target>:<source id>``, unique: what resuming skips on).
    """
    if mode not in MODES:
        raise MedsiftError(f"unknown augmentation mode {mode!r}; expected {' | '.join(MODES)}")
    if not targets:
        raise MedsiftError("give at least one target language")
    if negatives_per_positive < 0:
        raise MedsiftError(f"negatives per positive must be >= 0, got {negatives_per_positive}")
    if rows["id"].astype(str).duplicated().any():
        raise MedsiftError(
            "ids repeat in the input: augment one official file at a time (ids are unique there)"
        )
    languages = rows["language"].astype(str)
    sources = sorted(set(sources) if sources else set(languages) - set(targets))
    pool = rows[languages.isin(sources)]
    if pool.empty:
        raise MedsiftError(
            f"no row in the source languages {', '.join(sources) or '(none)'}; the file has "
            f"{', '.join(sorted(set(languages)))}"
        )
    rng = np.random.default_rng(seed)
    parts = []
    for target in targets:
        candidates = pool[pool["language"].astype(str) != target]
        chosen = _choose(candidates, mode, negatives_per_positive, rng)
        if max_rows_per_target is not None and len(chosen) > max_rows_per_target:
            chosen = _cap(chosen, max_rows_per_target, rng)
        parts.append(
            pd.DataFrame(
                {
                    "key": [f"{target}:{i}" for i in chosen["id"].astype(str)],
                    "source_id": chosen["id"].astype(str).to_numpy(),
                    "source_language": chosen["language"].astype(str).to_numpy(),
                    "target_language": target,
                    "text": chosen["text"].astype(str).to_numpy(),
                    "label": chosen["label"].astype(int).to_numpy(),
                    "origin": chosen.get("origin", pd.Series("", index=chosen.index)).astype(str).to_numpy(),
                    "type": chosen.get("type", pd.Series("", index=chosen.index)).astype(str).to_numpy(),
                }
            )
        )
    plan = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=PLAN_COLUMNS)
    if plan.empty:
        raise MedsiftError(f"nothing to translate: mode {mode!r} selects no row of {', '.join(sources)}")
    return plan[PLAN_COLUMNS]


def _choose(candidates: pd.DataFrame, mode: str, ratio: float, rng: np.random.Generator) -> pd.DataFrame:
    labels = candidates["label"].astype(int)
    positives = candidates[labels == 1]
    if mode == "positives":
        return positives
    if mode == "all":
        return candidates
    negatives = candidates[labels == 0]
    wanted = min(len(negatives), round(len(positives) * ratio))
    picked = (
        negatives.iloc[np.sort(rng.choice(len(negatives), size=wanted, replace=False))]
        if wanted
        else negatives.iloc[:0]
    )
    return pd.concat([positives, picked]).sort_index()


def _cap(chosen: pd.DataFrame, limit: int, rng: np.random.Generator) -> pd.DataFrame:
    """``limit`` rows, each class in proportion (at least one of a class that has rows)."""
    labels = chosen["label"].astype(int)
    keep = []
    for label in (1, 0):
        idx = np.flatnonzero(labels.to_numpy() == label)
        share = round(limit * len(idx) / len(chosen))
        share = min(len(idx), max(share, 1 if len(idx) else 0))
        keep.extend(rng.choice(idx, size=share, replace=False).tolist())
    return chosen.iloc[np.sort(np.asarray(keep[:limit], dtype=int))]


@dataclass
class GuardFinding:
    """The class balance of the rows added for one target language."""

    language: str
    rows: int
    positives: int
    majority_share: float  # share of the majority class among the added rows
    majority: str  # "positive" or "negative"
    too_one_sided: bool

    def line(self) -> str:
        return (
            f"{self.language}: {self.rows} rows added, {self.positives} positive; "
            f"{self.majority_share:.0%} {self.majority}"
        )


def balance_findings(plan: pd.DataFrame, *, max_share: float = 0.8) -> list[GuardFinding]:
    """Per target language, how one-sided the added rows are; ``too_one_sided`` when the majority class's share
    is above ``max_share`` (a model can then learn "this language = that class": the Clever Hans failure)."""
    if not 0.5 <= max_share <= 1:
        raise MedsiftError(f"the class-share limit must lie in [0.5, 1], got {max_share}")
    findings = []
    for target, group in plan.groupby("target_language", sort=True):
        n, pos = len(group), int(group["label"].astype(int).sum())
        share = max(pos, n - pos) / n
        findings.append(
            GuardFinding(
                language=str(target),
                rows=n,
                positives=pos,
                majority_share=share,
                majority="positive" if pos * 2 >= n else "negative",
                too_one_sided=share > max_share + 1e-12,
            )
        )
    return findings
