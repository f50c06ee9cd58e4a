"""CoNLL token-per-line files: ``TOKEN<TAB or spaces>TAG``, a blank line between sentences.

They read into the same frame as :func:`medsift.io.read_impacts`, so other BIO corpora (PsyTAR's ADR,
WD, SSI, DI, for example) go through the same pipeline as the official Task 7 file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medsift.errors import MedsiftError
from medsift.io._load import lines as _lines
from medsift.io._load import read_text
from medsift.io.atomic import atomic_write
from medsift.io.impacts import check_tags, unique_uids


def io_labels(tags: list[str]) -> list[str]:
    """The IO column the official files carry: the entity type of each token, ``_`` outside entities."""
    return [tag[2:] if tag[:2] in ("B-", "I-") else "_" for tag in tags]


def _split_line(line: str, path: Path, number: int) -> tuple[str, str]:
    # A tab separates token and tag when present (tokens may then contain spaces); otherwise whitespace.
    # Extra middle columns (POS, chunk) are ignored: the token is first and the tag last.
    parts = line.split("\t") if "\t" in line else line.split()
    parts = [p.strip() for p in parts]
    if len(parts) < 2 or not parts[0] or not parts[-1]:
        shown = line[:60]
        raise MedsiftError(f"expected 'TOKEN<TAB>TAG', found {shown!r}", file=path, row=number)
    return parts[0], parts[-1]


def read_conll(path: str | Path) -> pd.DataFrame:
    """Read a CoNLL BIO file; sentence n (1-based) gets ID ``<file stem>_<n>``.

    Returns ``ID, tokens, ner_tags, labels, source, uid``; errors name the 1-based line.
    """
    path = Path(path)
    text = read_text(path)
    sentences: list[tuple[list[str], list[str]]] = []
    tokens: list[str] = []
    tags: list[str] = []
    for number, line in enumerate(_lines(text), start=1):
        if not line.strip():
            if tokens:
                sentences.append((tokens, tags))
                tokens, tags = [], []
            continue
        if line.startswith("-DOCSTART-"):
            continue
        token, tag = _split_line(line, path, number)
        check_tags([tag], path, number, column="tag")
        tokens.append(token)
        tags.append(tag)
    if tokens:
        sentences.append((tokens, tags))
    if not sentences:
        raise MedsiftError("file has no sentences; expected TOKEN<TAB>TAG lines", file=path)
    ids = [f"{path.stem}_{n}" for n in range(1, len(sentences) + 1)]
    return pd.DataFrame(
        {
            "ID": ids,
            "tokens": [s[0] for s in sentences],
            "ner_tags": [s[1] for s in sentences],
            "labels": [io_labels(s[1]) for s in sentences],
            "source": str(path),
            "uid": unique_uids(ids),
        }
    )


def write_conll(path: str | Path, frame: pd.DataFrame, *, tags_column: str = "ner_tags") -> None:
    """Write ``tokens`` and ``tags_column`` as ``TOKEN\\tTAG`` lines, a blank line after each sentence.

    Tokens that are empty or contain whitespace cannot be written unambiguously and are refused (row
    = 1-based frame row).
    """
    path = Path(path)
    for column in ("tokens", tags_column):
        if column not in frame.columns:
            raise MedsiftError(f"cannot write CoNLL: frame lacks column {column!r}", file=path)
    lines: list[str] = []
    for row, (tokens, tags) in enumerate(zip(frame["tokens"], frame[tags_column], strict=True), start=1):
        if tags is None or len(tokens) != len(tags) or not tokens:
            raise MedsiftError("need a non-empty token list with one tag per token", file=path, row=row)
        check_tags(list(tags), path, row, column=tags_column)
        for token in tokens:
            if not token or "\x00" in token or any(ch.isspace() for ch in token):
                raise MedsiftError(
                    f"token {token!r} is empty or contains whitespace or NUL; CoNLL cannot hold it",
                    file=path,
                    row=row,
                )
        lines.extend(f"{token}\t{tag}" for token, tag in zip(tokens, tags, strict=True))
        lines.append("")
    with atomic_write(path) as fh:
        fh.write("\n".join(lines) + "\n")
