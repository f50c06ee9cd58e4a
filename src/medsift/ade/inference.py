"""Fast, order-preserving inference for sequence classifiers.

Inputs are sorted by length and cut into batches by a token budget (``batch_tokens`` = padded length x
batch size, by default small on a CPU and large on a GPU), so short posts do not pay for long ones; every
batch is padded only to its own longest input; the forward pass runs under ``torch.inference_mode``; on a
CPU, one worker per core runs whole batches (see :mod:`medsift.batching`). Outputs come back in input
order, one per post (windows of a long post are averaged).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from medsift.ade.encode import EncodedPosts
from medsift.batching import (
    MAX_BATCH,
    default_batch_tokens,
    default_workers,
    pad_batch,
    run_batches,
    token_budget_batches,
    torch_device,
    torch_threads,
)


def positive_softmax(logits: np.ndarray) -> np.ndarray:
    """P(label 1) from two-class logits ``(n, 2)``, computed stably in numpy (the Trainer's eval predictions)."""
    z = logits - logits.max(axis=1, keepdims=True)
    return np.exp(z[:, 1]) / np.exp(z).sum(axis=1)


def pool_windows(encoded: EncodedPosts, per_input: np.ndarray) -> np.ndarray:
    """One value per post: the mean over the post's inputs (its windows, or its single input)."""
    posts = np.array([f["post"] for f in encoded.features], dtype=np.int64)
    sums = np.bincount(posts, weights=per_input, minlength=encoded.n_posts)
    counts = np.bincount(posts, minlength=encoded.n_posts)
    return sums / np.maximum(counts, 1)


def score_batches(
    encoded: EncodedPosts,
    positive: Any,
    *,
    batch_tokens: int,
    workers: int,
    progress: bool,
    desc: str = "scoring",
    max_batch: int = MAX_BATCH,
) -> np.ndarray:
    """P(label 1) per post: ``positive(batch_of_feature_indices) -> (batch,) probabilities`` on every batch."""
    features = encoded.features
    lengths = [len(f["input_ids"]) for f in features]
    per_input = np.zeros(len(features), dtype=np.float64)
    batches = list(token_budget_batches(lengths, batch_tokens, max_batch))
    with tqdm(total=len(features), disable=not progress, desc=desc, unit="input") as bar:
        for batch, probs in zip(batches, run_batches(positive, batches, workers), strict=True):
            per_input[batch] = probs
            bar.update(len(batch))
    return pool_windows(encoded, per_input)


def positive_probabilities(
    model: Any,
    tokenizer: Any,
    encoded: EncodedPosts,
    *,
    batch_tokens: int | None = None,
    workers: int | None = None,
    max_batch: int = MAX_BATCH,
    progress: bool = False,
) -> np.ndarray:
    """P(label 1) per post, in input order; windows of one post are averaged."""
    model.eval()
    device = torch_device(model)
    batch_tokens = batch_tokens or default_batch_tokens(device)
    workers = workers or default_workers(device)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    features = encoded.features

    @torch.inference_mode()  # per call: inference mode is thread-local
    def positive(batch: list[int]) -> np.ndarray:
        ids, mask = pad_batch([features[i]["input_ids"] for i in batch], pad_id)
        logits = model(
            input_ids=torch.from_numpy(ids).to(device), attention_mask=torch.from_numpy(mask).to(device)
        ).logits  # (batch, 2)
        return torch.softmax(logits.float(), dim=-1)[:, 1].cpu().numpy()

    # several workers each take one thread; one worker keeps the thread count it was given
    threads = 1 if workers > 1 else torch.get_num_threads()
    with torch_threads(threads):
        return score_batches(
            encoded,
            positive,
            batch_tokens=batch_tokens,
            workers=workers,
            progress=progress,
            max_batch=max_batch,
        )


__all__ = [
    "pool_windows",
    "positive_probabilities",
    "positive_softmax",
    "score_batches",
    "token_budget_batches",
]
