"""A zero-shot run folder: its val and calib rows scored (no training), and the object that scores new posts.

The folder keeps the classifier contract (``medsift_run.json`` kind ``ade-classifier`` with ``extra.method``
``nli`` or ``gliner``, ``config.yaml``, ``splits.csv``, ``val_probabilities.csv``, ``calib_probabilities.csv``,
``thresholds.json``, ``metrics.json``), so every command that takes an ADE classifier takes it. The val and calib
rows are carved by the same function as every other member's, so they line up in an ensemble; a GLiNER run adds
its per-post features as ``feat__*`` columns (for ``--method stacking``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from medsift.ade.classifier import RunClassifier
from medsift.ade.zeroshot.config import AdeGlinerConfig, AdeNliConfig

log = logging.getLogger(__name__)
SEED = "seed0"


def build_scorer(config: AdeNliConfig | AdeGlinerConfig, *, gliner_model: Any = None) -> Any:
    if isinstance(config, AdeNliConfig):
        from medsift.ade.zeroshot.nli import NliScorer

        return NliScorer(config)
    from medsift.ade.zeroshot.gliner import GlinerScorer

    return GlinerScorer(config, model=gliner_model)


def score_posts(
    scorer: Any, texts: list[str], languages: list[str], *, progress: bool = False
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(P(ADE), per-post features) from either scorer (the NLI scorer has no features)."""
    out = scorer.score(texts, languages, progress=progress)
    return out if isinstance(out, tuple) else (out, {})


def train(
    config: AdeNliConfig | AdeGlinerConfig,
    *,
    run_dir: Path | None = None,
    quiet: bool = False,
    gliner_model: Any = None,
) -> Path:
    """Score the run's val and calib rows with the zero-shot model and write the run folder (no training)."""
    from medsift.ade.data import load_splits, model_texts
    from medsift.ade.train import probability_frame
    from medsift.decision import ThresholdPolicy, score_labels
    from medsift.io import write_probabilities
    from medsift.io.atomic import atomic_write
    from medsift.runs import RunManifest, hash_files, write_json
    from medsift.trainer import start_run

    run_dir = Path(run_dir or config.output_dir)
    start_run(run_dir, config, write=True)
    # the same carving as every member of this data section; a zero-shot run trains on nothing, so its
    # `languages` restrict where the ensemble uses it, not which training rows it keeps
    splits = load_splits(config.model_copy(update={"languages": None}))  # type: ignore[arg-type]
    with atomic_write(run_dir / "splits.csv") as fh:
        splits.table().assign(split=lambda f: f["split"].where(f["split"] != "train", "unused")).to_csv(
            fh, index=False
        )
    scorer = build_scorer(config, gliner_model=gliner_model)
    scores: dict[str, float] = {}
    for name, frame in (("val", splits.val), ("calib", splits.calib)):
        if not len(frame):
            continue
        if not quiet:
            log.info("zero-shot scoring of %d %s rows", len(frame), name)
        languages = frame["language"].astype(str).tolist()
        p, features = score_posts(
            scorer, model_texts(frame, config.data.normalize), languages, progress=not quiet
        )
        out = probability_frame(frame, p)
        for feature, values in features.items():
            out[f"feat__{feature}"] = values
        write_probabilities(run_dir / f"{name}_probabilities.csv", out)
        scores[f"{name}_f1"] = score_labels(
            frame["label"].astype(int).to_numpy(), (p >= config.threshold).astype(int)
        )
    policy = ThresholdPolicy(mode="global", fallback=config.threshold, fallback_rule="global")
    write_json(run_dir / "thresholds.json", policy.to_dict())
    write_json(
        run_dir / "metrics.json", {"seeds": {"0": {"eval_f1": scores.get("val_f1")}}, "zero_shot": scores}
    )
    extra: dict[str, Any] = {
        "method": config.method,
        "model": config.model.name,
        "zero_shot": True,
        "splits": {k: len(getattr(splits, k)) for k in ("val", "calib")},
    }
    if config.languages:
        extra["languages"] = sorted(config.languages)
    RunManifest(
        kind="ade-classifier", task="ade", seeds=[0], data=hash_files(splits.files), extra=extra
    ).save(run_dir)
    return run_dir


class ZeroShotClassifier(RunClassifier):
    """A zero-shot run with :class:`medsift.ade.predict.AdeClassifier`'s ``predict`` (model loaded on first use);
    a GLiNER run's prediction carries its per-post ``features``."""

    def __init__(self, run_dir: Path, config: AdeNliConfig | AdeGlinerConfig, policy: Any):
        self.run_dir, self.config, self.policy = run_dir, config, policy
        self._scorer: Any = None

    @classmethod
    def from_run(cls, run_dir: str | Path, config: AdeNliConfig | AdeGlinerConfig) -> ZeroShotClassifier:
        from medsift.runs import read_thresholds

        return cls(Path(run_dir), config, read_thresholds(run_dir))

    def score(
        self, texts: list[str], languages: list[str] | None, *, progress: bool, batch_tokens: int | None
    ):
        import pandas as pd

        from medsift.ade.data import model_texts

        if self._scorer is None:
            self._scorer = build_scorer(self.config)
        langs = list(languages) if languages is not None else [""] * len(texts)
        frame = pd.DataFrame({"text": list(texts)})
        p, features = score_posts(
            self._scorer, model_texts(frame, self.config.data.normalize), langs, progress=progress
        )
        truncated = int(getattr(self._scorer, "n_truncated", 0))  # GLiNER applies its own word limit
        return {SEED: p}, truncated, features or {}
