"""Choose how an ADE run is executed: PyTorch (SDPA attention, inference mode) or ONNX Runtime."""

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
    if backend == "torch":
        from medsift.ade.predict import AdeClassifier

        return AdeClassifier.from_run(run_dir, device=device)
    if backend == "onnx":
        from medsift.engine.onnx import OnnxAdeClassifier

        return OnnxAdeClassifier.from_run(run_dir, threads=threads)
    raise MedsiftError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
