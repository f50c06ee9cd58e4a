"""Task 7 (``impacts``) files: ``tokens,labels,ID,ner_tags`` (train/dev), ``ID,tokens`` (test), submissions.

List cells are Python list literals; they are parsed with :func:`ast.literal_eval` (never ``eval``)
and the result must be a list of strings. The entity types come from the data (``B-X``/``I-X`` for
any ``X``), never from a hard-coded list.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from medsift.errors import MedsiftError
from medsift.io._load import check_writable, load_csv, refuse_surrogates, write_csv_rows
from medsift.io.atomic import atomic_write
from medsift.io.formats import format_of

IMPACT_COLUMNS = ["ID", "tokens", "ner_tags", "labels", "source", "uid"]
SUBMISSION_COLUMNS = ("ID", "predicted_ner_tags")
# Any entity type is accepted; whitespace and control characters are not (they cannot be written back).
_TAG = re.compile(r"O|[BI]-[^\s\x00-\x1f\x7f]+")


def parse_list_cell(cell: str, path: str | Path, row: int, column: str) -> list[str]:
    """Parse a cell like ``"['I', 'overdosed']"`` into a list of str; anything else is an error."""
    text = str(cell).strip()
    if not text.startswith("["):
        shown = text[:40] + ("..." if len(text) > 40 else "")
        raise MedsiftError(
            f"{column} must be a list literal like ['a', 'b'], found {shown!r}", file=path, row=row
        )
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        raise MedsiftError(
            f"{column} is not a valid list literal (check quotes and brackets)", file=path, row=row
        ) from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise MedsiftError(f"{column} must be a list of strings", file=path, row=row)
    refuse_surrogates(value, Path(path), row, column)
    return value


def _normalise_label_set(label_set: Iterable[str] | None) -> set[str] | None:
    # Accept entity types ("ADR") or full tags ("B-ADR"); "O" is always allowed.
    if label_set is None:
        return None
    return {t[2:] if t[:2] in ("B-", "I-") else t for t in label_set if t != "O"}


def check_tags(
    tags: Sequence[str],
    path: str | Path | None,
    row: int | None,
    *,
    label_set: Iterable[str] | None = None,
    column: str = "ner_tags",
) -> None:
    """Refuse a tag that is not ``O``, ``B-X`` or ``I-X`` (or whose X is outside ``label_set`` when given)."""
    allowed = _normalise_label_set(label_set)
    for position, tag in enumerate(tags, start=1):
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            raise MedsiftError(
                f"{column}: tag {position} is {tag!r}; expected O, B-<type> or I-<type>", file=path, row=row
            )
        if allowed is not None and tag != "O" and tag[2:] not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise MedsiftError(
                f"{column}: tag {position} {tag!r} has an unknown type (known: {known})", file=path, row=row
            )


def label_set_from_tags(tag_lists: Iterable[Sequence[str] | None]) -> list[str]:
    """The sorted entity types found in BIO tag lists (``B-ADR``, ``I-WD`` → ``['ADR', 'WD']``)."""
    return sorted(
        {tag[2:] for tags in tag_lists if tags is not None for tag in tags if tag[:2] in ("B-", "I-")}
    )


def unique_uids(ids: Sequence[str]) -> list[str]:
    """uids for possibly repeated ids: the first keeps its id, later ones get ``#2``, ``#3``, ...

    Used because the official train file repeats ``Train_1``; a suffix that would collide with a real
    id is skipped, so the result is always unique.
    """
    taken = set(ids)
    seen: dict[str, int] = {}
    uids = []
    for value in ids:
        count = seen.get(value, 0) + 1
        seen[value] = count
        uid = value
        if count > 1:
            uid = f"{value}#{count}"
            while uid in taken:
                count += 1
                uid = f"{value}#{count}"
            seen[value] = count
        taken.add(uid)
        uids.append(uid)
    return uids


def _use_tags(frame: pd.DataFrame, labelled: bool | None, path: Path) -> bool:
    if labelled is False:
        return False
    if "ner_tags" not in frame.columns:
        if labelled:
            raise MedsiftError("labelled=True but the file has no 'ner_tags' column", file=path)
        return False
    return bool(labelled) or bool(frame["ner_tags"].str.strip().ne("").any())


def list_cell(value: object, path: str | Path, row: int, column: str) -> list[str]:
    """A list of str from a CSV cell (a list literal, see :func:`parse_list_cell`) or a Parquet list cell."""
    if isinstance(value, str):
        return parse_list_cell(value, path, row, column)
    if not isinstance(value, list | tuple):  # None (an empty Parquet cell), a number
        raise MedsiftError(
            f"{column} must be a list of strings, found {type(value).__name__}", file=path, row=row
        )
    items = list(value)
    if not all(isinstance(item, str) for item in items):
        raise MedsiftError(f"{column} must be a list of strings", file=path, row=row)
    refuse_surrogates(items, Path(path), row, column)
    return items


def is_empty_cell(value: object) -> bool:
    """A cell that holds nothing: ``None`` or blank text (an unlabelled file's ``ner_tags``)."""
    return value is None or (isinstance(value, str) and not value.strip())


def impact_row(
    record: Mapping[str, object],
    path: Path,
    row: int,
    use_tags: bool,
    use_labels: bool,
    label_set: Iterable[str] | None = None,
) -> tuple[list[str], list[str] | None, list[str] | None]:
    """(tokens, ner_tags, labels) of one Task 7 row (``ID``, ``tokens``, ...), or the error naming the row."""
    if not str(record["ID"]).strip():
        raise MedsiftError("ID is missing; every row needs one", file=path, row=row)
    tokens = list_cell(record["tokens"], path, row, "tokens")
    if not tokens:
        raise MedsiftError("tokens is an empty list; every row needs at least one token", file=path, row=row)
    tags = labels = None
    if use_tags:
        tags = list_cell(record["ner_tags"], path, row, "ner_tags")
        if len(tags) != len(tokens):
            raise MedsiftError(
                f"{len(tokens)} tokens but {len(tags)} ner_tags; need one tag per token", file=path, row=row
            )
        check_tags(tags, path, row, label_set=label_set)
    if use_labels:
        labels = list_cell(record["labels"], path, row, "labels")
    return tokens, tags, labels


def read_impacts(
    path: str | Path, *, labelled: bool | None = None, label_set: Iterable[str] | None = None
) -> pd.DataFrame:
    """Read a Task 7 CSV; returns ``ID, tokens, ner_tags, labels, source, uid`` (lists of str or None).

    All rows are kept, including repeated IDs (see :func:`unique_uids`). Errors name the row:
    malformed list literal, empty token list, tags/tokens length mismatch, invalid tag. A CoNLL file
    (``.conll``, ``.bio``, ``.iob``, ``.iob2``) is read by :func:`medsift.io.read_conll` into the same frame.
    """
    path = Path(path)
    if format_of(path) == "conll":
        from medsift.io.conll import read_conll

        return read_conll(path)  # every tag is checked there, errors naming the line
    required = ["ID", "tokens", "ner_tags"] if labelled else ["ID", "tokens"]
    frame = load_csv(path, required, what="Task 7 (impacts) CSV")
    use_tags = _use_tags(frame, labelled, path)
    use_labels = use_tags and "labels" in frame.columns and bool(frame["labels"].str.strip().ne("").any())
    tokens_out, tags_out, labels_out = [], [], []
    for row, record in frame.iterrows():
        tokens, tags, labels = impact_row(record, path, int(row), use_tags, use_labels, label_set)
        tokens_out.append(tokens)
        tags_out.append(tags)
        labels_out.append(labels)
    ids = frame["ID"].astype(str).tolist()
    return pd.DataFrame(
        {
            "ID": ids,
            "tokens": tokens_out,
            "ner_tags": tags_out,
            "labels": labels_out,
            "source": str(path),
            "uid": unique_uids(ids),
        }
    )


def format_list(items: Sequence[str]) -> str:
    """A list literal written like the official files: Python's ``repr`` of a list of str."""
    return repr([str(item) for item in items])


def write_impacts_submission(
    path: str | Path,
    ids: Sequence[object],
    tag_lists: Sequence[Sequence[str]],
    *,
    token_lists: Sequence[Sequence[str]] | None = None,
    label_set: Iterable[str] | None = None,
) -> None:
    """Write ``ID,predicted_ner_tags`` in input order, keeping IDs as given (repeats allowed).

    Every tag must be ``O``/``B-X``/``I-X``; with ``token_lists`` each row must have one tag per token.
    """
    path = Path(path)
    rows = submission_rows(path, ids, tag_lists, token_lists=token_lists, label_set=label_set)
    if not rows:
        raise MedsiftError("nothing to write: no IDs", file=path)
    with atomic_write(path) as fh:
        write_csv_rows(fh, SUBMISSION_COLUMNS, rows)


def submission_rows(
    path: Path,
    ids: Sequence[object],
    tag_lists: Sequence[Sequence[str]],
    *,
    token_lists: Sequence[Sequence[str]] | None = None,
    label_set: Iterable[str] | None = None,
    first_row: int = 1,
) -> list[tuple[str, str]]:
    """Validated ``(ID, predicted_ner_tags)`` rows of a submission, or of a part of one that starts at
    ``first_row`` (a streamed submission is written part by part); errors name ``path`` and the row."""
    ids = [str(i) for i in ids]
    if len(ids) != len(tag_lists):
        raise MedsiftError(f"{len(ids)} IDs but {len(tag_lists)} tag lists; need one per ID", file=path)
    if token_lists is not None and len(token_lists) != len(ids):
        raise MedsiftError(f"{len(ids)} IDs but {len(token_lists)} token lists", file=path)
    check_writable(ids, path, "ID", first_row=first_row)
    rows = []
    for row, (value, tags) in enumerate(zip(ids, tag_lists, strict=True), start=first_row):
        if not value.strip():
            raise MedsiftError("ID is missing", file=path, row=row)
        tags = list(tags)
        check_tags(tags, path, row, label_set=label_set, column="predicted_ner_tags")
        if token_lists is not None and len(token_lists[row - first_row]) != len(tags):
            n_tokens = len(token_lists[row - first_row])
            raise MedsiftError(
                f"{n_tokens} tokens but {len(tags)} predicted tags; need one per token", file=path, row=row
            )
        rows.append((value, format_list(tags)))
    return rows


def read_impacts_submission(path: str | Path, *, label_set: Iterable[str] | None = None) -> pd.DataFrame:
    """Read a Task 7 submission; returns ``ID, predicted_ner_tags (list[str]), uid``."""
    path = Path(path)
    frame = load_csv(path, SUBMISSION_COLUMNS, what="Task 7 submission (ID,predicted_ner_tags)")
    tag_lists = []
    for row, record in frame.iterrows():
        if not str(record["ID"]).strip():
            raise MedsiftError("ID is missing", file=path, row=int(row))
        tags = parse_list_cell(record["predicted_ner_tags"], path, int(row), "predicted_ner_tags")
        check_tags(tags, path, int(row), label_set=label_set, column="predicted_ner_tags")
        tag_lists.append(tags)
    ids = frame["ID"].astype(str).tolist()
    return pd.DataFrame({"ID": ids, "predicted_ner_tags": tag_lists, "uid": unique_uids(ids)})
