"""Score files larger than memory: read a chunk, validate it, score it, append it to a temporary output.

Inputs: CSV (official Task 1 columns or users' own posts), JSON lines, Parquet, read by
:func:`medsift.io.chunks.read_chunks` (impact taggers stream through :mod:`medsift.impacts.stream`). Each
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

from medsift.errors import MedsiftError
from medsift.io.ade import count_blank
from medsift.io.atomic import atomic_write
from medsift.io.chunks import JSON_SUFFIXES as _JSON
from medsift.io.chunks import read_chunks

__all__ = ["predict_file", "predict_stream", "read_chunks"]
_RECORD_COLUMNS = ["id", "language", "p_ade", "predicted_label", "threshold"]


class _Writer:
    """Appends scored chunks to an open temporary file in the format the output suffix names."""

    def __init__(self, fh: IO, suffix: str):
        self.fh, self.suffix, self.parquet = fh, suffix, None
        if suffix == ".csv":
            _csv_row(fh, ["id", "predicted_label"])

    def write(self, records: pd.DataFrame) -> None:
        if self.suffix == ".csv":
            write_rows = (
                (i, int(label)) for i, label in zip(records["id"], records["predicted_label"], strict=True)
            )
            for row in write_rows:
                _csv_row(self.fh, list(row))
        elif self.suffix in _JSON:
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
    suffix = output.suffix.lower()
    if suffix not in {".csv", ".parquet", *_JSON}:
        raise MedsiftError("output must end in .csv, .jsonl or .parquet", file=output)
    classifier = classifier or load_classifier(run_dir, backend=backend)
    ids_in, ids_out, gold, predicted, languages, truncated, labelled = 0, [], [], [], [], 0, False
    blank = 0  # posts that are empty or only whitespace: predicted like any other, and counted
    groups: Counter[str] = Counter()  # rows per threshold group (<lang> or <lang>_cadec)
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(tqdm(disable=quiet, desc="posts", unit="post"))  # closed on errors too
        fh = stack.enter_context(atomic_write(output, "wb" if suffix == ".parquet" else "w"))
        pfh = stack.enter_context(atomic_write(probabilities)) if probabilities is not None else None
        writer = _Writer(fh, suffix)
        for chunk in read_chunks(input_path, chunk_rows):
            ids_in += len(chunk)
            blank += count_blank(chunk["text"])
            groups.update(threshold_groups(chunk["id"].astype(str), chunk["language"].astype(str)))
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
                if not ids_out:  # the label column is written when the first chunk is labelled
                    labelled = bool(chunk["label"].notna().all())
                _write_probabilities(pfh, chunk, pred, labelled=labelled, first=not ids_out)
            ids_out.extend(chunk["id"].tolist())
            gold.extend(chunk["label"].tolist())
            languages.extend(chunk["language"].tolist())
            predicted.extend(pred.labels.tolist())
            truncated += pred.n_truncated
            bar.update(len(chunk))
        writer.close()
        if len(ids_out) != ids_in or len(set(ids_out)) != ids_in:  # checked before the rename
            raise MedsiftError(
                f"internal error: {len(ids_out)} output rows for {ids_in} input rows", file=output
            )
    result: dict[str, Any] = {
        "rows": ids_in,
        "positives": int(sum(predicted)),
        "truncated": truncated,
        "blank_posts": blank,
        **_fallbacks(Path(run_dir), groups),
    }
    if gold and all(not pd.isna(g) for g in gold):
        from medsift.scoring import score_ade

        frame = pd.DataFrame({"id": ids_out, "label": [int(g) for g in gold], "language": languages})
        result["scores"] = score_ade(
            frame, pd.DataFrame({"id": ids_out, "predicted_label": predicted})
        ).to_dict()
    return result


def _fallbacks(run_dir: Path, groups: Counter[str]) -> dict[str, Any]:
    """Rows whose threshold group has no tuned threshold of its own (per-language runs), as ensembles report."""
    from medsift.decision import ThresholdPolicy
    from medsift.runs import read_json

    path = run_dir / "thresholds.json"
    if not path.is_file():
        return {}
    policy = ThresholdPolicy.from_dict(read_json(path))
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
        return predict_shards_ray(run_dir, input_path, output, backend=backend, probabilities=True)
    if engine != "local":
        raise MedsiftError(f"unknown engine '{engine}'; choose local or ray")
    return predict_stream(
        run_dir, input_path, output, backend=backend, probabilities=probabilities, quiet=quiet
    )
