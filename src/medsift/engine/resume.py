"""Resumable outputs for bulk prediction: a killed ``medsift predict`` continues from its last finished chunk.

While it runs, ``predict`` writes ``.OUT.partial`` (and ``.PROBS.partial``) beside the outputs and, after every
chunk, fsyncs them and records in ``.OUT.resume.json`` how many chunks are done, the byte length of each
partial file at that point, and the counters of the rows so far. Started again with the same run, input (same
size and modification time) and options, it truncates the partial files to the recorded lengths (dropping a
chunk that was half-written when it was killed), re-reads and re-validates the earlier chunks without scoring
them, and scores the rest. The finished files are renamed into place, so the output is byte-identical to an
uninterrupted run's and every post is scored once. A run that fails on bad input or a crash (an exception)
removes its partial files, as an atomic write does; only a kill (or Ctrl-C) leaves them to resume from.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import IO, Any

from medsift.io.atomic import atomic_write_text, check_writable, current_umask, prepare_output

RESUMABLE = {".csv", ".jsonl", ".ndjson", ".json"}  # appendable formats (Parquet is not)


def _hidden(path: Path, suffix: str) -> Path:
    return path.parent / f".{path.name}.{suffix}"


class ResumableOutputs:
    """The submission (and probability) file of a chunked prediction, resumable after a kill."""

    def __init__(self, output: Path, probabilities: Path | None, fingerprint: dict[str, Any]):
        self.output, self.probabilities, self.fingerprint = output, probabilities, fingerprint
        self.state_path = _hidden(output, "resume.json")
        self.parts = [_hidden(output, "partial")] + (
            [_hidden(probabilities, "partial")] if probabilities is not None else []
        )
        self.done_chunks = 0
        self.counters: dict[str, Any] = {}
        self.files: list[IO] = []

    # -- opening ----------------------------------------------------------------------------------------

    def __enter__(self) -> ResumableOutputs:
        for target in (self.output, self.probabilities):
            if target is not None:
                check_writable(target)
                prepare_output(target)
        state = self._previous_state()
        lengths = state["bytes"] if state else [0] * len(self.parts)
        for part, length in zip(self.parts, lengths, strict=True):
            raw = open(part, "r+b" if state else "wb")
            os.ftruncate(raw.fileno(), length)  # drops a chunk that was half-written at the kill
            raw.seek(length)
            self.files.append(io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=True))
        if state:
            self.done_chunks, self.counters = state["chunks"], state["counters"]
        return self

    def _previous_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        if state.get("fingerprint") != self.fingerprint or not all(p.is_file() for p in self.parts):
            return None
        sizes = [p.stat().st_size for p in self.parts]
        if len(state.get("bytes", [])) != len(self.parts) or any(
            s < n for s, n in zip(sizes, state["bytes"], strict=True)
        ):
            return None
        return state

    @property
    def fh(self) -> IO:
        return self.files[0]

    @property
    def pfh(self) -> IO | None:
        return self.files[1] if len(self.files) > 1 else None

    # -- progress ---------------------------------------------------------------------------------------

    def done_labels(self, suffix: str) -> list[int]:
        """The predicted labels of the chunks finished before the kill, read back from the partial output."""
        if not self.done_chunks:
            return []
        self.fh.flush()
        with open(self.parts[0], encoding="utf-8", newline="") as fh:
            if suffix == ".csv":
                rows = list(csv.reader(fh))[1:]
                return [int(row[1]) for row in rows]
            return [int(json.loads(line)["predicted_label"]) for line in fh if line.strip()]

    def commit(self, chunks: int, counters: dict[str, Any]) -> None:
        """Make the chunks written so far durable, then record them (a kill after this keeps them)."""
        lengths = []
        for fh in self.files:
            fh.flush()
            os.fsync(fh.fileno())
            lengths.append(os.fstat(fh.fileno()).st_size)
        state = {"fingerprint": self.fingerprint, "chunks": chunks, "bytes": lengths, "counters": counters}
        atomic_write_text(self.state_path, json.dumps(state) + "\n")

    # -- closing ----------------------------------------------------------------------------------------

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            for fh in self.files:
                fh.flush()
                os.fchmod(fh.fileno(), 0o666 & ~current_umask())
                os.fsync(fh.fileno())
                fh.close()
            targets = [self.output] + ([self.probabilities] if self.probabilities is not None else [])
            for part, target in zip(self.parts, targets, strict=True):
                os.replace(part, target)
            self.state_path.unlink(missing_ok=True)
            return
        for fh in self.files:
            fh.close()
        if issubclass(kind, Exception):  # bad input or a crash: nothing to resume, nothing left behind
            for path in (*self.parts, self.state_path):
                path.unlink(missing_ok=True)
