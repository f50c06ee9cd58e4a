"""Distillation: one student learns an ADE run's probabilities (a classifier or an ensemble) on its training rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medsift.errors import MedsiftError
from medsift.runs import RunManifest


@dataclass(frozen=True)
class RunTeacher:
    """A teacher run folder; :func:`medsift.ade.train.train` asks it for P(ADE) of the training rows."""

    path: Path

    def probabilities(self, rows: pd.DataFrame, *, quiet: bool = True) -> np.ndarray:
        return teacher_probabilities(self.path, rows, quiet=quiet)


def teacher_probabilities(run_dir: str | Path, rows: pd.DataFrame, *, quiet: bool = True) -> np.ndarray:
    """P(ADE) of the teacher run for ``rows`` (frame with ``text`` and ``language``), in row order."""
    kind = RunManifest.load(run_dir).kind
    texts, languages = rows["text"].astype(str).tolist(), rows["language"].astype(str).tolist()
    if kind == "ade-classifier":
        from medsift.ade.predict import AdeClassifier

        return AdeClassifier.from_run(run_dir).predict(texts, languages, progress=not quiet).p_ade
    if kind == "ade-ensemble":
        from medsift.ensemble.ade import ensemble_probabilities

        p, _members, _policy = ensemble_probabilities(run_dir, texts, languages)
        return np.asarray(p, dtype=float)
    raise MedsiftError(f"a teacher must be an ADE classifier or ensemble run, not '{kind}'", file=run_dir)


def distill(config, teacher: str | Path, *, run_dir: Path, quiet: bool = False) -> Path:
    """Train the student ``config`` (task ade, method encoder) on ``teacher``'s soft labels into ``run_dir``."""
    from medsift.ade.train import train

    if (config.task, config.method) != ("ade", "encoder"):
        raise MedsiftError(
            "distillation trains an ADE encoder: the student config needs task: ade, method: encoder"
        )
    return train(config, run_dir=run_dir, quiet=quiet, teacher=RunTeacher(Path(teacher)))


def distill_config(
    teacher: str | Path,
    config: str,
    *,
    overrides: list[str] | tuple[str, ...] = (),
    run_dir: Path | None = None,
    quiet: bool = False,
) -> Path:
    """``medsift distill``: the student config (a file or shipped name) checked, then trained in a locked folder."""
    from medsift.config import check_data_files, load_config
    from medsift.runs import locked_run_dir

    student = load_config(config, list(overrides))
    if (student.task, student.method) != ("ade", "encoder"):
        raise MedsiftError(
            "distillation trains an ADE encoder: the student config needs task: ade, method: encoder"
        )
    check_data_files(student, config)
    with locked_run_dir(run_dir or Path(student.output_dir)) as folder:
        return distill(student, teacher, run_dir=folder, quiet=quiet)
