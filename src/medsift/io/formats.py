"""The one table of file formats: which suffix is which format, and what each format may hold.

Every reader, writer and command asks :func:`format_of` instead of testing suffixes itself: the whole-file
readers (``read_ade_any``, ``read_texts``, ``read_impacts``), the chunked ones behind ``medsift predict``
(``read_chunks``, ``read_impact_chunks``), the classifier stream's writers, standard input's spooling and the
Ray engine's shard listing. A suffix the table does not know is read as CSV, as the official files are.

| format | suffixes | ADE posts (read_ade_any, predict) | impact-tagger input | classifier predictions out |
| --- | --- | --- | --- | --- |
| csv | .csv (and any unknown suffix) | yes (official columns, or posts with text) | yes | yes (the submission) |
| json | .jsonl .json .ndjson | yes | yes (posts with text) | yes (records) |
| parquet | .parquet | yes | yes (tokens, or text) | yes (records) |
| text | .txt | read as CSV | yes (one post per line) | no |
| conll | .conll .bio .iob .iob2 | read as CSV | yes (token per line) | no |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileFormat:
    name: str
    suffixes: tuple[str, ...]
    ade_posts: bool  # read as ADE posts by its own reader (else: as CSV)
    tagger_input: bool  # impact taggers read it
    prediction_output: bool  # a classifier run's streamed predictions can be written as it


FORMATS: dict[str, FileFormat] = {
    f.name: f
    for f in (
        FileFormat("csv", (".csv",), True, True, True),
        FileFormat("json", (".jsonl", ".json", ".ndjson"), True, True, True),
        FileFormat("parquet", (".parquet",), True, True, True),
        FileFormat("text", (".txt",), False, True, False),
        FileFormat("conll", (".conll", ".bio", ".iob", ".iob2"), False, True, False),
    )
}
_BY_SUFFIX = {suffix: f.name for f in FORMATS.values() for suffix in f.suffixes}

JSON_SUFFIXES = FORMATS["json"].suffixes
CONLL_SUFFIXES = FORMATS["conll"].suffixes


def format_of(path: str | Path) -> str:
    """The format name of ``path`` by its suffix (case-insensitive); unknown suffixes are ``csv``."""
    return _BY_SUFFIX.get(Path(path).suffix.lower(), "csv")


def ade_format_of(path: str | Path) -> str:
    """How an ADE reader reads ``path``: ``json``, ``parquet`` or ``csv`` (every other format is read as CSV)."""
    name = format_of(path)
    return name if FORMATS[name].ade_posts else "csv"


def suffixes(
    *, ade_posts: bool = False, tagger_input: bool = False, prediction_output: bool = False
) -> tuple[str, ...]:
    """The suffixes of the formats that have every property asked for, in table order."""
    return tuple(
        s
        for f in FORMATS.values()
        if (f.ade_posts or not ade_posts)
        and (f.tagger_input or not tagger_input)
        and (f.prediction_output or not prediction_output)
        for s in f.suffixes
    )
