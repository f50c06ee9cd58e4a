"""Shared pytest fixtures: tiny in-process models (no downloads) and the shared real data folder.

Tests import the builders directly with ``from tiny import tiny_encoder_dir`` when they need an
architecture or tokenizer the fixtures below do not cover.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Set before anything imports transformers: tests must never reach a model hub, and the load
# reports transformers prints for tiny random models are noise.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest

_TESTS = Path(__file__).resolve().parent
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

import tiny  # noqa: E402


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder per session that holds every tiny model and tokenizer."""
    return tmp_path_factory.mktemp("tiny")


@pytest.fixture(scope="session")
def wordpiece_tokenizer(tiny_root: Path) -> Path:
    return tiny.tiny_tokenizer_dir("wordpiece", root=tiny_root)


@pytest.fixture(scope="session")
def unigram_tokenizer(tiny_root: Path) -> Path:
    return tiny.tiny_tokenizer_dir("unigram", root=tiny_root)


@pytest.fixture(scope="session")
def tiny_bert(tiny_root: Path) -> Path:
    return tiny.tiny_encoder_dir("bert", "wordpiece", root=tiny_root)


@pytest.fixture(scope="session")
def tiny_xlmr(tiny_root: Path) -> Path:
    return tiny.tiny_encoder_dir("xlm-roberta", "unigram", root=tiny_root)


@pytest.fixture(scope="session")
def tiny_deberta(tiny_root: Path) -> Path:
    return tiny.tiny_encoder_dir("deberta-v2", "unigram", root=tiny_root)


@pytest.fixture(scope="session")
def tiny_qwen3(tiny_root: Path) -> Path:
    return tiny.tiny_causal_lm_dir("qwen3", root=tiny_root)


@pytest.fixture(scope="session")
def tiny_qwen2(tiny_root: Path) -> Path:
    return tiny.tiny_causal_lm_dir("qwen2", root=tiny_root)


@pytest.fixture(scope="session")
def tiny_llama(tiny_root: Path) -> Path:
    return tiny.tiny_causal_lm_dir("llama", root=tiny_root)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real SMM4H data in ``/work/shared/data`` (read-only); skips where it is not present."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data folder not found: {path}")
    return path
