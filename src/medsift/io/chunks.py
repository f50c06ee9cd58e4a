"""Chunked readers for files larger than memory, with the whole-file readers' rules and row numbers.

- :func:`csv_chunks`: any CSV, as frames of strings indexed by the 1-based data row, field counts, UTF-8 and
  parse errors named by row exactly as :func:`medsift.io.load_csv` names them;
- :func:`read_chunks`: ADE posts (CSV, JSON lines, JSON arrays, Parquet) in ``medsift.io.read_ade_any``'s
  frame shape, ids unique across chunks too;
- plain-text posts are read line by line by :func:`medsift.io._load.iter_posts` (behind ``read_posts``).

Task 7 files are read in chunks by :func:`medsift.io.impacts_chunks.read_impact_chunks`, built on these.
Where a file holds several problems, a chunked reader names the first one it meets in file order, which
may not be the one the whole-file reader (which checks bytes, then fields, then cells) names first.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from medsift.errors import MedsiftError
from medsift.io._load import check_columns, refuse_nul_values, refuse_surrogates
from medsift.io.ade import (
    OFFICIAL_TEST_COLUMNS,
    TOO_DEEP,
    _assemble,
    _check_ids,
    _labels,
    _use_labels,
    json_post,
)
from medsift.io.formats import ade_format_of


def csv_chunks(
    path: Path,
    chunk_rows: int,
    check_header: Callable[[list[str]], None],
    *,
    what: str = "CSV",
    load_csv_rules: bool = False,
) -> Iterator[pd.DataFrame]:
    """Frames of strings indexed by the 1-based data row, ``chunk_rows`` rows at most; nothing if no rows.

    ``check_header`` gets the stripped column names first (and raises to refuse them). Blank lines are
    skipped; a row whose field count differs from the header's is an error naming it. ``load_csv_rules``
    parses as :func:`medsift.io.load_csv` does, messages included: only ``\\n`` (or CRLF) ends a line, so
    a lone carriage return outside quotes is an error (the ADE stream, without it, reads it as a line end).
    """
    try:
        fh = open(path, encoding="utf-8-sig", newline="\n" if load_csv_rules else "")  # noqa: SIM115
    except FileNotFoundError:
        raise MedsiftError("file not found", file=path) from None
    except IsADirectoryError:
        raise MedsiftError("is a folder, expected a file", file=path) from None
    row = 0
    header: list[str] | None = None
    hint = "; check commas and quoting" if load_csv_rules else ""
    try:
        reader = csv.reader(fh)
        header = [name.strip() for name in next(reader, [])]
        if not header and not load_csv_rules:
            raise MedsiftError(f"file is empty; expected a {what} with a header line", file=path)
        check_header(header)
        records: list[list[str]] = []
        for record in reader:
            if not record:
                continue
            row += 1
            if len(record) != len(header):
                relation = "fewer" if len(record) < len(header) else "more"
                raise MedsiftError(
                    f"row has {len(record)} fields, {relation} than the {len(header)} columns of the header"
                    + hint,
                    file=path,
                    row=row,
                )
            records.append(record)
            if len(records) == chunk_rows:
                yield pd.DataFrame(records, columns=header, index=range(row - len(records) + 1, row + 1))
                records = []
        if records:
            yield pd.DataFrame(records, columns=header, index=range(row - len(records) + 1, row + 1))
    except UnicodeDecodeError:
        _raise_invalid_utf8(path)
    except csv.Error as exc:
        if header is None and load_csv_rules:
            raise MedsiftError(f"cannot parse the header as CSV: {exc}", file=path) from None
        raise MedsiftError(f"cannot parse as CSV: {exc}", file=path, row=row + 1) from None
    finally:
        fh.close()


def _raise_invalid_utf8(path: Path) -> None:
    """Name the exact data row of the first invalid byte, as the whole-file readers do.

    The text reader decodes ahead of the CSV parser, so its row counter cannot say where the byte is; find
    the first invalid byte, then let medsift.io decode the prefix up to it.
    """
    from medsift.io._load import _decode

    end = _first_invalid_utf8_end(path)
    if end is not None:
        with open(path, "rb") as fh:
            _decode(fh.read(end), path, csv_rows=True)  # raises MedsiftError with file and row
    raise MedsiftError("invalid UTF-8; save the file as UTF-8", file=path)


def _first_invalid_utf8_end(path: Path, block: int = 1 << 20) -> int | None:
    """The byte offset just past the first invalid UTF-8 byte, or ``None`` for valid UTF-8 (block by block)."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return offset + exc.end
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:  # the file ends inside a character
            return offset
    return None


