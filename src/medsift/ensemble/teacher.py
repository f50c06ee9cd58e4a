"""Teacher probabilities for distillation: any ADE run that can score new rows (a classifier or an ensemble)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medsift.errors import MedsiftError
from medsift.runs import RunManifest


def teacher_probabilities(run_dir: str | Path, rows: pd.DataFrame, *, quiet: bool = True) -> np.ndarray:
    """P(ADE) of the teacher run for ``rows`` (frame with ``text`` and ``language``), in row order."""
    kind = RunManifest.load(run_dir).kind
    texts, languages = rows["text"].astype(str).tolist(), rows["language"].astype(str).tolist()
    if kind == "ade-classifier":
        from medsift.ade.predict import AdeClassifier

        return AdeClassifier.from_run(run_dir).predict(texts, languages, progress=not quiet).p_ade
    if kind == "ade-ensemble":
        from medsift.decision.ensemble import ensemble_probabilities

        p, _members, _policy = ensemble_probabilities(run_dir, texts, languages)
        return np.asarray(p, dtype=float)
    raise MedsiftError(f"a teacher must be an ADE classifier or ensemble run, not '{kind}'", file=run_dir)
