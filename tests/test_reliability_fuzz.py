"""Fuzzing every reader (hypothesis): arbitrary bytes and arbitrary CSV-ish / JSON-ish text either read, or
raise :class:`MedsiftError` (the CLI's one error line), never another exception (no traceback).

What a reader returns must also be safe to use: every string in it encodes as UTF-8 (a lone surrogate
escape from a JSON or list literal would crash the tokenizer or a writer much later, far from the file).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medsift.engine.streaming import read_chunks
from medsift.errors import MedsiftError
from medsift.io import (
    load_csv,
    read_ade,
    read_ade_any,
    read_ade_submission,
    read_conll,
    read_impacts,
    read_impacts_submission,
    read_posts,
    read_probabilities,
    read_texts,
)
from medsift.io._load import load_header
from medsift.io.impacts_chunks import read_impact_chunks

# reader name -> (file suffix, reader)
READERS: dict[str, tuple[str, Callable[[Path], object]]] = {
    "read_ade": (".csv", read_ade),
    "read_ade labelled": (".csv", lambda p: read_ade(p, labelled=True)),
    "read_ade_any": (".csv", read_ade_any),
    "read_texts csv": (".csv", read_texts),
    "read_texts jsonl": (".jsonl", read_texts),
    "read_texts json": (".json", read_texts),
    "read_texts parquet": (".parquet", read_texts),
    "read_ade_any jsonl": (".jsonl", read_ade_any),
    "read_impacts": (".csv", read_impacts),
    "read_impacts labelled": (".csv", lambda p: read_impacts(p, labelled=True)),
    "read_impacts_submission": (".csv", read_impacts_submission),
    "read_ade_submission": (".csv", read_ade_submission),
    "read_probabilities": (".csv", read_probabilities),
    "read_conll": (".txt", read_conll),
    "read_posts": (".txt", read_posts),
    "load_header": (".csv", load_header),
    "load_csv": (".csv", lambda p: load_csv(p, ["id"])),
    # the streaming reader behind `medsift predict` with a classifier run
    "read_chunks csv": (".csv", lambda p: list(read_chunks(p, chunk_rows=2))),
    "read_chunks jsonl": (".jsonl", lambda p: list(read_chunks(p, chunk_rows=2))),
    "read_chunks json": (".json", lambda p: list(read_chunks(p, chunk_rows=2))),
    "read_chunks parquet": (".parquet", lambda p: list(read_chunks(p, chunk_rows=2))),
    # the streaming reader behind `medsift predict` with a tagger run
    "read_impact_chunks csv": (".csv", lambda p: list(read_impact_chunks(p, chunk_rows=2))),
    "read_impact_chunks jsonl": (".jsonl", lambda p: list(read_impact_chunks(p, chunk_rows=2))),
    "read_impact_chunks txt": (".txt", lambda p: list(read_impact_chunks(p, chunk_rows=2))),
    "read_impact_chunks parquet": (".parquet", lambda p: list(read_impact_chunks(p, chunk_rows=2))),
    "read_impact_chunks conll": (".conll", lambda p: list(read_impact_chunks(p, chunk_rows=2))),
}

HEADERS = [
    "id,text,label,origin,type,language,split\n",
    "id,text\n",
    "id,predicted_label\n",
    "id,language,p_ade,label\n",
    "tokens,labels,ID,ner_tags\n",
    "ID,tokens\n",
    "ID,predicted_ner_tags\n",
    "\ufeffid,text,label\r\n",
    "",
]
# Pieces that matter to some reader: delimiters, quotes, line ends, labels, list literals, escapes.
PIECES = [
    ",", '"', "'", "\n", "\r\n", "\r", " ", "\t", ";", "|", "[", "]", "{", "}", ":", "\\", "(", ")",
    "0", "1", "2", "-1", "1.5", "1.0", "nan", "NaN", "inf", "1e999", "yes", "", "en", "x",
    "id", "text", "label", "ID", "tokens", "ner_tags", "p_ade", "language",
    "O", "B-X", "I-X", "B-", "X-Foo", "\tO", "a\tB-X",
    "[]", "['a']", "['a', 'b']", "['O', 'B-X']", "[1, 2]", "[['a']]", "__import__('os')", "'\\ud800'",
    '{"text": "a"}', '{"id": "i", "text": "t"}', '{"text": 1}', '{"text": "\\ud800"}', '{"id": "\\udfff"}',
    '{"text": "\\u0000"}', "null", "true", '"text"', '"id"',
    "\ufeff", "\x00", "\x1c", "\u2028", "\x85", "é", "😵‍💫", "\u202e", "\ud7ff", "\uffff",
]  # fmt: skip

_csvish = st.builds(
    lambda header, body: (header + "".join(body)).encode("utf-8"),
    st.sampled_from(HEADERS),
    st.lists(st.sampled_from(PIECES), max_size=50),
)
_jsonish = st.builds(
    lambda body: "".join(body).encode("utf-8"),
    st.lists(st.sampled_from([*PIECES, '{"text": "ok"}\n', '{"id": "\\u0000", "text": "t"}']), max_size=30),
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _strings(value: object):
    """Every str inside what a reader returned (frames, lists, tuples, dicts)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, pd.DataFrame):
        yield from (str(c) for c in value.columns)
        for column in value.columns:
            yield from _strings(value[column].tolist())
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)


def _read_everything(folder: Path, data: bytes) -> None:
    for name, (suffix, reader) in READERS.items():
        path = folder / f"input{suffix}"
        path.write_bytes(data)
        try:
            result = reader(path)
        except MedsiftError as exc:
            assert exc.file == str(path), (name, str(exc))
            continue
        except Exception as exc:  # pragma: no cover - what this test exists to catch
            raise AssertionError(f"{name} raised {type(exc).__name__}: {exc} on {data!r}") from exc
        for text in _strings(result):
            text.encode("utf-8")  # a lone surrogate would raise here
        if isinstance(result, pd.DataFrame) and "id" in result.columns:  # ids can be written back
            assert not any("\x00" in str(i) for i in result["id"]), name


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_read_or_raise_medsift_error(folder, data):
    _read_everything(folder, data)


@FUZZ
@given(data=_csvish)
def test_csv_like_text_reads_or_raises_medsift_error(folder, data):
    _read_everything(folder, data)


@FUZZ
@given(data=_jsonish)
def test_json_like_text_reads_or_raises_medsift_error(folder, data):
    _read_everything(folder, data)


# Cases the fuzzer found, kept as plain examples (each failed before its fix).
FOUND = {
    "surrogate escape in a JSON text": b'{"id": "a", "text": "x\\ud800"}\n',
    "surrogate escape in a JSON id": b'{"id": "\\udfff", "text": "x"}\n',
    "surrogate escape in a JSON array": b'[{"text": "\\ud800"}]',
    "surrogate escape in a token list": b"ID,tokens\nt1,\"['a', '\\ud800']\"\n",
    "surrogate escape in a tag list": b"tokens,ID,ner_tags\n\"['a']\",t1,\"['B-\\ud800']\"\n",
    "lone carriage return in the header": b"id,te\rxt\nen_1,x\n",
    "lone carriage return before an invalid byte": b"\r\x80",
    "NUL escape in a JSON id": b'{"id": "a\\u0000", "text": "x"}\n',
}


@pytest.mark.parametrize("case", sorted(FOUND))
def test_found_cases(folder, case):
    _read_everything(folder, FOUND[case])
