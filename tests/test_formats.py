"""One table of file formats: every reader, the classifier stream and Ray's shard listing dispatch on it, so
``medsift predict`` reads exactly what ``read_ade_any`` reads."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from medsift.io import read_ade_any
from medsift.io.chunks import read_chunks
from medsift.io.formats import FORMATS, ade_format_of, format_of, suffixes

POSTS = [
    {"id": "a", "text": "headache after the pill", "language": "en"},
    {"id": "b", "text": "fine", "language": ""},
]


def _write(path):
    fmt = format_of(path)
    if fmt == "json":
        if path.suffix == ".json":
            path.write_text(json.dumps(POSTS), encoding="utf-8")
        else:
            path.write_text("".join(json.dumps(p) + "\n" for p in POSTS), encoding="utf-8")
    elif fmt == "parquet":
        pd.DataFrame(POSTS).to_parquet(path)
    else:
        pd.DataFrame(POSTS).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [*suffixes(ade_posts=True), ".txt", ".tsv", ""])
def test_the_stream_reads_what_read_ade_any_reads(tmp_path, suffix):
    path = _write(tmp_path / f"posts{suffix}")
    whole = read_ade_any(path)
    streamed = pd.concat(list(read_chunks(path, chunk_rows=1)))
    cols = ["id", "text", "language"]
    assert whole[cols].reset_index(drop=True).equals(streamed[cols].reset_index(drop=True))


def test_every_suffix_has_one_format_and_unknown_ones_are_csv():
    seen = [s for f in FORMATS.values() for s in f.suffixes]
    assert len(seen) == len(set(seen))
    assert format_of("x.JSONL") == "json" and format_of("x.unknown") == "csv" and format_of("x") == "csv"
    assert ade_format_of("x.conll") == "csv" and ade_format_of("x.txt") == "csv"


def test_ray_lists_the_shards_the_table_allows():
    from medsift.engine.ray_engine import SHARD_SUFFIXES, TAGGER_SHARD_SUFFIXES

    assert suffixes(ade_posts=True) == SHARD_SUFFIXES
    assert set(TAGGER_SHARD_SUFFIXES) == {s for f in FORMATS.values() for s in f.suffixes}
