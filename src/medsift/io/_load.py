"""The one careful way medsift reads a text file: strict UTF-8, nothing coerced, clear errors.

Every reader goes through here so that an invalid byte, a NUL, an empty file, a header-only file or a
missing column produce the same kind of one-line :class:`MedsiftError` naming the file and the row.
Rows are 1-based data rows (header excluded) for CSV and 1-based line numbers for line formats.
"""

from __future__ import annotations

import contextlib
import csv
import io
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

import pandas as pd

from medsift.errors import MedsiftError

# Characters that suggest the user saved the file with another delimiter.
_OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}

# The csv module refuses fields over 128 KiB by default; a long forum post is valid input.
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


def read_text(path: str | Path) -> str:
    """Read ``path`` as strict UTF-8 (BOM stripped, NUL refused); errors name the 1-based line."""
    path = Path(path)
    raw = _read_bytes(path)
    text = _decode(raw, path, csv_rows=False)
    _refuse_nul(text, path, csv_rows=False)
    return text


def read_posts(path: str | Path) -> tuple[list[int], list[str]]:
    """One post per non-blank line of a plain-text file: (1-based line numbers, posts).

    Only ``\\n`` (or CRLF) ends a line, so a post holding U+2028 or \\x1c stays one post (``splitlines``
    would cut it). A file without a single post is an error naming the file.
    """
    path = Path(path)
    numbered = list(iter_posts(path))
    if not numbered:
        raise MedsiftError(
            "no posts: the file is empty or has only blank lines; expected one post per line", file=path
        )
    return [n for n, _ in numbered], [line for _, line in numbered]


def iter_posts(path: str | Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, post) for every non-blank line, read line by line (files larger than memory).

    The rules of :func:`read_text` and :func:`lines`, applied per line: strict UTF-8 (a BOM at the start is
    dropped), NUL refused, only ``\\n`` (or CRLF) ends a line; an error names the line, and an invalid byte
    is named before a NUL, as :func:`read_text` names them. Yields nothing for a file without posts.
    """
    path = Path(path)
    with _open_bytes(path) as fh:
        for number, raw in enumerate(fh, start=1):  # a binary file splits on b"\n" only
            line = _decode_line(raw, path, number)
            if number == 1:
                line = line.removeprefix("\ufeff")
            if "\x00" in line:
                for later, rest in enumerate(fh, start=number + 1):  # read_text decodes the whole file first
                    _decode_line(rest, path, later)
                raise MedsiftError(
                    f"NUL character (\\x00) on line {number}; the file looks binary or corrupt",
                    file=path,
                    row=number,
                )
            line = line.removesuffix("\n").removesuffix("\r")
            if line.strip():
                yield number, line


def _decode_line(raw: bytes, path: Path, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = raw[exc.start : exc.start + 1].hex()
        problem = f"invalid UTF-8 byte 0x{byte} on line {number}; save the file as UTF-8"
        raise MedsiftError(problem, file=path, row=number) from None


def lines(text: str) -> list[str]:
    """Split on newlines only (``str.splitlines`` also splits on U+2028, U+0085 and \\x1c-\\x1e); CRLF accepted."""
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return [part.removesuffix("\r") for part in parts]


def write_csv_rows(fh: IO[str], header: Sequence[str] | None, rows: Iterable[Sequence[object]]) -> None:
    """Write a header (unless ``None``: rows appended to a file begun earlier) and rows as comma-separated
    values with ``\\n`` line ends, quoting only where needed.

    The csv module does not quote a field that holds a lone ``\\r`` when the line terminator is ``\\n``, and
    such a file no longer parses; rows with a ``\\r`` are therefore written with every field quoted.
    """
    minimal = csv.writer(fh, lineterminator="\n")
    quote_all = csv.writer(fh, lineterminator="\n", quoting=csv.QUOTE_ALL)
    if header is not None:
        minimal.writerow(header)
    for row in rows:
        (quote_all if any("\r" in str(cell) for cell in row) else minimal).writerow(row)


def check_writable(values: Sequence[object], path: Path, column: str, *, first_row: int = 1) -> None:
    """Refuse a NUL character in a value about to be written: medsift's readers would refuse the file."""
    for row, value in enumerate(values, start=first_row):
        if "\x00" in str(value):
            raise MedsiftError(
                f"{column} contains a NUL character (\\x00), which cannot be written", file=path, row=row
            )


def refuse_nul_values(frame: pd.DataFrame, path: Path) -> None:
    """Refuse a NUL character in any cell of a frame read from a typed file (Parquet; a streamed chunk),
    naming the column and the row (the frame's index: 1-based row). Text files are checked as text on
    reading (:func:`read_text`); a Parquet file never passes through that, so its values are checked here."""
    for column in frame.columns:
        bad = frame[column].astype(str).str.contains("\x00", regex=False)
        if bad.any():
            raise MedsiftError(f"NUL character (\\x00) in {column}", file=path, row=int(bad.idxmax()))


def refuse_surrogates(values: Iterable[object], path: Path, row: int | None, what: str) -> None:
    """Refuse a string holding a lone surrogate (from a ``\\ud800`` escape in JSON or a list literal): no
    UTF-8 text can hold it, so a tokenizer or writer would fail on it far from the file."""
    for value in values:
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise MedsiftError(
                    f"{what} holds a lone surrogate escape (such as \\ud800) that no UTF-8 text can hold",
                    file=path,
                    row=row,
                ) from None


def load_header(path: str | Path) -> list[str]:
    """The stripped column names of a CSV file after the UTF-8 checks; ``[]`` for an empty file."""
    path = Path(path)
    return _header(_decode(_read_bytes(path), path, csv_rows=True), path)


