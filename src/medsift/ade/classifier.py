"""What every ADE classifier kind shares, without torch: the prediction type, the one way probabilities are cut
(:func:`decide`) and the ``predict`` every classifier run has (:class:`RunClassifier`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medsift.decision import ThresholdPolicy, threshold_groups


@dataclass
class AdePrediction:
    p_ade: np.ndarray  # (n,) mean over seeds
    per_seed: dict[str, np.ndarray]  # member name -> (n,)
    labels: np.ndarray  # (n,) 0/1 after the run's thresholds
    thresholds: np.ndarray  # (n,) the threshold used for each post
    n_truncated: int  # posts longer than the model's room (handled by the run's long-post policy)
    features: dict[str, np.ndarray] = field(
        default_factory=dict
    )  # per-post features (a GLiNER run's), by name


class RunClassifier:
    """What every ADE classifier kind shares (encoder, n-gram, ONNX, zero-shot): ``predict`` scores the posts
    with the kind's own :meth:`score` and cuts the seeds' mean with the run's thresholds (:func:`decide`)."""

    policy: ThresholdPolicy
    config: Any

    def score(
        self, texts: list[str], languages: list[str] | None, *, progress: bool, batch_tokens: int | None
    ) -> tuple[dict[str, np.ndarray], int, dict[str, np.ndarray]]:
        """(P(ADE) per post for each seed, posts too long for the model, per-post features)."""
        raise NotImplementedError

    def predict(
        self,
        texts: list[str],
        languages: list[str] | None = None,
        *,
        progress: bool = False,
        batch_tokens: int | None = None,
        ids: list[str] | None = None,
    ) -> AdePrediction:
        """Mean probability over the run's seeds, cut with its thresholds (per language, or per scoring group
        when ``ids`` are given: CADEC rows have their own). ``batch_tokens=None`` picks the device's default."""
        texts = list(texts)
        per_seed, n_truncated, features = self.score(
            texts, languages, progress=progress, batch_tokens=batch_tokens
        )
        pred = decide(per_seed, self.policy, len(texts), languages, ids, n_truncated)
        pred.features = features
        return pred


def decide(
    per_seed: dict[str, np.ndarray],
    policy: ThresholdPolicy,
    n_posts: int,
    languages: list[str] | None,
    ids: list[str] | None,
    n_truncated: int,
) -> AdePrediction:
    """The seeds' mean probability cut with the run's thresholds: per language, or per scoring group when ``ids``
    are given (CADEC rows have their own). Shared by every ADE classifier kind (encoder and n-gram runs)."""
    p = np.mean(np.stack(list(per_seed.values())), axis=0) if per_seed and n_posts else np.zeros(n_posts)
    languages = list(languages) if languages is not None else [""] * n_posts
    groups = threshold_groups(ids, languages) if ids is not None else languages
    thresholds = policy.thresholds_for(groups)
    return AdePrediction(p, per_seed, (p >= thresholds).astype(int), thresholds, n_truncated)
