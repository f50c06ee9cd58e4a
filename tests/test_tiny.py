"""The tiny test builders: every folder loads through the Auto classes and runs."""

from __future__ import annotations

import json

import pytest
import torch

WORDS = ["He", "overdosed", "on", "fentanyl", "😩", "头晕", "Übelkeit", "سردرد"]


@pytest.mark.parametrize("fixture", ["wordpiece_tokenizer", "unigram_tokenizer"])
def test_tokenizer_word_ids(fixture, request):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(request.getfixturevalue(fixture)))
    assert 300 <= len(tok) <= 1000
    assert tok.model_max_length == 128
    enc = tok(WORDS, is_split_into_words=True)
    word_ids = enc.word_ids()
    # Special tokens at both ends, every word has at least one piece, in order.
    assert word_ids[0] is None and word_ids[-1] is None
    seen = [w for w in word_ids if w is not None]
    assert sorted(set(seen)) == list(range(len(WORDS)))
    assert seen == sorted(seen)


def test_wordpiece_specials(wordpiece_tokenizer):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(wordpiece_tokenizer))
    ids = tok("overdosed withdrawal")["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["[CLS]", "overdosed", "withdrawal", "[SEP]"]
    assert (tok.pad_token, tok.unk_token, tok.mask_token) == ("[PAD]", "[UNK]", "[MASK]")


def test_unigram_specials(unigram_tokenizer):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(unigram_tokenizer))
    tokens = tok.convert_ids_to_tokens(tok("withdrawal")["input_ids"])
    assert tokens[0] == "<s>" and tokens[-1] == "</s>"
    assert tokens[1].startswith("▁")
    assert (tok.pad_token, tok.unk_token, tok.mask_token) == ("<pad>", "<unk>", "<mask>")


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_xlmr", "tiny_deberta"])
def test_encoder_heads_load_and_run(fixture, request):
    from transformers import (
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )

    path = str(request.getfixturevalue(fixture))
    tok = AutoTokenizer.from_pretrained(path)
    batch = tok(
        ["I took ibuprofen", "Das Medikament verursacht Übelkeit und Schwindel"],
        padding=True,
        return_tensors="pt",
    )
    seq = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    ner = AutoModelForTokenClassification.from_pretrained(path, num_labels=5)
    with torch.no_grad():
        assert seq(**batch).logits.shape == (2, 2)
        assert ner(**batch).logits.shape == (2, batch["input_ids"].shape[1], 5)
    config = json.loads((request.getfixturevalue(fixture) / "config.json").read_text())
    assert (
        config["hidden_size"] == 32 and config["num_hidden_layers"] == 2 and config["intermediate_size"] == 37
    )


def test_encoder_is_deterministic(tiny_bert, tmp_path):
    from safetensors.torch import load_file

    import tiny

    again = tiny.tiny_encoder_dir("bert", "wordpiece", root=tmp_path)
    a, b = load_file(tiny_bert / "model.safetensors"), load_file(again / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("fixture", ["tiny_qwen3", "tiny_qwen2", "tiny_llama"])
def test_causal_lm_chat_and_generate(fixture, request):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = str(request.getfixturevalue(fixture))
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Does this post mention an ADE? Answer 0 or 1."}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert prompt.startswith("<|im_start|>user\n") and prompt.endswith("<|im_start|>assistant\n")
    for digit in ("0", "1"):
        ids = tok(digit, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and tok.convert_ids_to_tokens(ids) == [digit]
    assert tok.pad_token == tok.eos_token == "<|endoftext|>"
    assert len(tok("<|im_start|>", add_special_tokens=False)["input_ids"]) == 1
    batch = tok(prompt, return_tensors="pt")
    out = model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert out.shape[0] == 1 and batch["input_ids"].shape[1] < out.shape[1] <= batch["input_ids"].shape[1] + 4
