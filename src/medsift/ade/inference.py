"""Fast, order-preserving inference for sequence classifiers.

Inputs are sorted by length and cut into batches by a token budget (``batch_tokens`` = padded length x
batch size), so short posts do not pay for long ones; every batch is padded only to its own longest input;
the forward pass runs under ``torch.inference_mode``. Outputs come back in input order, one per post
(windows of a long post are averaged).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from medsift.ade.encode import EncodedPosts


def token_budget_batches(lengths: list[int], batch_tokens: int, max_batch: int) -> Iterator[list[int]]:
    """Indices of inputs, longest first, grouped so that ``len(batch) * longest <= batch_tokens``."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batch: list[int] = []
    for i in order:
        longest = lengths[batch[0]] if batch else lengths[i]
        if batch and ((len(batch) + 1) * longest > batch_tokens or len(batch) >= max_batch):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


@torch.inference_mode()
def positive_probabilities(
    model: Any,
    tokenizer: Any,
    encoded: EncodedPosts,
    *,
    batch_tokens: int = 16384,
    max_batch: int = 128,
    progress: bool = False,
) -> np.ndarray:
    """P(label 1) per post, in input order; windows of one post are averaged."""
    model.eval()
    device = next(model.parameters()).device
    features = encoded.features
    lengths = [len(f["input_ids"]) for f in features]
    per_input = np.zeros(len(features), dtype=np.float64)
    bar = tqdm(total=len(features), disable=not progress, desc="scoring", unit="input")
    for batch in token_budget_batches(lengths, batch_tokens, max_batch):
        padded = tokenizer.pad(
            [{k: features[i][k] for k in ("input_ids", "attention_mask")} for i in batch], return_tensors="pt"
        )
        logits = model(**{k: v.to(device) for k, v in padded.items()}).logits  # (batch, 2)
        per_input[batch] = torch.softmax(logits.float(), dim=-1)[:, 1].cpu().numpy()
        bar.update(len(batch))
    bar.close()
    posts = np.array([f["post"] for f in features])
    sums = np.bincount(posts, weights=per_input, minlength=encoded.n_posts)
    counts = np.bincount(posts, minlength=encoded.n_posts)
    return sums / np.maximum(counts, 1)
