"""Score files larger than memory: read a chunk, validate it, score it, append it to a temporary output.

Inputs: CSV (official Task 1 columns or users' own posts), JSON lines, Parquet, read by
:func:`medsift.io.chunks.read_chunks` (impact taggers stream through :mod:`medsift.engine.tagger_stream`). Each
chunk is checked with ``medsift.io``'s rules (ids present and unique, across chunks too; texts not empty;
labels 0/1), so a file that ``medsift.io.read_ade_any`` refuses is refused here with the same row. The output
format follows the output suffix: ``.csv`` is the official submission (``id,predicted_label``), ``.jsonl``
and ``.parquet`` hold ``id, language, p_ade, predicted_label, threshold``. Rows come out in input order,
exactly one per input id, and the output only appears (atomic rename) once that has been checked.
"""

from __future__ import annotations

import contextlib
import csv
import json
from collections import Counter
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from medsift.engine.resume import RESUMABLE, ResumableOutputs
from medsift.errors import MedsiftError
from medsift.io.ade import count_blank
from medsift.io.atomic import atomic_write
from medsift.io.chunks import count_rows, read_chunks
from medsift.io.formats import FORMATS, format_of

__all__ = ["predict_file", "predict_stream", "read_chunks"]
_RECORD_COLUMNS = ["id", "language", "p_ade", "predicted_label", "threshold"]


class _Writer:
    """Appends scored chunks to an open temporary file in the format the output suffix names."""

    def __init__(self, fh: IO, fmt: str, *, header: bool = True):
        self.fh, self.format, self.parquet = fh, fmt, None
        if fmt == "csv" and header:
            _csv_row(fh, ["id", "predicted_label"])

    def write(self, records: pd.DataFrame) -> None:
        if self.format == "csv":
            write_rows = (
                (i, int(label)) for i, label in zip(records["id"], records["predicted_label"], strict=True)
            )
            for row in write_rows:
                _csv_row(self.fh, list(row))
        elif self.format == "json":
            for record in records.to_dict(orient="records"):
                self.fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(records, preserve_index=False)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.fh, table.schema)
            self.parquet.write_table(table)

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()


def predict_stream(
    run_dir: str | Path,
    input_path: str | Path,
    output: str | Path,
    *,
    backend: str = "torch",
    chunk_rows: int = 4096,
    probabilities: str | Path | None = None,
    batch_tokens: int | None = None,
    quiet: bool = False,
    classifier: Any = None,
) -> dict[str, Any]:
    """Score ``input_path`` chunk by chunk into ``output``; returns rows, positives, truncated (and scores)."""
    from tqdm.auto import tqdm

    from medsift.decision import threshold_groups
    from medsift.engine.backends import load_classifier

    input_path, output = Path(input_path), Path(output)
    probabilities = Path(probabilities) if probabilities is not None else None
    suffix = output.suffix.lower()
    fmt = format_of(output)
    if suffix not in FORMATS[fmt].suffixes or not FORMATS[fmt].prediction_output:
        raise MedsiftError("output must end in .csv, .jsonl or .parquet", file=output)
    classifier = classifier or load_classifier(run_dir, backend=backend)
    ids_out, gold, predicted, languages = [], [], [], []
    counts: dict[str, Any] = {"truncated": 0, "blank": 0, "groups": {}, "labelled": False}
    skipped = 0  # rows scored by an earlier, killed run of the same command (resumed, not scored again)
    with contextlib.ExitStack() as stack:
        total = None if quiet else count_rows(input_path)  # a total gives the bar its ETA
        bar = stack.enter_context(
            tqdm(total=total, disable=quiet, desc="posts", unit="post")
        )  # closed on errors
        if suffix in RESUMABLE:
            fingerprint = _fingerprint(
                run_dir, input_path, suffix, probabilities, backend, chunk_rows, batch_tokens
            )
            outputs = stack.enter_context(ResumableOutputs(output, probabilities, fingerprint))
            fh, pfh, done = outputs.fh, outputs.pfh, outputs.done_chunks
            counts = outputs.counters or counts
            predicted = outputs.done_labels(suffix)
        else:
            outputs, done = None, 0
            fh = stack.enter_context(atomic_write(output, "wb" if fmt == "parquet" else "w"))
            pfh = stack.enter_context(atomic_write(probabilities)) if probabilities is not None else None
        writer = _Writer(fh, fmt, header=not done)
        for k, chunk in enumerate(read_chunks(input_path, chunk_rows)):
            ids_out.extend(chunk["id"].tolist())
            gold.extend(chunk["label"].tolist())
            languages.extend(chunk["language"].tolist())
            if k < done:  # validated again, not scored again
                skipped += len(chunk)
                bar.update(len(chunk))
                continue
            pred = _score_chunk(classifier, chunk, batch_tokens, input_path)
            records = pd.DataFrame(
                {
                    "id": chunk["id"].to_numpy(),
                    "language": chunk["language"].to_numpy(),
                    "p_ade": pred.p_ade.astype(float),
                    "predicted_label": pred.labels.astype(int),
                    "threshold": np.asarray(pred.thresholds, dtype=float),
                }
            )[_RECORD_COLUMNS]
            writer.write(records)
            if pfh is not None:
                if k == 0:  # the label column is written when the first chunk is labelled
                    counts["labelled"] = bool(chunk["label"].notna().all())
                _write_probabilities(pfh, chunk, pred, labelled=counts["labelled"], first=k == 0)
            predicted.extend(pred.labels.tolist())
            counts["truncated"] += pred.n_truncated
            counts["blank"] += count_blank(chunk["text"])
            for group in threshold_groups(chunk["id"].astype(str), chunk["language"].astype(str)):
                counts["groups"][group] = counts["groups"].get(group, 0) + 1
            if outputs is not None:
                outputs.commit(k + 1, counts)
            bar.update(len(chunk))
        writer.close()
        if len(predicted) != len(ids_out) or len(set(ids_out)) != len(ids_out):  # checked before the rename
            raise MedsiftError(
                f"internal error: {len(predicted)} output rows for {len(ids_out)} input rows", file=output
            )
    ids_in, truncated, blank, groups = (
        len(ids_out),
        counts["truncated"],
        counts["blank"],
        Counter(counts["groups"]),
    )
    result: dict[str, Any] = {
        "rows": ids_in,
        "positives": int(sum(predicted)),
        "truncated": truncated,
        "blank_posts": blank,
        **_fallbacks(Path(run_dir), groups),
    }
    if skipped:
        result["resumed_rows"] = skipped
    if gold and all(not pd.isna(g) for g in gold):
        from medsift.scoring import score_ade

        frame = pd.DataFrame({"id": ids_out, "label": [int(g) for g in gold], "language": languages})
        result["scores"] = score_ade(
            frame, pd.DataFrame({"id": ids_out, "predicted_label": predicted})
        ).to_dict()
    return result


