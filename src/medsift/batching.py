"""How inputs become batches and batches run, shared by every backend (torch, ONNX Runtime) and task.

- ``token_budget_batches``: inputs sorted by length, cut so that ``batch size x longest <= batch_tokens``;
  short posts never pay for long ones.
- ``default_batch_tokens``: the budget depends on the device. A GPU wants large batches; on a CPU, small
  ones keep a layer's activations in cache (multilingual-e5-small, 1 core: 53 posts per CPU-second at 512 tokens a batch
  against 44 at 16,384; int8 ONNX 165 against 120; see docs/benchmarks.md).
- ``run_batches``: on a CPU, one worker per core, each running whole batches on one thread. Small encoders
  split poorly across cores (every operator ends in a barrier, and a busy neighbour stalls them all), while
  independent batches on separate cores scale. ONNX Runtime and PyTorch both release the GIL inside their
  kernels, so Python threads are enough; results come back in batch order.
- ``pad_batch``: right-padding with numpy (the tokenizer's ``pad`` is per-item Python).

Written here because no library batches by a token budget across backends: ``transformers.pipeline``
batches a fixed number of items in input order, and the Trainer's length grouping is for training.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")

GPU_BATCH_TOKENS = 16384
CPU_BATCH_TOKENS = 512
MAX_BATCH = 128


def token_budget_batches(lengths: Sequence[int], batch_tokens: int, max_batch: int) -> Iterator[list[int]]:
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


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_batch_tokens(device: str) -> int:
    return CPU_BATCH_TOKENS if str(device).startswith("cpu") else GPU_BATCH_TOKENS


def default_workers(device: str) -> int:
    """One worker per core on a CPU; one on an accelerator (it parallelises inside each batch)."""
    return available_cores() if str(device).startswith("cpu") else 1


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """``(input_ids, attention_mask)``, int64 arrays of shape (batch, longest), padded on the right."""
    width = max(len(s) for s in sequences)
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask


@functools.cache
def _pool(workers: int) -> ThreadPoolExecutor:
    # One long-lived pool per size: a service scores thousands of small calls, and fresh threads per call
    # cost start-up time and leave a malloc arena behind each.
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"medsift-batch{workers}")


def run_batches(fn: Callable[[T], R], batches: Sequence[T], workers: int = 1) -> Iterator[R]:
    """``fn(batch)`` for every batch, on ``workers`` threads; yields the results in batch order.

    ``fn`` must not call ``run_batches`` itself (its tasks would wait for the pool they occupy).
    """
    if workers <= 1 or len(batches) <= 1:
        yield from map(fn, batches)
        return
    yield from _pool(workers).map(fn, batches)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """PyTorch's intra-op thread count set to ``n`` for the duration (restored after)."""
    import torch

    before = torch.get_num_threads()
    if n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def torch_device(model: Any) -> str:
    return str(next(model.parameters()).device)


__all__ = [
    "available_cores",
    "default_batch_tokens",
    "default_workers",
    "pad_batch",
    "run_batches",
    "token_budget_batches",
    "torch_device",
    "torch_threads",
]