def _first_nul(path: Path, block: int = 1 << 20) -> int | None:
    offset = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            if (pos := chunk.find(b"\x00")) >= 0:
                return offset + pos
            offset += len(chunk)
    return None


def raise_file_problem(path: Path, check_header: Callable[[list[str]], None], *, what: str = "CSV") -> None:
    """Raise the error :func:`medsift.io.load_csv` raises before it reads any cell, if the file has one.

    ``load_csv`` checks the whole file's bytes (UTF-8, then NUL), then the header, then every row's field
    count, and only then do readers check cells; a stream meets problems in file order instead. Called when
    a stream has found a problem, so that it names the one the whole-file reader names (reading the file
    again, but only on that path). Returns when there is none.
    """
    from medsift.io._load import _decode, _refuse_nul

    if _first_invalid_utf8_end(path) is not None:
        _raise_invalid_utf8(path)
    if _blank(path):
        raise MedsiftError(f"file is empty; expected a {what} with a header line", file=path)
    nul = _first_nul(path)
    if nul is not None:
        with open(path, "rb") as fh:
            _refuse_nul(_decode(fh.read(nul + 1), path, csv_rows=True), path, csv_rows=True)  # raises
    for _ in csv_chunks(path, 1 << 14, check_header, what=what, load_csv_rules=True):  # header, fields
        pass


def _blank(path: Path, block: int = 1 << 20) -> bool:
    """Whether a (valid UTF-8) file holds only whitespace, read block by block."""
    with open(path, encoding="utf-8-sig") as fh:
        while chunk := fh.read(block):
            if chunk.strip():
                return False
    return True


def _ade_csv_chunks(path: Path, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, bool]]:
    """(frame, official?) per chunk: a CSV with every official Task 1 column is read as an official file."""
    official = False

    def check(header: list[str]) -> None:
        nonlocal official
        official = all(name in header for name in OFFICIAL_TEST_COLUMNS)
        check_columns(header, ["id", "text"] if official else ["text"], path, what="CSV of posts")

    for frame in csv_chunks(path, chunk_rows, check):
        yield frame, official


def _json_array_chunks(path: Path, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, bool]]:
    # a JSON array cannot be read line by line; medsift.io reads it whole (and names bad records)
    from medsift.io.ade import _frame_from_json

    frame = _frame_from_json(path)
    for start in range(0, len(frame), chunk_rows):
        yield frame.iloc[start : start + chunk_rows].copy(), False


def _starts_with_bracket(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            return fh.read(4096).lstrip().startswith("[")
    except FileNotFoundError:
        raise MedsiftError("file not found", file=path) from None
    except IsADirectoryError:
        raise MedsiftError("is a folder, expected a file", file=path) from None


def _json_chunks(path: Path, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, bool]]:
    if _starts_with_bracket(path):
        yield from _json_array_chunks(path, chunk_rows)
        return
    rows: list[dict[str, str]] = []
    numbers: list[int] = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise MedsiftError(
                        f"invalid JSON on this line: {exc.msg}", file=path, row=number
                    ) from None
                except RecursionError:
                    raise MedsiftError(TOO_DEEP, file=path, row=number) from None
                if not isinstance(record, dict):
                    raise MedsiftError(
                        f"expected a JSON object, found {type(record).__name__}", file=path, row=number
                    )
                refuse_surrogates([*record, *record.values()], path, number, "the record")
                rows.append(json_post(record, path, number))  # read_texts' checks and messages
                numbers.append(number)
                if len(rows) == chunk_rows:
                    yield pd.DataFrame(rows, index=numbers, dtype=str).fillna(""), False
                    rows, numbers = [], []
    except FileNotFoundError:
        raise MedsiftError("file not found", file=path) from None
    except UnicodeDecodeError as exc:
        raise MedsiftError(f"invalid UTF-8: {exc.reason}; save the file as UTF-8", file=path) from None
    if rows:
        yield pd.DataFrame(rows, index=numbers, dtype=str).fillna(""), False


