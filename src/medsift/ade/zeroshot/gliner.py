"""The GLiNER scorer of ``method: gliner``: a post's P(ADE) and features from its entities.

GLiNER (the optional ``gliner`` package, ``pip install 'medsift[gliner]'``) returns entities with a label and a
score for any labels given at run time. A post's probability is the highest score among its entities of the
``positive_labels`` (0 when it has none: the paper's rule "a post with an ADE entity is positive", dev F1 0.244);
its features, for stacking, are per label the number of entities and their highest score (``n_<label>``,
``max_<label>``), and the total count (``n_entities``). Those functions are pure and tested on hand-made entities;
only :func:`load_gliner` touches the package.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from medsift.ade.zeroshot.config import AdeGlinerConfig
from medsift.errors import MedsiftError

INSTALL = "pip install 'medsift[gliner]'"


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def feature_names(labels: list[str]) -> list[str]:
    return ["n_entities", *[f"{kind}_{_slug(x)}" for x in labels for kind in ("n", "max")]]


def post_features(entities: list[dict[str, Any]], labels: list[str]) -> dict[str, float]:
    """Per-post features from one post's entities (``label`` and ``score`` each)."""
    out: dict[str, float] = {"n_entities": float(len(entities))}
    for label in labels:
        scores = [float(e["score"]) for e in entities if e.get("label") == label]
        out[f"n_{_slug(label)}"] = float(len(scores))
        out[f"max_{_slug(label)}"] = max(scores, default=0.0)
    return out


def post_probability(entities: list[dict[str, Any]], positive_labels: list[str]) -> float:
    """The highest score among the post's entities of a positive label; 0 when it has none."""
    wanted = set(positive_labels)
    return max((float(e["score"]) for e in entities if e.get("label") in wanted), default=0.0)


def load_gliner(name: str) -> Any:
    """The GLiNER model ``name`` (hub id or folder), with one clear line when the package or model is missing."""
    try:
        from gliner import GLiNER
    except ImportError:
        raise MedsiftError(
            f"method: gliner needs the gliner package, which is not installed: {INSTALL} (it caps transformers "
            "below 5.17, so install it in an environment of its own)"
        ) from None
    from medsift.models.hub import load_pretrained

    return load_pretrained(GLiNER.from_pretrained, name)


class GlinerScorer:
    """Scores posts with GLiNER entities; ``model`` may be given (anything with GLiNER's ``inference``)."""

    def __init__(self, config: AdeGlinerConfig, *, model: Any = None):
        self.config = config
        self.model = model if model is not None else load_gliner(config.model.name)

    def score(
        self, texts: list[str], languages: list[str], *, progress: bool = False
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(P(ADE) per post, per-post features by name)."""
        from tqdm.auto import tqdm

        g = self.config.gliner
        names = feature_names(g.labels)
        p = np.zeros(len(texts))
        features = {n: np.zeros(len(texts)) for n in names}
        step = self.config.model.batch_size
        for start in tqdm(range(0, len(texts), step), desc="gliner", unit="batch", disable=not progress):
            batch = [t or " " for t in texts[start : start + step]]
            found = self.model.inference(batch, g.labels, threshold=g.entity_threshold, flat_ner=True)
            for k, entities in enumerate(found):
                p[start + k] = post_probability(entities, g.positive_labels)
                for name, value in post_features(entities, g.labels).items():
                    features[name][start + k] = value
        return p, features
