"""``medsift predict`` for impact taggers: tag files larger than memory chunk by chunk.

Each chunk of posts (:func:`medsift.io.impacts_chunks.read_impact_chunks`: the official CSV, Parquet, CoNLL,
``.txt`` or JSON posts, checked with ``medsift.io``'s rules and named by their true rows) is tagged by one
:meth:`SpanTagger.tag` call (windows batched by the token budget) and appended to a temporary submission
``ID,predicted_ner_tags`` (and ``--spans-json``). Rows come out in input order, one per input row (repeated
IDs, as in the official train file, are kept), and the outputs only appear (atomic rename) once that has been
checked. The submission is byte for byte the file :func:`medsift.io.write_impacts_submission` writes.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from pathlib import Path
from typing import IO, Any

import pandas as pd
from tqdm.auto import tqdm

from medsift.errors import MedsiftError
from medsift.impacts.words import split_words
from medsift.io._load import write_csv_rows
from medsift.io.atomic import atomic_write
from medsift.io.impacts import SUBMISSION_COLUMNS, submission_rows
from medsift.io.impacts_chunks import read_impact_chunks

CHUNK_ROWS = 1024  # posts per model call: enough for the token budget to sort and pack windows well


def _posts(chunk: pd.DataFrame) -> tuple[list[list[str]], Any]:
    """(words of every post, ``(texts, word offsets)`` for raw text or ``None`` for pre-split tokens)."""
    if "tokens" in chunk.columns:
        return chunk["tokens"].tolist(), None
    texts = chunk["text"].tolist()
    words = [split_words(t) for t in texts]
    return [[w.text for w in ws] for ws in words], (texts, words)


def span_records(ids, tokens, tags, raw) -> list[dict]:
    """``{"ID", "spans": [{"label", "start_token", "end_token", "text"[, "start_char", "end_char"]}]}``."""
    from medsift.scoring.impacts import spans_from_bio

    records = []
    for n, (ident, words, post_tags) in enumerate(zip(ids, tokens, tags, strict=True)):
        spans = []
        for kind, start, end in spans_from_bio(post_tags):
            span: dict[str, Any] = {"label": kind, "start_token": start, "end_token": end}
            if raw is not None:
                text, ws = raw[0][n], raw[1][n]
                span.update(start_char=ws[start].start, end_char=ws[end - 1].end)
                span["text"] = text[span["start_char"] : span["end_char"]]
            else:
                span["text"] = " ".join(words[start:end])
            spans.append(span)
        records.append({"ID": ident, "spans": spans})
    return records


def _append_json_array(fh: IO[str], records: list[dict], *, first: bool) -> None:
    """Records appended to a JSON array; with the closing ``"\\n]\\n"`` the file is exactly
    ``json.dumps(all_records, indent=1, ensure_ascii=False) + "\\n"`` (the format from before streaming)."""
    for n, record in enumerate(records):
        text = json.dumps(record, indent=1, ensure_ascii=False)
        fh.write(("[\n" if first and n == 0 else ",\n") + "\n".join(" " + line for line in text.split("\n")))


def predict_stream(
    run_dir: str | Path | None,
    input_path: str | Path,
    output: str | Path,
    *,
    spans_json: str | Path | None = None,
    batch_size: int | None = None,
    backend: str = "torch",
    chunk_rows: int = CHUNK_ROWS,
    quiet: bool = False,
    tagger: Any = None,
) -> dict[str, Any]:
    """Tag ``input_path`` chunk by chunk into ``output``; see :func:`predict_file`."""
    from medsift.engine.backends import load_span_tagger
    from medsift.impacts.model import progress_bars
    from medsift.impacts.predict import score_tags

    input_path, output = Path(input_path), Path(output)
    chunks = read_impact_chunks(input_path, chunk_rows)
    first = next(chunks, None)  # a file refused at its header or first rows is refused before a model loads
    if first is None:  # every reader raises on an empty file first; kept in case one does not
        raise MedsiftError("file has no rows", file=input_path)
    if tagger is None:
        with progress_bars(not quiet):
            tagger = load_span_tagger(run_dir, backend=backend)
    rows_in = rows_out = n_tokens = n_spans = 0
    # Scoring needs every gold and predicted tag list: they stay in memory, the size of the output itself.
    gold: list[list[str]] = []
    predicted: list[list[str]] = []
    labelled = "ner_tags" in first.columns and first["ner_tags"].iloc[0] is not None
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(tqdm(disable=quiet, desc="posts", unit="post"))
        fh = stack.enter_context(atomic_write(output))
        sfh = stack.enter_context(atomic_write(spans_json)) if spans_json is not None else None
        write_csv_rows(fh, SUBMISSION_COLUMNS, [])
        for chunk in itertools.chain([first], chunks):
            rows_in += len(chunk)
            ids = chunk["ID"].tolist()
            tokens, raw = _posts(chunk)
            tags = tagger.tag(tokens, batch_size=batch_size)
            for row, words, post_tags in zip(chunk.index, tokens, tags, strict=True):
                if len(words) != len(post_tags):
                    raise MedsiftError(
                        f"{len(words)} tokens but {len(post_tags)} predicted tags",
                        file=input_path,
                        row=int(row),
                    )
            rows = submission_rows(output, ids, tags, token_lists=tokens, first_row=rows_out + 1)
            write_csv_rows(fh, None, rows)
            if sfh is not None:
                _append_json_array(sfh, span_records(ids, tokens, tags, raw), first=rows_out == 0)
            rows_out += len(rows)
            n_tokens += sum(len(t) for t in tokens)
            n_spans += sum(sum(1 for t in post if t.startswith("B-")) for post in tags)
            if labelled:
                gold.extend(chunk["ner_tags"].tolist())
                predicted.extend(tags)
            bar.update(len(chunk))
        if sfh is not None:
            sfh.write("\n]\n")
        if rows_out != rows_in:  # checked before the rename
            raise MedsiftError(
                f"internal error: {rows_out} output rows for {rows_in} input rows", file=output
            )
    result: dict[str, Any] = {
        "rows": rows_out,
        "tokens": n_tokens,
        "spans": n_spans,
        "members": len(tagger.members),
    }
    if labelled:
        result["scores"] = score_tags(gold, predicted)
    return result


def predict_file(
    run_dir: Path,
    input_path: Path,
    output: Path,
    *,
    spans_json: Path | None = None,
    batch_size: int | None = None,
    backend: str = "torch",
    quiet: bool = False,
) -> dict:
    """Tag a file and write ``ID,predicted_ner_tags``; return counts, and strict/relaxed scores when labelled.

    Returns ``{"rows", "tokens", "spans", "members"}`` plus ``"scores"`` (``ImpactScores.to_dict()``: strict and
    relaxed, as ``medsift score`` prints them) when the input carries gold ``ner_tags``.

    ``input_path``: the official CSV (``ID,tokens`` with optional ``ner_tags``), Parquet with ``tokens`` (and
    ``ID``, optional ``ner_tags``) or with ``text``, CoNLL (``.conll``, ``.bio``, ``.iob``, ``.iob2``), plain
    ``.txt`` (one post per non-empty line; ID = line number) or ``.jsonl``/``.json`` with ``text`` (and
    optional ``id``). The file is read and tagged in chunks of posts, so it
    may be larger than memory. ``spans_json`` also writes each post's spans as a JSON array
    (``[{"ID", "spans": [{"label", "start_token", "end_token", "text"}, ...]}]``, with ``start_char`` and
    ``end_char`` for raw text). A progress bar counts posts (``quiet`` switches it off). ``backend="onnx"``
    runs the exported encoders on ONNX Runtime.
    """
    return predict_stream(
        run_dir,
        input_path,
        output,
        spans_json=spans_json,
        batch_size=batch_size,
        backend=backend,
        quiet=quiet,
    )
