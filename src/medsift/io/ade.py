"""Task 1 (``ade``) readers: official train/dev/test CSVs, users' own CSV/JSONL/Parquet, merges.

Every reader returns the same frame shape:
``id, text, label (Int64, <NA> when unlabelled), language, origin, type, split, source, uid``
followed by any extra columns of the input file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from medsift.errors import MedsiftError
from medsift.io._load import lines as _lines
from medsift.io._load import load_csv, load_header, read_text, refuse_nul_values, refuse_surrogates
from medsift.io.formats import ade_format_of

ADE_COLUMNS = ["id", "text", "label", "language", "origin", "type", "split", "source", "uid"]
# The columns of the official test file; a CSV that has them all is read as an official file.
OFFICIAL_TEST_COLUMNS = ("id", "text", "origin", "type", "language", "split")
_LABELS = {"0": 0, "1": 1, "0.0": 0, "1.0": 1}
_OPTIONAL_TEXT = ("language", "origin", "type", "split")
TOO_DEEP = "JSON nested too deeply to read (more levels of brackets than the parser allows)"


def parse_label(value: str, path: str | Path, row: int, *, column: str = "label") -> int:
    """Parse an ADE label cell: ``0``, ``1``, ``0.0`` or ``1.0`` (spaces allowed); anything else is an error."""
    label = _LABELS.get(str(value).strip())
    if label is None:
        shown = repr(value) if str(value).strip() else "empty"
        raise MedsiftError(
            f"{column} is {shown}; expected 0 or 1 (also written 0.0 or 1.0)", file=path, row=row
        )
    return label


def _use_labels(frame: pd.DataFrame, labelled: bool | None, path: Path) -> bool:
    """Decide whether the label column is read.

    ``None`` reads it when present, except when every cell is empty (a test file with an empty label
    column is unlabelled, not an error); a partly empty column is an error on the first empty row.
    """
    if labelled is False:
        return False
    if "label" not in frame.columns:
        if labelled:
            raise MedsiftError("labelled=True but the file has no 'label' column", file=path)
        return False
    return bool(labelled) or bool(frame["label"].str.strip().ne("").any())


def _labels(frame: pd.DataFrame, use: bool, path: Path) -> pd.Series:
    if not use:
        return pd.Series(pd.NA, index=frame.index, dtype="Int64")
    values = [parse_label(v, path, int(row)) for row, v in frame["label"].items()]
    return pd.Series(values, index=frame.index, dtype="Int64")


def count_blank(texts: pd.Series) -> int:
    """Posts that are empty or only whitespace. Official files hold some (a text of one space): they are
    valid rows, kept and predicted like any post (``predict`` says how many it saw), never refused."""
    return int(texts.astype(str).str.strip().eq("").sum())


def _check_ids(ids: pd.Series, path: Path, *, column: str = "id") -> None:
    empty = ids.str.strip().eq("")
    if empty.any():
        raise MedsiftError(f"{column} is missing; every row needs one", file=path, row=int(empty.idxmax()))
    first_row: dict[str, int] = {}
    for row, value in ids.items():
        if value in first_row:
            problem = f"duplicate {column} {value!r} (rows {first_row[value]} and {row}); ids must be unique within a file"
            raise MedsiftError(problem, file=path, row=int(row))
        first_row[value] = int(row)


def _assemble(frame: pd.DataFrame, labels: pd.Series, path: Path) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "id": frame["id"].astype(str),
            "text": frame["text"].astype(str),
            "label": labels,
            **{name: frame[name].astype(str) if name in frame.columns else "" for name in _OPTIONAL_TEXT},
            "source": str(path),
            "uid": frame["id"].astype(str),
        },
        index=frame.index,
    )
    extras = [name for name in frame.columns if name not in out.columns]
    out = pd.concat([out, frame[extras]], axis=1) if extras else out
    return out.reset_index(drop=True)


def read_ade(path: str | Path, *, labelled: bool | None = None) -> pd.DataFrame:
    """Read an official Task 1 CSV (``id,text,label,origin,type,language,split``; the test file has no label).

    ``labelled=True`` requires labels, ``False`` ignores them, ``None`` uses them when present.
    Only ``id`` and ``text`` are required; missing ``language/origin/type/split`` become ``""``.
    Errors (a missing or duplicate id, a label other than 0/1) name the file and the row; a blank post (empty
    or only whitespace, as official files hold) is a valid row.
    """
    path = Path(path)
    required = ["id", "text", "label"] if labelled else ["id", "text"]
    frame = load_csv(path, required, what="Task 1 (ade) CSV")
    _check_ids(frame["id"], path)
    return _assemble(frame, _labels(frame, _use_labels(frame, labelled, path), path), path)


def merge_uids(
    frames: Sequence[pd.DataFrame], paths: Sequence[str | Path], *, id_column: str = "id"
) -> list[str]:
    """uids for rows merged from several files.

    Rule: when every id is unique across all files, ``uid = id``. Otherwise every row gets
    ``"<file stem>:<id>"``; when two files share a stem, the stem is followed by ``#<k>`` (k = the
    file's 1-based position in ``paths``). ``id`` itself is never changed.
    """
    all_ids = [str(i) for frame in frames for i in frame[id_column]]
    if len(set(all_ids)) == len(all_ids):
        return all_ids
    stems = [Path(p).stem for p in paths]
    prefixes = [f"{stem}#{k}" if stems.count(stem) > 1 else stem for k, stem in enumerate(stems, start=1)]
    return [f"{prefix}:{i}" for prefix, frame in zip(prefixes, frames, strict=True) for i in frame[id_column]]


def read_ade_files(paths: Iterable[str | Path], *, labelled: bool | None = None) -> pd.DataFrame:
    """Read and concatenate several Task 1 files, keeping every row (see :func:`merge_uids` for ``uid``)."""
    paths = list(paths)
    if not paths:
        raise MedsiftError("no input files given")
    frames = [read_ade_any(p, labelled=labelled) for p in paths]
    merged = pd.concat(frames, ignore_index=True)
    merged["uid"] = merge_uids(frames, paths)
    merged["label"] = merged["label"].astype("Int64")
    return merged


def _json_records(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) pairs from a JSON-lines file, or from a JSON array of objects."""
    text = read_text(path)
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MedsiftError(f"invalid JSON: {exc.msg}", file=path, row=exc.lineno) from None
        except RecursionError:
            raise MedsiftError(TOO_DEEP, file=path) from None
        records = list(enumerate(items, start=1))
    else:
        records = []
        for number, line in enumerate(_lines(text), start=1):
            if not line.strip():
                continue
            try:
                records.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise MedsiftError(f"invalid JSON on this line: {exc.msg}", file=path, row=number) from None
            except RecursionError:
                raise MedsiftError(TOO_DEEP, file=path, row=number) from None
    if not records:
        raise MedsiftError(
            "file has no records; expected one JSON object per line with a 'text' field", file=path
        )
    for number, record in records:
        if not isinstance(record, dict):
            raise MedsiftError(
                f"expected a JSON object, found {type(record).__name__}", file=path, row=number
            )
        refuse_surrogates([*record, *record.values()], path, number, "the record")
    return records