def open_parquet(path: Path):
    """A ``pyarrow.parquet.ParquetFile``, or the error naming the file."""
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except FileNotFoundError:
        raise MedsiftError("file not found", file=path) from None
    except Exception as exc:  # pyarrow raises many types for a bad file
        raise MedsiftError(f"cannot read as Parquet: {exc}", file=path) from None


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, bool]]:
    parquet = open_parquet(path)
    if "text" not in parquet.schema_arrow.names:
        raise MedsiftError(
            f"missing column text; columns found: {', '.join(parquet.schema_arrow.names)}", file=path
        )
    start = 1
    for batch in parquet.iter_batches(batch_size=chunk_rows):
        frame = batch.to_pandas()
        frame = frame.astype(object).where(frame.notna(), "").astype(str)
        frame.index = pd.RangeIndex(start, start + len(frame))
        start += len(frame)
        yield frame, False


def count_rows(path: str | Path) -> int | None:
    """How many rows :func:`read_chunks` will yield, for a progress bar's total and ETA (None: unknown).

    One quick pass: CSV records (quoted line breaks counted right), non-blank JSON lines, Parquet metadata.
    Any problem returns None: the reader itself names it.
    """
    path = Path(path)
    fmt = ade_format_of(path)
    try:
        if fmt == "parquet":
            return int(open_parquet(path).metadata.num_rows)
        if fmt == "json":
            if _starts_with_bracket(path):
                return None
            with open(path, "rb") as fh:
                return sum(1 for line in fh if line.strip())
        with open(path, encoding="utf-8-sig", newline="") as fh:
            return max(sum(1 for record in csv.reader(fh) if record) - 1, 0)
    except (OSError, UnicodeDecodeError, csv.Error, MedsiftError):
        return None


def read_chunks(path: str | Path, chunk_rows: int = 4096) -> Iterator[pd.DataFrame]:
    """ADE frames (``medsift.io`` shape) of at most ``chunk_rows`` rows, validated like ``read_ade_any``."""
    for _, frame in numbered_chunks(path, chunk_rows):
        yield frame


def numbered_chunks(path: str | Path, chunk_rows: int = 4096) -> Iterator[tuple[list[int], pd.DataFrame]]:
    """:func:`read_chunks`' frames with the row (line, for JSON lines) of each of their rows."""
    path = Path(path)
    chunks = {"json": _json_chunks, "parquet": _parquet_chunks}.get(ade_format_of(path), _ade_csv_chunks)
    seen: dict[str, int] = {}
    empty = True
    for frame, official in chunks(path, chunk_rows):
        empty = False
        refuse_nul_values(frame, path)  # every format, Parquet included
        if not official:
            if "id" not in frame.columns:
                frame["id"] = ""
            frame["id"] = [v if str(v).strip() else f"row-{row}" for row, v in frame["id"].items()]
        _check_ids(frame["id"], path)
        for row, value in frame["id"].items():  # ids are unique within a file: across chunks too
            if value in seen:
                problem = (
                    f"duplicate id {value!r} (rows {seen[value]} and {row}); ids must be unique within a file"
                )
                raise MedsiftError(problem, file=path, row=int(row))
            seen[value] = int(row)
        rows = [int(row) for row in frame.index]
        yield rows, _assemble(frame, _labels(frame, _use_labels(frame, None, path), path), path)
    if empty:
        raise MedsiftError("file has no rows", file=path)
