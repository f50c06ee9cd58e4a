"""Task 7 inputs read chunk by chunk (files larger than memory), with :func:`medsift.io.read_impacts`' rules.

Two kinds of chunk, both frames indexed by the 1-based row the errors name (data row for CSV and Parquet,
line for ``.txt`` and JSON lines, sentence for CoNLL):

- **Task 7 rows** (``ID, tokens, ner_tags, labels``): the official CSV (``ID,tokens[,ner_tags]``), Parquet
  with a ``tokens`` column (list of str, or list literals as in the CSV) and ``ID``, and CoNLL (read whole:
  it is sentence-based). IDs may repeat, as in the official train file (``Train_1``); ``ner_tags`` is
  ``None`` in every row of an unlabelled file;
- **raw posts** (``ID, text``): ``.txt`` (one post per non-blank line, ID = line number), ``.jsonl``/``.json``
  with ``text`` (and optional ``id``) and Parquet with ``text`` (and no ``tokens``), read by
  :func:`medsift.io.chunks.read_chunks` (ids unique across chunks, ``row-<n>`` when absent; a NUL refused).

A Task 7 CSV names the same problem (message and row) as ``read_impacts``; for the other formats a chunk
names the first problem it meets in file order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pandas as pd

from medsift.errors import MedsiftError
from medsift.io._load import check_columns, iter_posts, refuse_nul_values
from medsift.io.chunks import (
    csv_chunks,
    numbered_chunks,
    open_parquet,
    raise_file_problem,
)
from medsift.io.formats import format_of
from medsift.io.impacts import impact_row, is_empty_cell

ROW_COLUMNS = ["ID", "tokens", "ner_tags", "labels"]
_WHAT = "Task 7 (impacts) CSV"


class _TagColumns:
    """Reads rows with ``ner_tags`` (and ``labels``) exactly when :func:`read_impacts` would.

    ``read_impacts`` reads a column when any cell of it is filled, which a stream cannot know in advance: the
    first row decides, and a later filled cell in a column that row left empty raises the error read_impacts
    raises then, on that first row (its empty cell is not a list). The decision and its checks are per file.
    """

    def __init__(self, path: Path, label_set: Iterable[str] | None):
        self.path, self.label_set = path, label_set
        self.first: tuple[int, Mapping[str, object]] | None = None
        self.use_tags = self.use_labels = False

    def frame(self, rows: Iterable[int], records: Iterable[Mapping[str, object]]) -> pd.DataFrame:
        index, out = [], []
        for row, record in zip(rows, records, strict=True):
            tokens, tags, labels = self.row(row, record)
            index.append(row)
            out.append((str(record["ID"]), tokens, tags, labels))
        return pd.DataFrame(out, columns=ROW_COLUMNS, index=index)

    def row(self, row: int, record: Mapping[str, object]) -> tuple[list[str], list[str] | None, list | None]:
        tags_given = not is_empty_cell(record.get("ner_tags"))
        labels_given = not is_empty_cell(record.get("labels"))
        if self.first is None:
            self.first = (row, record)
            self.use_tags, self.use_labels = tags_given, tags_given and labels_given
        elif (tags_given and not self.use_tags) or (labels_given and self.use_tags and not self.use_labels):
            first_row, first = self.first
            impact_row(first, self.path, first_row, True, True, self.label_set)  # raises: that cell is empty
            self.use_tags = self.use_labels = True  # (not reached)
        return impact_row(record, self.path, row, self.use_tags, self.use_labels, self.label_set)


def _csv_row_chunks(path: Path, chunk_rows: int, label_set) -> Iterator[pd.DataFrame]:
    def check(header: list[str]) -> None:
        check_columns(header, ["ID", "tokens"], path, what=_WHAT)

    columns = _TagColumns(path, label_set)
    empty = True
    try:
        for frame in csv_chunks(path, chunk_rows, check, what=_WHAT, load_csv_rules=True):
            empty = False
            refuse_nul_values(frame, path)
            yield columns.frame(frame.index, frame.to_dict(orient="records"))
        if empty:
            raise MedsiftError(
                f"the header is there but there are no data rows; expected a {_WHAT}", file=path
            )
    except MedsiftError:
        raise_file_problem(path, check, what=_WHAT)  # the problem read_impacts names first, if another
        raise


def _parquet_row_chunks(path: Path, parquet, chunk_rows: int, label_set) -> Iterator[pd.DataFrame]:
    names = parquet.schema_arrow.names
    check_columns(names, ["ID", "tokens"], path, what="Parquet file of Task 7 rows")
    wanted = [name for name in ROW_COLUMNS if name in names]
    columns = _TagColumns(path, label_set)
    start = 1
    for batch in _batches(parquet, path, chunk_rows, wanted):
        data = batch.to_pydict()
        records = [dict(zip(wanted, values, strict=True)) for values in zip(*data.values(), strict=True)]
        rows = range(start, start + len(records))
        start += len(records)
        for row, record in zip(rows, records, strict=True):
            record["ID"] = "" if record["ID"] is None else str(record["ID"])
            if "\x00" in record["ID"]:  # the CSV reader refuses a NUL anywhere; an ID must be writable
                raise MedsiftError("NUL character (\\x00) in ID", file=path, row=row)
        yield columns.frame(rows, records)
    if start == 1:
        raise MedsiftError("file has no rows", file=path)


def _batches(parquet, path: Path, chunk_rows: int, columns: list[str]):
    batches = parquet.iter_batches(batch_size=chunk_rows, columns=columns)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:  # pyarrow raises many types for a corrupt file
            raise MedsiftError(f"cannot read as Parquet: {exc}", file=path) from None
        yield batch


def _conll_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    from medsift.io.conll import read_conll

    frame = read_conll(path)[ROW_COLUMNS]  # sentence-based: read whole; errors name the line
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    for start in range(0, len(frame), chunk_rows):
        yield frame.iloc[start : start + chunk_rows]


def _post_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    if format_of(path) != "text":  # JSON lines / arrays, Parquet with text
        for rows, frame in numbered_chunks(path, chunk_rows):
            yield pd.DataFrame(
                {"ID": frame["id"].astype(str).tolist(), "text": frame["text"].tolist()}, index=rows
            )
        return
    numbers: list[int] = []
    posts: list[str] = []
    seen_any = False
    for number, post in iter_posts(path):
        numbers.append(number)
        posts.append(post)
        if len(posts) == chunk_rows:
            yield pd.DataFrame({"ID": [str(n) for n in numbers], "text": posts}, index=numbers)
            numbers, posts, seen_any = [], [], True
    if posts:
        yield pd.DataFrame({"ID": [str(n) for n in numbers], "text": posts}, index=numbers)
    elif not seen_any:  # read_posts' error
        raise MedsiftError(
            "no posts: the file is empty or has only blank lines; expected one post per line", file=path
        )


def read_impact_chunks(
    path: str | Path, chunk_rows: int = 1024, *, label_set: Iterable[str] | None = None
) -> Iterator[pd.DataFrame]:
    """Frames of at most ``chunk_rows`` posts: Task 7 rows or raw posts (see the module docstring)."""
    path = Path(path)
    fmt = format_of(path)
    if fmt == "conll":
        yield from _conll_chunks(path, chunk_rows)
    elif fmt in ("text", "json"):
        yield from _post_chunks(path, chunk_rows)
    elif fmt == "parquet":
        parquet = open_parquet(path)
        names = parquet.schema_arrow.names
        if "tokens" in names:
            yield from _parquet_row_chunks(path, parquet, chunk_rows, label_set)
        elif "text" in names:
            yield from _post_chunks(path, chunk_rows)
        else:
            raise MedsiftError(
                f"missing column tokens (or text, for raw posts); columns found: {', '.join(names)}",
                file=path,
            )
    else:
        yield from _csv_row_chunks(path, chunk_rows, label_set)
