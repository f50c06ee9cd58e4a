"""Choose how a run is executed: PyTorch (SDPA attention, inference mode) or ONNX Runtime (after export)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medsift.errors import MedsiftError

BACKENDS = ("torch", "onnx")


def load_classifier(
    run_dir: str | Path, *, backend: str = "torch", device: str | None = None, threads: int | None = None
) -> Any:
    """An object with ``AdeClassifier``'s ``.predict(texts, languages, progress=, batch_tokens=)``.

    ``backend="onnx"`` needs ``medsift export RUN_DIR`` first; it picks the int8 model when one was exported.
    """
    if backend == "torch" or _is_ngram_run(run_dir):  # an n-gram run is plain numpy under either backend
        from medsift.ade.predict import AdeClassifier

        return AdeClassifier.from_run(run_dir, device=device)
    if backend == "onnx":
        from medsift.engine.onnx import OnnxAdeClassifier

        return OnnxAdeClassifier.from_run(run_dir, threads=threads)
    raise MedsiftError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")


def _is_ngram_run(run_dir: str | Path) -> bool:
    from medsift.config import read_yaml

    config = Path(run_dir) / "config.yaml"
    return config.is_file() and (read_yaml(config) or {}).get("method") == "ngram"


def load_span_tagger(run_dir: str | Path, *, backend: str = "torch", threads: int | None = None) -> Any:
    """A :class:`medsift.impacts.predict.SpanTagger` for a tagger run or a tagger ensemble.

    ``backend="onnx"`` needs ``medsift export`` of every member run; it picks int8 models when exported.
    """
    from medsift.impacts.predict import SpanTagger

    if backend == "torch":
        return SpanTagger.from_run(run_dir)
    if backend != "onnx":
        raise MedsiftError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    from medsift.engine.onnx_tagger import onnx_span_tagger
    from medsift.runs import RunManifest

    if RunManifest.load(run_dir).kind != "impacts-ensemble":
        return onnx_span_tagger(run_dir, threads=threads)
    from medsift.impacts.ensemble import member_runs

    members = [m for run in member_runs(run_dir) for m in onnx_span_tagger(run, threads=threads).members]
    return SpanTagger(members)