def json_post(record: dict, path: Path, number: int) -> dict[str, str]:
    """The ``id, text, language, label`` cells (as str) of one JSON record, or the error naming its line."""
    if "text" not in record:
        raise MedsiftError(
            f"record has no 'text' field (fields: {', '.join(record) or 'none'})", file=path, row=number
        )
    if not isinstance(record["text"], str):
        raise MedsiftError(
            f"'text' must be a string, found {type(record['text']).__name__}", file=path, row=number
        )
    for key in ("id", "language"):  # a NUL escape: fine in a text, but no output file can hold an id
        if "\x00" in str(record.get(key, "")):
            raise MedsiftError(f"'{key}' contains a NUL character (\\u0000)", file=path, row=number)
    return {k: "" if record.get(k) is None else str(record[k]) for k in _JSON_FIELDS if k in record}


_JSON_FIELDS = ("id", "text", "language", "label")


def _frame_from_json(path: Path) -> pd.DataFrame:
    records = _json_records(path)
    rows = [json_post(record, path, number) for number, record in records]
    frame = pd.DataFrame(rows, dtype=str).fillna("")
    frame.index = pd.Index([number for number, _ in records])
    return frame


def _frame_from_parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a bad file
        raise MedsiftError(f"cannot read as Parquet: {exc}", file=path) from None
    if "text" not in frame.columns:
        raise MedsiftError(
            f"missing column text; columns found: {', '.join(map(str, frame.columns))}", file=path
        )
    if frame.empty:
        raise MedsiftError("file has no rows", file=path)
    frame = frame.astype(object).where(frame.notna(), "").astype(str)
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    refuse_nul_values(frame, path)  # as the CSV reader and the streaming reader do
    return frame


def read_texts(path: str | Path, *, labelled: bool | None = None) -> pd.DataFrame:
    """Read users' own posts: ``.csv``, ``.jsonl``/``.json`` (one object per line) or ``.parquet``.

    Only ``text`` is required; ``id`` defaults to ``row-<n>`` (n = data row, or line for JSON lines),
    ``language`` to ``""`` (unknown). An optional ``label`` is read like :func:`read_ade` reads it.
    """
    path = Path(path)
    fmt = ade_format_of(path)
    if fmt == "json":
        frame = _frame_from_json(path)
    elif fmt == "parquet":
        frame = _frame_from_parquet(path)
    else:
        frame = load_csv(path, ["text"], what="CSV of posts")
    if "id" not in frame.columns:
        frame["id"] = ""
    frame["id"] = [value if str(value).strip() else f"row-{row}" for row, value in frame["id"].items()]
    _check_ids(frame["id"], path)
    return _assemble(frame, _labels(frame, _use_labels(frame, labelled, path), path), path)


def read_ade_any(path: str | Path, *, labelled: bool | None = None) -> pd.DataFrame:
    """Read a Task 1 file if the CSV has the official columns, else read it as users' own posts."""
    path = Path(path)
    if ade_format_of(path) != "csv":
        return read_texts(path, labelled=labelled)
    header = load_header(path)
    if all(name in header for name in OFFICIAL_TEST_COLUMNS):
        return read_ade(path, labelled=labelled)
    return read_texts(path, labelled=labelled)
