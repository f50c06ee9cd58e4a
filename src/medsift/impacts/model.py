"""The tagger model (any ``AutoModelForTokenClassification``, optionally under a CRF) and window encoding.

A saved tagger folder (``seed-<N>/model/``) holds the encoder as safetensors, its tokenizer,
``tagger.json`` (labels, scheme, window settings, word strategy, whether a CRF is on top) and, with a CRF,
``crf.safetensors``.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medsift.errors import MedsiftError
from medsift.impacts.windows import Window, plan_windows
from medsift.models import resolve_model
from medsift.models.safe import require_safetensors
from medsift.results import TaggerMember

TAGGER_FILE = "tagger.json"
CRF_FILE = "crf.safetensors"


@contextlib.contextmanager
def progress_bars(enabled: bool):
    """Turn the transformers progress bars (weight loading, shard writing) off for a quiet run."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    if not enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


class CrfTagger(nn.Module):
    """An encoder's per-subword label scores (emissions) fed to a linear-chain CRF (``torchcrf.CRF``).

    The CRF runs over the labelled subwords only (special and padding positions are packed away), so
    its transitions see the real subword sequence. The loss is the mean negative log-likelihood.
    """

    def __init__(self, encoder: nn.Module, num_labels: int):
        super().__init__()
        from torchcrf import CRF

        self.encoder = encoder
        self.config = encoder.config
        self.crf = CRF(num_labels, batch_first=True)

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs: Any):
        from transformers.modeling_outputs import TokenClassifierOutput

        emissions = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits
        loss = None
        if labels is not None:
            packed, tags, mask = pack_valid(emissions, labels != -100, labels)
            loss = -self.crf(packed, tags, mask=mask, reduction="mean")
        return TokenClassifierOutput(loss=loss, logits=emissions)

    def decode(self, emissions: torch.Tensor, valid: torch.Tensor) -> list[list[int]]:
        """Viterbi label ids for the ``valid`` positions of each row, in order."""
        packed, _, mask = pack_valid(emissions, valid, None)
        return self.crf.decode(packed, mask=mask)


def pack_valid(emissions: torch.Tensor, valid: torch.Tensor, labels: torch.Tensor | None):
    """Move the valid positions of each row to its front (stable), as torchcrf wants (mask[:, 0] true)."""
    order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)
    packed = torch.gather(emissions, 1, order.unsqueeze(-1).expand_as(emissions))
    mask = torch.gather(valid, 1, order)
    # A row with nothing to tag would break the CRF; give it one dummy step (never read back).
    mask[:, 0] = True
    tags = None
    if labels is not None:
        tags = torch.gather(labels, 1, order).clamp(min=0)
    return packed, tags, mask


def build_model(name: str, labels: list[str], crf: bool) -> nn.Module:
    """A fresh tagger on top of a pretrained encoder (its classification head starts random)."""
    from transformers import AutoModelForTokenClassification

    encoder = AutoModelForTokenClassification.from_pretrained(
        str(resolve_model(name)),
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    return CrfTagger(encoder, len(labels)) if crf else encoder


def save_tagger(model: nn.Module, tokenizer: Any, out: Path, meta: dict) -> None:
    """Save encoder (safetensors), tokenizer, ``tagger.json`` and the CRF weights if any."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    encoder = model.encoder if isinstance(model, CrfTagger) else model
    encoder.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    if isinstance(model, CrfTagger):
        save_file(
            {k: v.detach().contiguous() for k, v in model.crf.state_dict().items()}, str(out / CRF_FILE)
        )
    (out / TAGGER_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def load_tagger(folder: Path) -> TaggerMember:
    """Load a folder written by :func:`save_tagger`: (model in eval mode, tokenizer, meta); safetensors
    weights only (a folder with only pickled weights is refused before anything is unpickled)."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    meta_path = folder / TAGGER_FILE
    if not meta_path.exists():
        raise MedsiftError(f"not a saved impact tagger (no {TAGGER_FILE})", file=folder)
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    require_safetensors(folder)
    # use_safetensors: never unpickle weights from a run folder
    encoder = AutoModelForTokenClassification.from_pretrained(str(folder), use_safetensors=True)
    model: nn.Module = encoder
    if meta.get("crf"):
        from safetensors.torch import load_file

        model = CrfTagger(encoder, len(meta["labels"]))
        model.crf.load_state_dict(load_file(str(folder / CRF_FILE)))
    model.eval()
    return TaggerMember(model, AutoTokenizer.from_pretrained(str(folder)), meta)


# --- windows of subwords ------------------------------------------------------------------------


@dataclass
class EncodedWindow:
    """One window of one post, encoded: ``word_ids`` index words of the window (0 = its first word)."""

    post: int
    window: Window
    input_ids: list[int]
    word_ids: list[int | None]


def subword_counts(tokenizer: Any, words: list[str]) -> list[int]:
    """How many subwords each word becomes (no special tokens), through ``word_ids``."""
    if not words:
        return []
    enc = tokenizer(words, is_split_into_words=True, add_special_tokens=False, truncation=False)
    counts = [0] * len(words)
    for wid in enc.word_ids():
        if wid is not None:
            counts[wid] += 1
    return counts


def encode_windows(
    tokenizer: Any, posts: list[list[str]], max_length: int, stride: int
) -> tuple[list[EncodedWindow], list[list[int]]]:
    """Every post cut into windows of whole words (see :mod:`medsift.impacts.windows`), each encoded.

    Returns the windows and, per post, the subword count of each word (the merge needs them). The tokenizer
    is called twice for the whole list (counts, then windows), not twice per post: one batched call runs in
    the tokenizer's native code, where per-post calls spent most of their time in Python.
    """
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    all_counts: list[list[int]] = [[] for _ in posts]
    nonempty = [p for p, words in enumerate(posts) if words]
    if nonempty:
        enc = tokenizer(
            [posts[p] for p in nonempty], is_split_into_words=True, add_special_tokens=False, truncation=False
        )
        for i, p in enumerate(nonempty):
            counts = [0] * len(posts[p])
            for wid in enc.word_ids(i):
                if wid is not None:
                    counts[wid] += 1
            all_counts[p] = counts
    planned = [
        (p, window) for p, counts in enumerate(all_counts) for window in plan_windows(counts, budget, stride)
    ]
    if not planned:
        return [], all_counts
    enc = tokenizer(
        [posts[p][window[0] : window[1]] for p, window in planned],
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
    )
    out = [
        EncodedWindow(p, window, list(enc["input_ids"][i]), list(enc.word_ids(i)))
        for i, (p, window) in enumerate(planned)
    ]
    return out, all_counts
