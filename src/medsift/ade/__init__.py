"""Task 1: the ADE sequence classifier (training, inference, the Python API)."""

from __future__ import annotations

from medsift.ade.config import AdeConfig

__all__ = ["AdeClassifier", "AdeConfig"]


def __getattr__(name: str):  # keep `import medsift.ade` light: torch loads only when a model is needed
    if name == "AdeClassifier":
        from medsift.ade.predict import AdeClassifier

        return AdeClassifier
    raise AttributeError(name)