def _score_chunk(classifier: Any, chunk: pd.DataFrame, batch_tokens: int | None, input_path: Path) -> Any:
    pred = classifier.predict(
        chunk["text"].tolist(),
        chunk["language"].tolist(),
        batch_tokens=batch_tokens,
        ids=chunk["id"].astype(str).tolist(),
    )
    if len(pred.labels) != len(chunk):
        raise MedsiftError(
            f"internal error: {len(pred.labels)} predictions for {len(chunk)} rows", file=input_path
        )
    return pred


def _fingerprint(
    run_dir, input_path: Path, suffix: str, probabilities, backend, chunk_rows, batch_tokens
) -> dict:
    """What must not change for a killed prediction to be resumed: the run, the input file, the options."""
    run, stat = Path(run_dir).resolve(), input_path.stat()
    manifest = run / "medsift_run.json"
    return {
        "run": str(run),
        "run_manifest_mtime_ns": manifest.stat().st_mtime_ns if manifest.exists() else None,
        "input": str(input_path.resolve()),
        "input_size": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "output_format": suffix,
        "probabilities": None if probabilities is None else str(Path(probabilities).resolve()),
        "backend": backend,
        "chunk_rows": chunk_rows,
        "batch_tokens": batch_tokens,
    }


def _fallbacks(run_dir: Path, groups: Counter[str]) -> dict[str, Any]:
    """Rows whose threshold group has no tuned threshold of its own (per-language runs), as ensembles report."""
    from medsift.runs import read_thresholds

    if not (run_dir / "thresholds.json").is_file():
        return {}
    policy = read_thresholds(run_dir)
    if policy.mode != "per_language":
        return {}
    fell_back = sorted(g for g in groups if g not in policy.thresholds)
    return {"fallback_rows": sum(groups[g] for g in fell_back), "fallback_groups": fell_back}


def _csv_row(fh: IO, row: list[Any]) -> None:
    # a lone \r in a field is only safe when every field is quoted (see medsift.io._load.write_csv_rows)
    quoting = csv.QUOTE_ALL if any("\r" in str(cell) for cell in row) else csv.QUOTE_MINIMAL
    csv.writer(fh, lineterminator="\n", quoting=quoting).writerow(row)


def _write_probabilities(fh: IO, chunk: pd.DataFrame, pred: Any, *, labelled: bool, first: bool) -> None:
    """``medsift.io.write_probabilities``'s columns, appended chunk by chunk."""
    if first:
        members = [f"p_ade__{name}" for name in pred.per_seed]
        _csv_row(fh, ["id", "language", "p_ade", *(["label"] if labelled else []), *members])
    for i in range(len(chunk)):
        label = chunk["label"].iloc[i]
        row = [chunk["id"].iloc[i], chunk["language"].iloc[i], repr(float(pred.p_ade[i]))]
        row += ["" if pd.isna(label) else str(int(label))] if labelled else []
        row += [repr(float(p[i])) for p in pred.per_seed.values()]
        _csv_row(fh, row)


def predict_file(
    run_dir: Path,
    input_path: Path,
    output: Path,
    *,
    probabilities: Path | None = None,
    backend: str = "torch",
    engine: str = "local",
    quiet: bool = False,
) -> dict[str, Any]:
    """``medsift predict`` for ADE classifier runs: streaming locally, or a folder of shards on Ray."""
    if engine == "ray":
        from medsift.engine.ray_engine import predict_shards_ray

        if probabilities is not None:
            raise MedsiftError("--probabilities is not used with --engine ray (each shard gets its own file)")
        return predict_shards_ray(
            run_dir, input_path, output, backend=backend, probabilities=True, quiet=quiet
        )
    if engine != "local":
        raise MedsiftError(f"unknown engine '{engine}'; choose local or ray")
    return predict_stream(
        run_dir, input_path, output, backend=backend, probabilities=probabilities, quiet=quiet
    )
