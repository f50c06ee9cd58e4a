"""Readers, validators and writers for every medsift file format.

All readers decode UTF-8 strictly and raise :class:`medsift.errors.MedsiftError` naming the file, the
row and the problem; all writers validate first and write atomically.
"""

from __future__ import annotations

from medsift.io._load import load_csv, read_posts, read_text
from medsift.io.ade import (
    ADE_COLUMNS,
    merge_uids,
    parse_label,
    read_ade,
    read_ade_any,
    read_ade_files,
    read_texts,
)
from medsift.io.atomic import atomic_write, atomic_write_bytes, atomic_write_text
from medsift.io.conll import io_labels, read_conll, write_conll
from medsift.io.impacts import (
    IMPACT_COLUMNS,
    check_tags,
    format_list,
    label_set_from_tags,
    parse_list_cell,
    read_impacts,
    read_impacts_submission,
    unique_uids,
    write_impacts_submission,
)
from medsift.io.submissions import (
    read_ade_submission,
    read_probabilities,
    write_ade_submission,
    write_probabilities,
)

__all__ = [
    "ADE_COLUMNS",
    "IMPACT_COLUMNS",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_tags",
    "format_list",
    "io_labels",
    "label_set_from_tags",
    "load_csv",
    "merge_uids",
    "parse_label",
    "parse_list_cell",
    "read_ade",
    "read_ade_any",
    "read_ade_files",
    "read_ade_submission",
    "read_conll",
    "read_impacts",
    "read_impacts_submission",
    "read_posts",
    "read_probabilities",
    "read_text",
    "read_texts",
    "unique_uids",
    "write_ade_submission",
    "write_conll",
    "write_impacts_submission",
    "write_probabilities",
]
