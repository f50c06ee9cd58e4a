"""medsift: health signals in social media (ADE detection and opioid-impact span tagging).

The Python API: ``medsift.train(config)`` fills a run folder from a config and returns the :class:`~medsift.runs.Run`;
``medsift.load(run_dir)`` gives the predictor of any finished run (see :mod:`medsift.kinds`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load", "train"]


def load(run_dir: str | Path, *, backend: str = "torch") -> Any:
    """The predictor of a finished run of any kind: ``predict(texts, languages)`` for ADE runs (classifier,
    n-gram, LLM, ensemble), ``tag(token_lists)`` for impact runs (tagger, tagger ensemble, LLM)."""
    from medsift.kinds import load as load_run

    return load_run(run_dir, backend=backend)


def train(config: Any, **options: Any) -> Any:
    """Train a config (a YAML path, a shipped config name, or a parsed config); returns the finished run.

    Options: ``run_dir``, ``overrides`` (``["training.num_train_epochs=1"]``), ``overwrite``, ``quiet``.
    """
    from medsift.kinds import train as train_config

    return train_config(config, **options)
