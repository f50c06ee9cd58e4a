"""The classical ADE member (``task: ade``, ``method: ngram``): character n-gram TF-IDF and a logistic regression.

It trains in seconds on a CPU and is strong where it has training rows (de and ru forum posts and reviews, whose
evidence is often a drug or symptom word in any inflection), and blind where it has none (a new script shares no
n-gram with the training rows). That is why the ensemble of ``ade-cpu-full`` weighs it per language and leaves it
out of languages it never saw (see :mod:`medsift.decision.by_language`).

The run folder keeps the encoder runs' contract (``medsift_run.json`` kind ``ade-classifier``, ``config.yaml``,
``splits.csv``, ``seed-N/`` with val/calib probabilities, ``thresholds.json``), so ``predict``, ``serve``,
``report``, ``compare``, ``thresholds`` and ``ensemble`` take it like any classifier run. The model is stored as
plain arrays (``ngram.npz``, read with ``allow_pickle=False``) and settings (``ngram.json``): hashed features keep
no vocabulary, so nothing needs pickling and a run folder never executes code when it is loaded.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from medsift.ade.classifier import RunClassifier
from medsift.ade.config import LANGUAGES, THRESHOLD, AdeDataSection
from medsift.ade.data import load_splits, model_texts, training_rows
from medsift.config import StrictModel, register_schema
from medsift.errors import MedsiftError
from medsift.io import write_probabilities
from medsift.io.atomic import atomic_write, atomic_write_text
from medsift.runs import RunManifest, read_json, read_thresholds
from medsift.training import finish_seed, seed_is_done

log = logging.getLogger(__name__)
MODEL_FILE, SETTINGS_FILE = "ngram.npz", "ngram.json"


class NgramModelSection(StrictModel):
    name: str = Field("char-ngram", description="A display name for reports and comparisons.")
    analyzer: Literal["char_wb", "char"] = Field(
        "char_wb",
        description="char_wb: n-grams inside word boundaries (padded with spaces); char: across them.",
    )
    ngram_range: tuple[int, int] = Field((2, 5), description="Shortest and longest character n-gram.")
    n_features: int = Field(
        2**21, ge=2**10, description="Hashed feature space (a power of two keeps collisions rare)."
    )
    C: float = Field(4.0, gt=0, description="Inverse regularisation strength of the logistic regression.")
    class_weight: Literal["balanced", "none"] = Field(
        "balanced",
        description="balanced: each class weighs the same in the loss (the released data is 5-10 % positive).",
    )
    max_iter: int = Field(2000, ge=10)

    @model_validator(mode="after")
    def _range(self) -> NgramModelSection:
        low, high = self.ngram_range
        if not 1 <= low <= high <= 8:
            raise ValueError(
                f"model.ngram_range must satisfy 1 <= low <= high <= 8, got {list(self.ngram_range)}"
            )
        return self

    # The encoder runs' truncation report reads these: an n-gram model reads every post whole.
    @property
    def max_length(self) -> None:
        return None

    @property
    def long_posts(self) -> str:
        return "whole"


@register_schema("ade", "ngram")
class AdeNgramConfig(StrictModel):
    task: Literal["ade"] = "ade"
    method: Literal["ngram"] = "ngram"
    model: NgramModelSection = Field(default_factory=NgramModelSection)
    data: AdeDataSection
    seeds: list[int] = Field(
        default_factory=lambda: [42],
        min_length=1,
        max_length=1,
        description="One seed (it draws the oversampled copies; the solver itself is deterministic).",
    )
    threshold: float = THRESHOLD
    languages: list[str] | None = LANGUAGES
    output_dir: str = "runs/ade-ngram"


class NgramModel:
    """Hashed character n-grams -> sublinear TF-IDF -> L2 -> logistic regression, as plain arrays."""

    def __init__(self, settings: dict[str, Any], idf: np.ndarray, coef: np.ndarray, intercept: float):
        self.settings, self.idf, self.coef, self.intercept = settings, idf, coef, float(intercept)

    def _vectorizer(self):
        from sklearn.feature_extraction.text import HashingVectorizer

        s = self.settings
        return HashingVectorizer(
            analyzer=s["analyzer"],
            ngram_range=tuple(s["ngram_range"]),
            n_features=s["n_features"],
            alternate_sign=False,
            norm=None,
            lowercase=True,
        )

    @staticmethod
    def _counts_to_tfidf(counts, idf: np.ndarray):
        from sklearn.preprocessing import normalize

        x = counts.astype(np.float64).tocsr()
        x.data = 1.0 + np.log(x.data)  # sublinear tf
        x = x.multiply(idf.reshape(1, -1)).tocsr()
        return normalize(x, norm="l2", copy=False)

    @classmethod
    def fit(cls, texts: list[str], labels: np.ndarray, section: NgramModelSection) -> NgramModel:
        from sklearn.feature_extraction.text import TfidfTransformer
        from sklearn.linear_model import LogisticRegression

        settings = {
            "analyzer": section.analyzer,
            "ngram_range": list(section.ngram_range),
            "n_features": section.n_features,
        }
        model = cls(settings, np.ones(section.n_features), np.zeros(section.n_features), 0.0)
        counts = model._vectorizer().transform(texts)
        idf = TfidfTransformer(sublinear_tf=True).fit(counts).idf_
        clf = LogisticRegression(
            C=section.C,
            class_weight=None if section.class_weight == "none" else "balanced",
            max_iter=section.max_iter,
            solver="liblinear",  # deterministic for a binary problem, fast on sparse rows
        )
        clf.fit(cls._counts_to_tfidf(counts, idf), labels)
        return cls(settings, idf, clf.coef_.ravel(), clf.intercept_[0])

    def predict_proba(self, texts: list[str], batch: int = 4096) -> np.ndarray:
        """P(ADE) per text, in chunks so that a large file never builds one huge matrix."""
        out = np.zeros(len(texts))
        vec = self._vectorizer()
        for start in range(0, len(texts), batch):
            x = self._counts_to_tfidf(vec.transform(texts[start : start + batch]), self.idf)
            out[start : start + batch] = 1.0 / (1.0 + np.exp(-(x @ self.coef + self.intercept)))
        return out

    def save(self, folder: Path) -> None:
        import sklearn

        folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(folder / MODEL_FILE, mode="wb") as fh:
            np.savez_compressed(
                fh,
                idf=self.idf.astype(np.float32),
                coef=self.coef.astype(np.float32),
                intercept=np.array([self.intercept]),
            )
        atomic_write_text(
            folder / SETTINGS_FILE,
            json.dumps({**self.settings, "scikit_learn": sklearn.__version__}, indent=2) + "\n",
        )

    @classmethod
    def load(cls, folder: Path) -> NgramModel:
        path = folder / MODEL_FILE
        try:
            settings = json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
            with np.load(path, allow_pickle=False) as arrays:
                idf, coef, intercept = arrays["idf"], arrays["coef"], arrays["intercept"][0]
        except (OSError, ValueError, KeyError) as exc:
            raise MedsiftError(f"cannot read the n-gram model ({exc})", file=folder) from exc
        if len(idf) != settings.get("n_features") or len(coef) != len(idf):
            raise MedsiftError("the n-gram model's arrays do not match its settings", file=folder)
        return cls(settings, idf.astype(np.float64), coef.astype(np.float64), float(intercept))


def _metrics(labels: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    from sklearn.metrics import f1_score

    y_hat = (p >= threshold).astype(int)
    return {
        "eval_f1": float(f1_score(labels, y_hat, pos_label=1, zero_division=0)),
        "eval_macro_f1": float(f1_score(labels, y_hat, average="macro", labels=[0, 1], zero_division=0)),
    }


def train(config: AdeNgramConfig, *, run_dir: Path | None = None, quiet: bool = False) -> Path:
    """Fit the n-gram model on the run's train rows; score its val and calib rows; write the run folder."""
    import time

    from medsift.ade.train import _finish_run, probability_frame, write_splits
    from medsift.trainer import start_run

    run_dir = Path(run_dir or config.output_dir)
    start_run(run_dir, config, write=True)
    splits = load_splits(config)  # type: ignore[arg-type]  # the same splits (and uids) as an encoder run
    write_splits(run_dir, splits)
    seed = config.seeds[0]
    seed_dir = run_dir / f"seed-{seed}"
    if not seed_is_done(seed_dir):
        start = time.perf_counter()
        rows = training_rows(splits, config.data.oversample_positives, seed)
        if not quiet:
            log.info("fitting character n-grams on %d training rows", len(rows))
        model = NgramModel.fit(
            model_texts(rows, config.data.normalize), rows["label"].astype(int).to_numpy(), config.model
        )
        model.save(seed_dir / "model")
        best: dict[str, float] = {}
        for split_name, frame in (("val", splits.val), ("calib", splits.calib)):
            if len(frame):
                p = model.predict_proba(model_texts(frame, config.data.normalize))
                write_probabilities(seed_dir / f"{split_name}_probabilities.csv", probability_frame(frame, p))
                if split_name == "val":
                    best = _metrics(frame["label"].astype(int).to_numpy(), p, config.threshold)
        best["train_seconds"] = round(time.perf_counter() - start, 1)
        finish_seed(seed_dir, {"seed": seed, "best": best, "history": []}, {"seed": seed, "best": best})
    # the run-level files exactly as an encoder run writes them; the manifest also records the languages it has
    # seen, so that an ensemble weighing members per language leaves it out elsewhere
    languages = sorted(set(splits.train["language"].astype(str)))
    summary = read_json(seed_dir / "metrics.json")
    _finish_run(run_dir, config, splits, [summary], {"method": "ngram", "languages": languages})  # type: ignore[arg-type]
    return run_dir