def _header(text: str, path: Path) -> list[str]:
    try:
        return [name.strip() for name in next(csv.reader(io.StringIO(text)), [])]
    except csv.Error as exc:  # e.g. a lone carriage return inside the header line
        raise MedsiftError(f"cannot parse the header as CSV: {exc}", file=path, row=None) from None


@contextlib.contextmanager
def _readable(path: Path) -> Iterator[None]:
    """OS errors while opening or reading ``path`` as one-line MedsiftErrors naming the file."""
    try:
        yield
    except FileNotFoundError:
        raise MedsiftError("file not found", file=path) from None
    except IsADirectoryError:
        raise MedsiftError("is a folder, expected a file", file=path) from None
    except OSError as exc:
        raise MedsiftError(f"cannot read file ({exc.strerror})", file=path) from None


def _open_bytes(path: Path) -> IO[bytes]:
    with _readable(path):
        return path.open("rb")


def _read_bytes(path: Path) -> bytes:
    with _readable(path):
        return path.read_bytes()


def _decode(raw: bytes, path: Path, *, csv_rows: bool) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = raw[: exc.start].decode("utf-8")
        byte = raw[exc.start : exc.start + 1].hex()
        line = prefix.count("\n") + 1
        problem = f"invalid UTF-8 byte 0x{byte} on line {line}; save the file as UTF-8"
        row = _csv_row_at(prefix) if csv_rows else line
        raise MedsiftError(problem, file=path, row=row or None) from None
    return text.removeprefix("\ufeff")


def _refuse_nul(text: str, path: Path, *, csv_rows: bool) -> None:
    pos = text.find("\x00")
    if pos >= 0:
        line = text.count("\n", 0, pos) + 1
        row = _csv_row_at(text[:pos]) if csv_rows else line
        raise MedsiftError(
            f"NUL character (\\x00) on line {line}; the file looks binary or corrupt",
            file=path,
            row=row or None,
        )


def _csv_row_at(prefix: str) -> int:
    """The 1-based data row (0 = header) that contains the character right after ``prefix``.

    Quoted fields may span lines, so rows are counted by parsing the prefix, not by counting newlines.
    A sentinel character makes sure the record being read at the end of the prefix is counted.
    """
    try:
        records = [rec for rec in csv.reader(io.StringIO(prefix + "x")) if rec]
    except csv.Error:  # the prefix itself does not parse (a lone \r): fall back to physical lines
        return prefix.count("\n")
    return max(len(records) - 1, 0)


def load_csv(path: str | Path, required: Sequence[str], *, what: str = "CSV file") -> pd.DataFrame:
    """Load a comma-separated UTF-8 file as strings, checking that ``required`` columns exist.

    Extra columns are kept. Column names are stripped of surrounding spaces. The frame's index is
    the 1-based data row number, so callers can name rows in errors with ``frame.index[i]``.
    """
    path = Path(path)
    raw = _read_bytes(path)
    text = _decode(raw, path, csv_rows=True)
    if not text.strip():
        raise MedsiftError(f"file is empty; expected a {what} with a header line", file=path)
    _refuse_nul(text, path, csv_rows=True)
    header = _header(text, path)
    check_columns(header, required, path, what=what)
    _check_field_counts(text, path, len(header))
    try:
        with warnings.catch_warnings():
            # pandas only warns (and drops data) when every row has more fields than the header.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(text), dtype=str, keep_default_na=False, index_col=False, skip_blank_lines=True
            )
    except pd.errors.ParserWarning:
        raise MedsiftError(
            "rows have more fields than the header; is a comma missing from the header or quoting wrong?",
            file=path,
        ) from None
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        raise MedsiftError(f"cannot parse as CSV: {_short_parser_message(exc)}", file=path) from None
    frame.columns = header
    if frame.empty:
        raise MedsiftError(f"the header is there but there are no data rows; expected a {what}", file=path)
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    return frame


def check_columns(found: Sequence[str], required: Sequence[str], path: Path, *, what: str) -> None:
    """Refuse duplicate column names and missing required columns, with a delimiter hint."""
    seen: set[str] = set()
    for name in found:
        if name in seen:
            raise MedsiftError(f"column '{name}' appears twice in the header", file=path)
        seen.add(name)
    missing = [name for name in required if name not in seen]
    if not missing:
        return
    problem = (
        f"missing column(s) {', '.join(missing)} for a {what}; "
        f"columns found: {', '.join(repr(name) for name in found) or 'none'}"
    )
    joined = ",".join(found)
    for char, label in _OTHER_DELIMITERS.items():
        if char in joined:
            problem += f" (the header contains a {label}: the file must be comma-separated)"
            break
    raise MedsiftError(problem, file=path)


def _check_field_counts(text: str, path: Path, n_columns: int) -> None:
    # pandas silently pads short rows with "" and sometimes truncates long ones; refuse both, by row.
    records = (rec for rec in csv.reader(io.StringIO(text)) if rec)
    next(records)
    row = 0
    try:
        for row, record in enumerate(records, start=1):
            if len(record) != n_columns:
                relation = "fewer" if len(record) < n_columns else "more"
                problem = (
                    f"row has {len(record)} fields, {relation} than the {n_columns} columns of the header"
                )
                raise MedsiftError(problem + "; check commas and quoting", file=path, row=row)
    except csv.Error as exc:
        raise MedsiftError(f"cannot parse as CSV: {exc}", file=path, row=row + 1) from None


def _short_parser_message(exc: Exception) -> str:
    message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return message.removeprefix("Error tokenizing data. ").removeprefix("C error: ")
