"""NLI and embedding-similarity zero-shot scorers of ``method: nli``.

``nli.scorer: nli`` runs the ``transformers`` ``zero-shot-classification`` pipeline: each post is the premise,
each candidate label in the hypothesis template the hypothesis, and the entailment scores are normalised over the
candidates (``multi_label=False``). P(ADE) is the sum of the positive candidates' scores. The paper's row used
mDeBERTa-XNLI (dev F1 0.155).

``nli.scorer: similarity`` needs no NLI head: an embedding model (mean-pooled, L2-normalised) embeds the post and
each hypothesis, and a softmax over their cosine similarities (``temperature``) plays the part of the entailment
scores. It runs with the offline ``offline:e5-small`` (prefixes ``query: `` / ``passage: ``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medsift.ade.zeroshot.config import AdeNliConfig
from medsift.errors import MedsiftError


def positive_share(labels: list[str], scores: list[float], positive: list[str]) -> float:
    """P(ADE) from one pipeline result: the summed scores of the positive candidate labels."""
    wanted = set(positive)
    return float(sum(s for label, s in zip(labels, scores, strict=True) if label in wanted))


def _template(config: AdeNliConfig, language: str) -> str:
    return config.nli.templates.get(language, config.nli.hypothesis_template)


def _by_template(config: AdeNliConfig, languages: list[str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, lang in enumerate(languages):
        groups.setdefault(_template(config, lang), []).append(i)
    return groups


class NliScorer:
    """Scores posts with ``config``'s NLI (or similarity) model; loaded once."""

    def __init__(self, config: AdeNliConfig, *, device: str | None = None):
        import torch
        from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

        from medsift.models.hub import load_pretrained

        self.config = config
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = load_pretrained(AutoTokenizer.from_pretrained, config.model.name)
        if config.nli.scorer == "nli":
            model = load_pretrained(AutoModelForSequenceClassification.from_pretrained, config.model.name)
            labels = {str(k).lower() for k in (model.config.label2id or {})}
            if not any(k.startswith("entail") for k in labels):
                raise MedsiftError(
                    f"model {config.model.name!r} has no entailment label (labels: {sorted(labels)}): the nli scorer "
                    "needs an NLI model (e.g. MoritzLaurer/mDeBERTa-v3-base-mnli-xnli); for an embedding model "
                    "set nli.scorer: similarity"
                )
        else:
            model = load_pretrained(AutoModel.from_pretrained, config.model.name)
        self.model = model.to(self.device).eval()
        self._pipe: Any = None

    def score(self, texts: list[str], languages: list[str], *, progress: bool = False) -> np.ndarray:
        """P(ADE) per post."""
        from tqdm.auto import tqdm

        out = np.zeros(len(texts))
        lengths = self.tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        self.n_truncated = sum(len(ids) > self.config.model.max_length for ids in lengths)
        bar = tqdm(total=len(texts), desc="zero-shot", unit="post", disable=not progress)
        step = self.config.model.batch_size
        for template, rows in _by_template(self.config, languages).items():
            for start in range(0, len(rows), step):
                batch = rows[start : start + step]
                out[batch] = self._score_batch([texts[i] or " " for i in batch], template)
                bar.update(len(batch))
        bar.close()
        return out

    def _score_batch(self, texts: list[str], template: str) -> np.ndarray:
        nli = self.config.nli
        candidates = [*nli.positive, *nli.negative]
        if nli.scorer == "nli":
            results = self._pipeline()(texts, candidate_labels=candidates, hypothesis_template=template)
            results = [results] if isinstance(results, dict) else results
            return np.array([positive_share(r["labels"], r["scores"], nli.positive) for r in results])
        posts = self._embed([nli.query_prefix + t for t in texts])  # (batch, dim)
        hyps = self._embed([nli.passage_prefix + template.format(c) for c in candidates])  # (labels, dim)
        logits = posts @ hyps.T / nli.temperature  # (batch, labels)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return probs[:, : len(nli.positive)].sum(axis=1)

    def _pipeline(self) -> Any:
        if self._pipe is None:
            from transformers import pipeline

            self._pipe = pipeline(
                "zero-shot-classification",
                model=self.model,
                tokenizer=self.tokenizer,
                device=self.model.device,
                truncation=True,
            )
        return self._pipe

    def _embed(self, texts: list[str]) -> np.ndarray:
        import torch

        enc = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.config.model.max_length, return_tensors="pt"
        ).to(self.device)
        with torch.inference_mode():
            hidden = self.model(**enc).last_hidden_state  # (batch, seq, dim)
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)  # (batch, dim)
        return torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()
