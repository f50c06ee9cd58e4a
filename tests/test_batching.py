"""The engine's batching: token budgets, padding, workers that keep order and never change a result."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medsift.batching import (
    default_batch_tokens,
    default_workers,
    pad_batch,
    run_batches,
    token_budget_batches,
    torch_threads,
)
from medsift.engine.quantize import cpu_has_vnni
from test_ade import NEG, POS, make_ade_csv, tiny_config

TEXTS = POS + NEG + ["a post much longer than the tiny model's room " * 8] + [p + " again" for p in POS]


@given(st.lists(st.integers(1, 300), max_size=60), st.integers(1, 2000), st.integers(1, 64))
@settings(max_examples=200, deadline=None)
def test_token_budget_batches_partition_and_respect_the_budget(lengths, budget, max_batch):
    batches = list(token_budget_batches(lengths, budget, max_batch))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= max_batch
        # one input longer than the budget still gets a batch of its own
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= budget


def test_pad_batch_pads_right_with_a_mask():
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=1)
    assert ids.tolist() == [[5, 6, 7], [8, 1, 1]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ids.dtype == mask.dtype == np.int64


def test_run_batches_keeps_batch_order_with_workers_finishing_out_of_order():
    seen = set()

    def slow_first(batch):
        seen.add(threading.current_thread().name)
        time.sleep(0.05 if batch[0] == 0 else 0.0)  # the first batch finishes last
        return [x * 10 for x in batch]

    batches = [[0], [1, 2], [3], [4, 5, 6]]
    assert list(run_batches(slow_first, batches, workers=3)) == [[0], [10, 20], [30], [40, 50, 60]]
    assert len(seen) > 1  # it really ran on several threads
    assert list(run_batches(slow_first, batches, workers=1)) == list(run_batches(slow_first, batches, 4))


def test_defaults_depend_on_the_device():
    assert default_batch_tokens("cpu") < default_batch_tokens("cuda:0")
    assert default_workers("cuda") == 1 and default_workers("cpu") >= 1


def test_torch_threads_is_restored():
    import torch

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_vnni_is_read_from_cpu_flags():
    assert cpu_has_vnni("processor: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n")
    assert cpu_has_vnni("flags: avx2 avx_vnni")
    assert not cpu_has_vnni("flags: fpu sse avx2 fma\n")
    assert not cpu_has_vnni("")


@pytest.fixture(scope="module")
def ade_run(tiny_bert: Path, tmp_path_factory) -> Path:
    from medsift.ade.train import train

    tmp = tmp_path_factory.mktemp("batching")
    config = tiny_config(tiny_bert, make_ade_csv(tmp / "train.csv"), tmp / "run")
    return train(config, quiet=True)


def test_workers_and_budgets_never_change_torch_probabilities(ade_run: Path):
    from medsift.ade.encode import encode_posts
    from medsift.ade.inference import positive_probabilities
    from medsift.ade.predict import AdeClassifier

    clf = AdeClassifier.from_run(ade_run, device="cpu")
    model = next(iter(clf.models.values()))
    encoded = encode_posts(clf.tokenizer, TEXTS, max_length=clf.config.model.max_length, policy="windows")
    reference = positive_probabilities(model, clf.tokenizer, encoded, batch_tokens=1, workers=1)
    for budget, workers in [(64, 2), (512, 3), (100_000, 1), (100_000, 2)]:
        got = positive_probabilities(model, clf.tokenizer, encoded, batch_tokens=budget, workers=workers)
        np.testing.assert_allclose(got, reference, atol=1e-5)


def test_onnx_workers_give_the_single_worker_probabilities(ade_run: Path):
    from medsift.engine.onnx import OnnxAdeClassifier, export_onnx

    export_onnx(ade_run, quiet=True)
    one = OnnxAdeClassifier.from_run(ade_run, quantized=False, threads=1)
    three = OnnxAdeClassifier.from_run(ade_run, quantized=False, threads=3)
    assert (one.workers, three.workers) == (1, 3)
    a, b = one.predict(TEXTS, batch_tokens=32), three.predict(TEXTS, batch_tokens=32)
    np.testing.assert_allclose(a.p_ade, b.p_ade, atol=1e-6)
    assert a.labels.tolist() == b.labels.tolist()
