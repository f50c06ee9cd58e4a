"""Load a trained ADE run and score posts: the Python API behind ``medsift predict``, the service and ensembles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medsift.ade.classifier import RunClassifier
from medsift.ade.config import AdeConfig
from medsift.ade.encode import EncodedPosts, encode_posts
from medsift.ade.inference import positive_probabilities
from medsift.config import parse_config, read_yaml
from medsift.decision import ThresholdPolicy
from medsift.errors import MedsiftError
from medsift.models.safe import require_safetensors
from medsift.preprocess import normalize_text
from medsift.runs import RunManifest, read_thresholds


class AdeClassifier(RunClassifier):
    """Every seed of a trained run, averaged, cut with the run's threshold policy."""

    def __init__(
        self,
        run_dir: Path,
        config: AdeConfig,
        models: dict[str, Any],
        tokenizer: Any,
        policy: ThresholdPolicy,
    ):
        self.run_dir, self.config, self.models, self.tokenizer, self.policy = (
            run_dir,
            config,
            models,
            tokenizer,
            policy,
        )

    @classmethod
    def from_run(cls, run_dir: str | Path, *, device: str | None = None) -> AdeClassifier:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        run_dir = Path(run_dir)
        manifest = RunManifest.load(run_dir)
        if manifest.kind != "ade-classifier":
            raise MedsiftError(f"expected an ADE classifier run, found kind '{manifest.kind}'", file=run_dir)
        config = parse_config(read_yaml(run_dir / "config.yaml"), source=run_dir / "config.yaml")
        if getattr(config, "method", "encoder") == "ngram":  # the classical member: same contract, no torch
            from medsift.ade.ngram import NgramClassifier

            return NgramClassifier.from_run(run_dir, config)  # type: ignore[return-value]
        if getattr(config, "method", "encoder") in ("nli", "gliner"):  # zero-shot scorers: nothing trained
            from medsift.ade.zeroshot.run import ZeroShotClassifier

            return ZeroShotClassifier.from_run(run_dir, config)  # type: ignore[return-value]
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        models = {}
        for seed in manifest.seeds:
            folder = run_dir / f"seed-{seed}" / "model"
            require_safetensors(folder)
            # use_safetensors: never unpickle weights from a run folder
            models[f"seed{seed}"] = (
                AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True)
                .to(device)
                .eval()
            )
        tokenizer = AutoTokenizer.from_pretrained(run_dir / f"seed-{manifest.seeds[0]}" / "model")
        return cls(run_dir, config, models, tokenizer, read_thresholds(run_dir))

    def score(
        self, texts: list[str], languages: list[str] | None, *, progress: bool, batch_tokens: int | None
    ) -> tuple[dict[str, np.ndarray], int, dict[str, np.ndarray]]:
        m = self.config.model
        if self.config.data.normalize:
            texts = [normalize_text(t) for t in texts]
        encoded = encode_posts(
            self.tokenizer,
            list(texts),
            max_length=m.max_length,
            policy=m.long_posts,
            head_fraction=m.head_fraction,
            stride=m.window_stride,
        )
        per_seed = self._score_members(encoded, batch_tokens=batch_tokens, progress=progress)
        return per_seed, encoded.n_too_long, {}

    def _score_members(
        self, encoded: EncodedPosts, *, batch_tokens: int | None, progress: bool
    ) -> dict[str, np.ndarray]:
        """P(ADE) per post for every seed model (the backend's part of :meth:`predict`)."""
        return {
            name: positive_probabilities(
                model, self.tokenizer, encoded, batch_tokens=batch_tokens, progress=progress
            )
            for name, model in self.models.items()
        }
