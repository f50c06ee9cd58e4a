"""Bulk scoring of a folder of shards on Ray Data: one output file per shard, one model per worker.

The unit of work is a shard: each Ray worker (an actor of a callable class, so the classifier is loaded once
per worker, not once per batch) streams its shard through :func:`medsift.engine.streaming.predict_stream`,
which validates it with ``medsift.io``'s rules and writes the output atomically in input order. A shard's
output is therefore byte-identical to local scoring of the same file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from medsift.errors import MedsiftError
from medsift.io.formats import suffixes

SHARD_SUFFIXES = suffixes(ade_posts=True)
# impact taggers also read plain-text posts and CoNLL files
TAGGER_SHARD_SUFFIXES = suffixes(tagger_input=True)


class _ShardScorer:
    """Ray Data callable class: loads the classifier in ``__init__`` (once per actor).

    With ``predictor`` (a run kind's file predictor, :func:`medsift.kinds.predict_run_file` for an ensemble, a
    tagger, an LLM run) each shard goes through that function, the one ``medsift predict`` calls, so a shard's
    output is the file ``medsift predict`` writes for it; that function loads the run's models per shard.
    """

    def __init__(self, run_dir: str, backend: str, threads: int, predictor: Callable | None = None):
        import torch

        torch.set_num_threads(threads)
        self.run_dir, self.backend, self.classifier, self.predict = run_dir, backend, None, predictor
        if predictor is None:
            from medsift.engine.backends import load_classifier

            self.classifier = load_classifier(run_dir, backend=backend, device="cpu", threads=threads)

    def _score(self, shard: str, output: str, probs: str) -> dict[str, Any]:
        if self.predict is None:
            from medsift.engine.streaming import predict_stream

            return predict_stream(
                self.run_dir,
                shard,
                output,
                probabilities=probs or None,
                quiet=True,
                classifier=self.classifier,
            )
        options = {"probabilities": Path(probs) if probs else None, "quiet": True, "backend": self.backend}
        return self.predict(Path(self.run_dir), Path(shard), Path(output), **options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows, errors = [], []
        for shard, output, probs in zip(batch["shard"], batch["output"], batch["probabilities"], strict=True):
            try:
                result = self._score(shard, output, probs)
            except MedsiftError as exc:  # sent back as data: the driver re-raises it as a one-line error
                rows.append(0)
                errors.append(exc.render())
                continue
            rows.append(result["rows"])
            errors.append("")
        return {
            "shard": batch["shard"],
            "output": batch["output"],
            "rows": np.array(rows, dtype=np.int64),
            "error": np.array(errors, dtype=object),
        }


def _quiet_ray() -> None:
    import os

    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # the C++ core worker's lines on stderr
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")  # Ray Data resets its loggers' levels from this
    logging.getLogger("ray").setLevel(logging.ERROR)


def list_shards(shard_dir: Path, suffixes: tuple[str, ...] = SHARD_SUFFIXES) -> list[Path]:
    """The shard files of a folder (csv, jsonl, parquet; taggers also txt and CoNLL), sorted by name."""
    if not shard_dir.is_dir():
        raise MedsiftError("--engine ray expects a folder of shard files as INPUT", file=shard_dir)
    shards = sorted(p for p in shard_dir.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not shards:
        raise MedsiftError(f"no shard files ({', '.join(suffixes)}) in this folder", file=shard_dir)
    names = [p.stem for p in shards]
    if len(set(names)) != len(names):
        raise MedsiftError(
            "two shards share a name (e.g. a.csv and a.jsonl): their outputs would collide", file=shard_dir
        )
    return shards


def predict_shards_ray(
    run_dir: str | Path,
    shard_dir: str | Path,
    out_dir: str | Path,
    *,
    backend: str = "torch",
    num_cpus: int | None = None,
    workers: int | None = None,
    probabilities: bool = False,
    predictor: Callable | None = None,
    task: str = "ade",
    quiet: bool = False,
) -> dict[str, Any]:
    """Score every shard of ``shard_dir`` into ``out_dir/<shard name>`` (same format; CSV = submission).

    With ``probabilities`` each shard also gets ``<stem>.probabilities.csv``. Starts a local Ray instance
    (``num_cpus``) unless one is already running, and stops it again if it started it. ``predictor``
    (:func:`medsift.kinds.predict_run_file`) scores the shards of a run that is not an ADE classifier (an ensemble, an impact
    tagger, an LLM run) with that run kind's ``predict_file``; each shard's submission is then
    ``out_dir/<shard stem>.csv``.
    """
    import ray

    shard_dir, out_dir = Path(shard_dir), Path(out_dir)
    shards = list_shards(shard_dir, TAGGER_SHARD_SUFFIXES if task == "impacts" else SHARD_SUFFIXES)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = not ray.is_initialized()
    if quiet:  # Ray's start-up lines, Ray Data's progress log and the core worker's own log lines
        _quiet_ray()
    if started:
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR if quiet else logging.INFO,
        )
    if quiet:
        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray").setLevel(logging.ERROR)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        workers = max(1, min(workers or cpus, len(shards)))
        items = [
            {
                "shard": str(shard),
                "output": str(out_dir / (f"{shard.stem}.csv" if predictor else shard.name)),
                "probabilities": str(out_dir / f"{shard.stem}.probabilities.csv") if probabilities else "",
            }
            for shard in shards
        ]
        dataset = ray.data.from_items(items).map_batches(
            _ShardScorer,
            fn_constructor_kwargs={
                "run_dir": str(run_dir),
                "backend": backend,
                "threads": max(1, cpus // workers),
                "predictor": predictor,
            },
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
        )
        done = dataset.take_all()
    finally:
        if started:
            ray.shutdown()
    failed = [str(r["error"]) for r in done if r["error"]]
    if failed:
        raise MedsiftError(f"{len(failed)} shard(s) failed; first: {failed[0]}", file=shard_dir)
    return {
        "rows": int(sum(r["rows"] for r in done)),
        "shards": len(done),
        "outputs": sorted(r["output"] for r in done),
    }