class NgramClassifier(RunClassifier):
    """A trained n-gram run with :class:`medsift.ade.predict.AdeClassifier`'s ``predict``."""

    def __init__(self, run_dir: Path, config: AdeNgramConfig, models: dict[str, NgramModel], policy):
        self.run_dir, self.config, self.models, self.policy = run_dir, config, models, policy

    @classmethod
    def from_run(cls, run_dir: str | Path, config: AdeNgramConfig) -> NgramClassifier:
        run_dir = Path(run_dir)
        manifest = RunManifest.load(run_dir)
        models = {f"seed{s}": NgramModel.load(run_dir / f"seed-{s}" / "model") for s in manifest.seeds}
        return cls(run_dir, config, models, read_thresholds(run_dir))

    def score(
        self, texts: list[str], languages: list[str] | None, *, progress: bool, batch_tokens: int | None
    ) -> tuple[dict[str, np.ndarray], int, dict[str, np.ndarray]]:
        """Every seed's P(ADE) (``progress``/``batch_tokens`` are the encoder's; thousands of posts take about a
        second); an n-gram model reads every post whole."""
        from medsift.preprocess import normalize_text

        texts = [normalize_text(t) for t in texts] if self.config.data.normalize else texts
        return {name: model.predict_proba(texts) for name, model in self.models.items()}, 0, {}
