"""Task 1 output files: the official submission (``id,predicted_label``) and probability files.

Writers validate before writing (and write atomically) so that a file medsift wrote is always one its
readers accept; readers refuse what the official scorer would only warn about.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from numbers import Number
from pathlib import Path

import pandas as pd

from medsift.errors import MedsiftError
from medsift.io._load import check_writable, load_csv, write_csv_rows
from medsift.io.ade import parse_label
from medsift.io.atomic import atomic_write

SUBMISSION_COLUMNS = ("id", "predicted_label")
PROBABILITY_COLUMNS = ("id", "language", "p_ade")
MEMBER_PREFIX = "p_ade__"
# Optional row key of a run's own val/calib files: unique across merged training files, whose ids may repeat
# (the official files do). A file with a ``uid`` column is keyed by it; without one, ``id`` must be unique.
UID_COLUMN = "uid"


def _as_binary(value: object, path: Path, row: int, column: str = "predicted_label") -> int:
    """0 or 1 from an int, bool, integral float or the strings read_ade accepts; anything else is an error."""
    if isinstance(value, str):
        return parse_label(value, path, row, column=column)
    if isinstance(value, Number) and not isinstance(value, complex):
        number = float(value)  # type: ignore[arg-type]
        if number in (0.0, 1.0):
            return int(number)
    raise MedsiftError(f"{column} is {value!r}; expected 0 or 1", file=path, row=row)


def _check_unique(ids: Sequence[str], path: Path, *, column: str = "id") -> None:
    first: dict[str, int] = {}
    for row, value in enumerate(ids, start=1):
        if not str(value).strip():
            raise MedsiftError(f"{column} is missing", file=path, row=row)
        if value in first:
            raise MedsiftError(
                f"duplicate {column} {value!r} (rows {first[value]} and {row})", file=path, row=row
            )
        first[value] = row


def _check_expected(ids: Sequence[str], expected: Iterable[str], path: Path) -> None:
    expected = [str(i) for i in expected]
    missing = sorted(set(expected) - set(ids))
    extra = sorted(set(ids) - set(expected))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} expected id(s) missing (e.g. {missing[0]!r})")
        if extra:
            parts.append(f"{len(extra)} unexpected id(s) (e.g. {extra[0]!r})")
        raise MedsiftError("; ".join(parts) + "; a submission needs exactly one row per test id", file=path)


def write_ade_submission(
    path: str | Path,
    ids: Sequence[object],
    labels: Sequence[object],
    *,
    expected_ids: Iterable[object] | None = None,
) -> None:
    """Write ``id,predicted_label`` (integer 0/1), one row per id, refusing duplicates and other labels.

    ``expected_ids`` (e.g. the test file's ids) makes missing or unexpected ids an error too.
    """
    path = Path(path)
    ids = [str(i) for i in ids]
    labels = list(labels)
    if len(ids) != len(labels):
        raise MedsiftError(f"{len(ids)} ids but {len(labels)} labels; need one label per id", file=path)
    if not ids:
        raise MedsiftError("nothing to write: no ids", file=path)
    _check_unique(ids, path)
    check_writable(ids, path, "id")
    values = [_as_binary(v, path, row) for row, v in enumerate(labels, start=1)]
    if expected_ids is not None:
        _check_expected(ids, [str(i) for i in expected_ids], path)
    with atomic_write(path) as fh:
        write_csv_rows(fh, SUBMISSION_COLUMNS, zip(ids, values, strict=True))


def read_ade_submission(path: str | Path, *, expected_ids: Iterable[object] | None = None) -> pd.DataFrame:
    """Read and validate a Task 1 submission; returns ``id, predicted_label`` (int64)."""
    path = Path(path)
    frame = load_csv(path, SUBMISSION_COLUMNS, what="Task 1 submission (id,predicted_label)")
    ids = frame["id"].astype(str).tolist()
    _check_unique(ids, path)
    values = [_as_binary(v, path, int(row)) for row, v in frame["predicted_label"].items()]
    if expected_ids is not None:
        _check_expected(ids, [str(i) for i in expected_ids], path)
    return pd.DataFrame({"id": ids, "predicted_label": pd.Series(values, dtype="int64")})


def _probability(value: object, path: Path, row: int, column: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MedsiftError(
            f"{column} is {value!r}; expected a number between 0 and 1", file=path, row=row
        ) from None
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise MedsiftError(
            f"{column} is {value!r}; probabilities must be finite and in [0, 1]", file=path, row=row
        )
    return number


def _probability_columns(columns: Iterable[str]) -> list[str]:
    return ["p_ade"] + [
        c for c in columns if str(c).startswith(MEMBER_PREFIX) and len(str(c)) > len(MEMBER_PREFIX)
    ]


def _optional_label(value: object, path: Path, row: int) -> object:
    if (
        value is None
        or value is pd.NA
        or (isinstance(value, float) and math.isnan(value))
        or str(value).strip() == ""
    ):
        return pd.NA
    return _as_binary(value, path, row, "label")


def _check_row_keys(ids: Sequence[str], uids: Sequence[str] | None, path: Path) -> None:
    """A probability file's rows are keyed by ``uid`` when it has one (ids may then repeat), else by ``id``."""
    if uids is None:
        _check_unique(ids, path)
        return
    _check_unique(uids, path, column=UID_COLUMN)
    for row, value in enumerate(ids, start=1):
        if not str(value).strip():
            raise MedsiftError("id is missing", file=path, row=row)


def write_probabilities(path: str | Path, frame: pd.DataFrame) -> None:
    """Write a probability file: ``id,language,p_ade``, then ``label``, ``uid`` and ``p_ade__<name>`` if present.

    ``id`` must be unique unless the frame has a ``uid`` column (a run's own val/calib rows merged from
    files whose ids repeat): then ``uid`` must be unique and ``id`` may repeat. Probabilities are written
    with full precision so that reading them back gives the same floats. Per-post member features
    (``feat__<name>``: finite numbers, e.g. a GLiNER scorer's entity counts) come last. Other columns are not
    written.
    """
    path = Path(path)
    missing = [c for c in PROBABILITY_COLUMNS if c not in frame.columns]
    if missing:
        raise MedsiftError(
            f"cannot write probabilities: frame lacks column(s) {', '.join(missing)}", file=path
        )
    if frame.empty:
        raise MedsiftError("nothing to write: the frame has no rows", file=path)
    ids = [str(i) for i in frame["id"]]
    uids = [str(u) for u in frame[UID_COLUMN]] if UID_COLUMN in frame.columns else None
    _check_row_keys(ids, uids, path)
    check_writable(ids, path, "id")
    check_writable(uids or [], path, UID_COLUMN)
    check_writable(frame["language"].tolist(), path, "language")
    prob_cols = _probability_columns(frame.columns)
    columns = [
        "id",
        "language",
        *prob_cols[:1],
        *(["label"] if "label" in frame.columns else []),
        *([UID_COLUMN] if UID_COLUMN in frame.columns else []),
        *prob_cols[1:],
        *_feature_columns(frame.columns),
    ]
    rows = []
    for row, record in enumerate(frame[columns].itertuples(index=False, name=None), start=1):
        cells = dict(zip(columns, record, strict=True))
        out = [ids[row - 1], "" if pd.isna(cells["language"]) else str(cells["language"])]
        for column in columns[2:]:
            if column == "label":
                label = _optional_label(cells[column], path, row)
                out.append("" if label is pd.NA else str(label))
            elif column == UID_COLUMN:
                out.append(str(cells[column]))
            elif column.startswith(FEATURE_PREFIX):
                out.append(repr(_feature(cells[column], path, row, column)))
            else:
                out.append(repr(_probability(cells[column], path, row, column)))
        rows.append(out)
    with atomic_write(path) as fh:
        write_csv_rows(fh, columns, rows)


def read_probabilities(path: str | Path) -> pd.DataFrame:
    """Read a probability file; returns ``id, language, p_ade[, label (Int64)][, uid][, p_ade__<name>...]``.

    ``id`` must be unique, unless the file has a ``uid`` column: then ``uid`` must be (see
    :func:`write_probabilities`).
    """
    path = Path(path)
    frame = load_csv(path, PROBABILITY_COLUMNS, what="probability file (id,language,p_ade)")
    uids = frame[UID_COLUMN].astype(str).tolist() if UID_COLUMN in frame.columns else None
    _check_row_keys(frame["id"].astype(str).tolist(), uids, path)
    prob_cols = _probability_columns(frame.columns)
    out = pd.DataFrame({"id": frame["id"].to_numpy(), "language": frame["language"].str.strip().to_numpy()})
    out["p_ade"] = [_probability(v, path, int(r), "p_ade") for r, v in frame["p_ade"].items()]
    if "label" in frame.columns:
        labels = [_optional_label(v, path, int(r)) for r, v in frame["label"].items()]
        out["label"] = pd.array(labels, dtype="Int64")
    if UID_COLUMN in frame.columns:
        out[UID_COLUMN] = frame[UID_COLUMN].to_numpy()
    for column in prob_cols[1:]:
        out[column] = [_probability(v, path, int(r), column) for r, v in frame[column].items()]
    for column in _feature_columns(frame.columns):
        out[column] = [_feature(v, path, int(r), column) for r, v in frame[column].items()]
    return out


FEATURE_PREFIX = "feat__"  # per-post member features (medsift.decision.stacking)


def _feature_columns(columns) -> list[str]:
    return [str(c) for c in columns if str(c).startswith(FEATURE_PREFIX)]


def _feature(value, path: Path, row: int, column: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not math.isfinite(number):
        raise MedsiftError(f"{column} is {value!r}; expected a finite number", file=path, row=row)
    return number
