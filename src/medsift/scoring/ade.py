"""Task 1 (ADE classification) scores, equal to the official scorer's numbers on a valid submission.

The official scorer computes, with scikit-learn's ``precision_recall_fscore_support(average="binary")``:

- per language, the positive-class precision, recall and F1 (``F1-<lang>``);
- overall, the positive-class F1 POOLED over the rows of every language whose code does not end in
  ``_cadec`` (micro over rows, not a mean over languages).

CADEC rows (ids containing ``cadec``) are scored as their own language ``<lang>_cadec`` and left out of
the overall. Papers also report the two-class macro F1 (mean of the class-0 and class-1 F1), which is
returned here under the explicit name ``macro_f1_two_class``.

Zero division: the official scorer leaves scikit-learn's default ``zero_division="warn"``, which sets an
undefined precision, recall or F1 to 0.0 (and warns). So a language with no gold positives and no
predicted positives scores F1 0.0, not 1.0. We pass ``zero_division=0`` explicitly: same numbers, no
warning.

Unlike the official scorer, which only prints warnings and silently drops missing ids, a submission with
missing, extra or duplicate ids, or labels outside {0, 1}, is refused with a :class:`MedsiftError`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd
from sklearn.metrics import f1_score, precision_recall_fscore_support

from medsift.errors import MedsiftError

CADEC_SUFFIX = "_cadec"
_SHOW = 5  # how many offending ids an error message names before "and N more"


@dataclass(frozen=True)
class LanguageScore:
    """Positive-class scores over one group of rows (a language, or the pooled overall)."""

    f1: float
    precision: float
    recall: float
    macro_f1_two_class: float
    support: int  # rows scored
    positives: int  # gold positives
    predicted_positives: int


@dataclass(frozen=True)
class AdeScores:
    """Official Task 1 scores.

    ``f1``/``precision``/``recall`` are the positive-class scores pooled over all non-CADEC rows (the
    official ``F1``); ``macro_f1_two_class`` is the mean of class-0 and class-1 F1 over the same rows.
    ``per_language`` holds every language, CADEC groups included as ``<lang>_cadec``.
    """

    f1: float
    precision: float
    recall: float
    macro_f1_two_class: float
    support: int
    positives: int
    predicted_positives: int
    per_language: dict[str, LanguageScore] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict: overall fields plus ``per_language`` and ``overall_excludes``."""
        out = asdict(self)
        out["overall_excludes"] = sorted(k for k in self.per_language if k.endswith(CADEC_SUFFIX))
        return out


def _name_ids(ids: list) -> str:
    shown = ", ".join(str(i) for i in ids[:_SHOW])
    more = f" and {len(ids) - _SHOW} more" if len(ids) > _SHOW else ""
    return f"{shown}{more} ({len(ids)} in all)"


def _duplicates(ids: pd.Series) -> list:
    return list(dict.fromkeys(ids[ids.duplicated()].tolist()))


def _as_binary(values: pd.Series, ids: pd.Series, what: str) -> pd.Series:
    """Coerce 0/1 labels given as ints, floats (``1.0``) or numeric strings; refuse anything else."""
    numeric = pd.to_numeric(values, errors="coerce")
    bad = ~numeric.isin([0, 1])
    if bad.any():
        examples = [f"{i}={v!r}" for i, v in zip(ids[bad], values[bad], strict=True)]
        raise MedsiftError(f"{what} outside {{0, 1}} for ids {_name_ids(examples)}")
    return numeric.astype(int)


def _check_ids(gold: pd.DataFrame, pred: pd.DataFrame) -> None:
    if dup := _duplicates(gold["id"]):
        raise MedsiftError(f"gold file repeats ids {_name_ids(dup)}")
    if dup := _duplicates(pred["id"]):
        raise MedsiftError(f"prediction repeats ids {_name_ids(dup)}")
    gold_ids, pred_ids = set(gold["id"]), set(pred["id"])
    if missing := [i for i in gold["id"] if i not in pred_ids]:
        raise MedsiftError(f"prediction is missing ids {_name_ids(missing)}")
    if extra := [i for i in pred["id"] if i not in gold_ids]:
        raise MedsiftError(f"prediction has ids that are not in the gold file: {_name_ids(extra)}")


def score_group(y_true, y_pred) -> LanguageScore:
    """Positive-class P/R/F1 and two-class macro F1 of one group of rows (lists or arrays of 0/1).

    An empty group (e.g. a gold file of CADEC rows only, so nothing is pooled) scores 0.0 throughout.
    """
    if len(y_true) == 0:
        return LanguageScore(0.0, 0.0, 0.0, 0.0, 0, 0, 0)
    p, r, f, _ = precision_recall_fscore_support(
        y_true, y_pred, average="binary", pos_label=1, zero_division=0
    )
    macro = f1_score(y_true, y_pred, average="macro", labels=[0, 1], zero_division=0)
    return LanguageScore(
        f1=float(f),
        precision=float(p),
        recall=float(r),
        macro_f1_two_class=float(macro),
        support=len(y_true),
        positives=int(sum(y_true)),
        predicted_positives=int(sum(y_pred)),
    )


def scoring_language(row_id: str, language: str) -> str:
    """The language a row is scored under: ``<lang>_cadec`` for CADEC ids, else its own language."""
    language = str(language)
    if "cadec" in str(row_id).lower() and not language.endswith(CADEC_SUFFIX):
        return f"{language}{CADEC_SUFFIX}"
    return language


def score_ade(gold: pd.DataFrame, pred: pd.DataFrame) -> AdeScores:
    """Score a Task 1 submission exactly as the official scorer does, after refusing a bad one.

    ``gold`` needs columns ``id, label, language``; ``pred`` needs ``id, predicted_label``. Ids are
    compared as strings. Raises :class:`MedsiftError` naming the offending ids for missing, extra or
    duplicate ids, unlabelled gold rows, or labels outside {0, 1}.
    """
    for frame, cols, what in (
        (gold, ("id", "label", "language"), "gold"),
        (pred, ("id", "predicted_label"), "prediction"),
    ):
        if absent := [c for c in cols if c not in frame.columns]:
            raise MedsiftError(f"{what} frame lacks column(s) {', '.join(absent)}")
    gold = gold.assign(id=gold["id"].astype(str)).reset_index(drop=True)
    pred = pred.assign(id=pred["id"].astype(str)).reset_index(drop=True)
    if len(gold) == 0:
        raise MedsiftError("gold file has no rows")
    _check_ids(gold, pred)
    y_true = _as_binary(gold["label"], gold["id"], "gold label")
    y_pred = _as_binary(pred["predicted_label"], pred["id"], "predicted_label")
    aligned = pd.DataFrame(
        {
            "lang": [scoring_language(i, lang) for i, lang in zip(gold["id"], gold["language"], strict=True)],
            "y_true": y_true.to_numpy(),
            "y_pred": pd.Series(y_pred.to_numpy(), index=pred["id"]).loc[gold["id"]].to_numpy(),
        }
    )
    per_language = {
        lang: score_group(rows["y_true"].tolist(), rows["y_pred"].tolist())
        for lang, rows in aligned.groupby("lang", sort=True)
    }
    pooled = aligned[~aligned["lang"].str.endswith(CADEC_SUFFIX)]
    overall = score_group(pooled["y_true"].tolist(), pooled["y_pred"].tolist())
    return AdeScores(**asdict(overall), per_language=per_language)
