"""Tiny, randomly initialised models and tokenizers for tests: built in-process, never downloaded.

Every builder caches its folder for the whole test session (keyed by its arguments), so the
cost of training a tokenizer or saving a model is paid once. Pass ``root`` (a pytest
``tmp_path_factory`` folder) to choose where they go; otherwise a private temporary folder is used.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

_CACHE: dict[tuple, Path] = {}
_LOCK = threading.RLock()
_ROOT: list[Path] = []

# A small multilingual corpus: enough variety that the trained vocabularies cover every script the
# tests feed in (so word_ids()/alignment tests see real subwords, not only [UNK]).
CORPUS = [
    "I took ibuprofen and got a terrible headache.",
    "After starting sertraline I felt dizzy and nauseous for a week.",
    "He overdosed on fentanyl last night and was taken to the hospital.",
    "Opioid withdrawal is the worst: sweating, shaking, and no sleep.",
    "My doctor prescribed oxycodone after surgery; it made me constipated.",
    "No side effects so far, the medication works well.",
    "She relapsed after two years clean and lost her job.",
    "Methadone clinic every morning, the cravings are getting better.",
    "I was arrested for possession and spent the night in jail.",
    "Suboxone helped me get through withdrawal without overdosing.",
    "Nach der Einnahme von Ibuprofen hatte ich starke Kopfschmerzen.",
    "Das Medikament verursacht bei mir Übelkeit und Schwindel.",
    "Ich habe keine Nebenwirkungen bemerkt, alles gut.",
    "Après avoir pris ce médicament, j'ai eu des nausées et des vertiges.",
    "Le traitement fonctionne bien, aucun effet secondaire.",
    "J'ai arrêté le paracétamol à cause des douleurs à l'estomac.",
    "После приёма таблеток у меня сильно болела голова.",
    "Лекарство вызывает тошноту и головокружение.",
    "Побочных эффектов не заметил, всё хорошо.",
    "この薬を飲んでから頭痛がひどくなりました。",
    "副作用は特にありません。よく効きます。",
    "吐き気とめまいがして、眠れませんでした。",
    "服用这种药后我感到头晕和恶心。",
    "没有副作用，效果很好。",
    "吃了止痛药以后胃很不舒服。",
    "بعد از مصرف این دارو سردرد شدید گرفتم.",
    "این دارو باعث حالت تهوع و سرگیجه می‌شود.",
    "هیچ عارضه جانبی نداشتم.",
    "Feeling sick 🤢 after the new pills 💊 ugh 😩",
    "Finally sleeping again 😴🙏 no more withdrawal!",
    "overdosed overdose overdosing withdrawal withdrawals relapse relapsed",
    "nausea vomiting headache dizziness insomnia anxiety depression rash itching",
    "0 1 2 3 4 5 6 7 8 9 10 25 100 mg ml dose doses",
    "The quick brown fox jumps over the lazy dog.",
    "Yes or no? Answer with 0 or 1.",
    "I could not stop scratching my arms, the rash spread everywhere within hours.",
    "Lost custody of my kids because of the pills, family stopped talking to me.",
    "Took too many painkillers, woke up in the emergency room with a tube in my throat.",
    "Meine Mutter bekam nach der Impfung Fieber und Gliederschmerzen.",
    "Depuis que je prends ce traitement, je dors très mal et je suis fatigué.",
    "Врач назначил антибиотики, но началась аллергия и сыпь по всему телу.",
    "痛み止めを飲みすぎて、胃が痛くなった。病院に行きました。",
    "医生给我开了新药，可是我晚上睡不着觉。",
    "دکتر گفت این قرص را هر روز صبح بخورم ولی خیلی خسته می‌شوم.",
]


def _root(root: Path | None) -> Path:
    if root is not None:
        return Path(root)
    if not _ROOT:
        _ROOT.append(Path(tempfile.mkdtemp(prefix="medsift-tiny-")))
    return _ROOT[0]


def _cached(key: tuple, root: Path | None, build) -> Path:
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None and hit.exists():
            return hit
        out = _root(root) / "-".join(str(k) for k in key)
        out.mkdir(parents=True, exist_ok=True)
        build(out)
        _CACHE[key] = out
        return out


def _corpus() -> list[str]:
    # Repeat so frequency-based trainers see each pair often enough to merge.
    return CORPUS * 3


def _train_wordpiece():
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=True
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.train_from_iterator(
        _corpus(), trainers.WordPieceTrainer(vocab_size=800, min_frequency=1, special_tokens=specials)
    )
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    special_map = dict(
        pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]"
    )
    return tok, special_map


def _train_unigram():
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.train_from_iterator(
        _corpus(),
        trainers.UnigramTrainer(
            vocab_size=700, special_tokens=specials, unk_token="<unk>", max_piece_length=16
        ),
    )
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )
    special_map = dict(
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        cls_token="<s>",
        sep_token="</s>",
        mask_token="<mask>",
    )
    return tok, special_map


def _save_tokenizer(tok, special_map: dict, out: Path, max_length: int = 128) -> None:
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=max_length, **special_map)
    fast.save_pretrained(str(out))


def _build_tokenizer(kind: str):
    if kind == "wordpiece":
        return _train_wordpiece()
    if kind == "unigram":
        return _train_unigram()
    if kind == "bytelevel":
        return _train_bytelevel_bpe()
    if kind == "sentencepiece":
        return _train_sentencepiece_bpe()
    raise ValueError(f"unknown tokenizer kind {kind!r} (wordpiece, unigram, bytelevel, sentencepiece)")


def tiny_tokenizer_dir(kind: str = "wordpiece", root: Path | None = None) -> Path:
    """A trained tiny tokenizer folder.

    ``"wordpiece"`` (BERT-style), ``"unigram"`` (XLM-R style), ``"bytelevel"`` (ChatML byte-level BPE
    with a chat template, as used by :func:`tiny_causal_lm_dir`) or ``"sentencepiece"`` (Llama-2 style:
    ``▁`` for spaces, BPE with ``<0xNN>`` byte fallback, ChatML template).
    """

    def build(out: Path) -> None:
        tok, special_map = _build_tokenizer(kind)
        if kind in ("bytelevel", "sentencepiece"):
            _save_chat_tokenizer(tok, out)
        else:
            _save_tokenizer(tok, special_map, out)

    return _cached(("tok", kind), root, build)


def _encoder_config(arch: str, tokenizer):
    from transformers import BertConfig, DebertaV2Config, XLMRobertaConfig

    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        pad_token_id=tokenizer.pad_token_id,
        type_vocab_size=2,
    )
    if arch == "bert":
        return BertConfig(max_position_embeddings=128, **common)
    if arch == "xlm-roberta":
        # RoBERTa positions start after the padding index, hence the +2.
        return XLMRobertaConfig(
            max_position_embeddings=130,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **common,
        )
    if arch == "deberta-v2":
        common["type_vocab_size"] = 0
        return DebertaV2Config(
            max_position_embeddings=128,
            relative_attention=True,
            position_biased_input=False,
            pos_att_type=["p2c", "c2p"],
            position_buckets=16,
            max_relative_positions=-1,
            **common,
        )
    raise ValueError(f"unknown encoder arch {arch!r} (bert, xlm-roberta, deberta-v2)")


def tiny_encoder_dir(arch: str = "bert", kind: str | None = None, root: Path | None = None) -> Path:
    """A random tiny encoder folder (config, safetensors, tokenizer) for bert / xlm-roberta / deberta-v2.

    ``kind`` defaults to ``"wordpiece"`` for bert and ``"unigram"`` for the others.
    """
    if kind is None:
        kind = "wordpiece" if arch == "bert" else "unigram"

    def build(out: Path) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir(kind, root)))
        config = _encoder_config(arch, tokenizer)
        torch.manual_seed(0)
        model = AutoModel.from_config(config)
        model.save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))

    return _cached(("enc", arch, kind), root, build)


CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


_QWEN_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def _train_bytelevel_bpe():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    # Qwen's split (each digit alone) then bytes: transformers 5 rebuilds exactly this pre-tokenizer when
    # it loads a qwen2 folder, so every arch tokenizes the same text the same way.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    # The byte alphabet makes every single byte (so "0" and "1") its own token.
    trainer = trainers.BpeTrainer(
        vocab_size=700,
        min_frequency=2,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_corpus() + ["user assistant system\n"] * 5, trainer)
    return tok, {}


def _train_sentencepiece_bpe():
    """A Llama-2-style vocabulary: ``▁`` marks spaces and characters outside it fall back to ``<0xNN>``."""
    import json

    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    specials = ["<unk>", "<s>", "<|endoftext|>"]
    metaspace = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    draft = Tokenizer(models.BPE(unk_token="<unk>"))
    draft.pre_tokenizer = metaspace
    draft.train_from_iterator(
        _corpus() + ["user assistant system"] * 5,
        trainers.BpeTrainer(vocab_size=600, min_frequency=2, special_tokens=specials),
    )
    trained = json.loads(draft.to_str())["model"]
    # the 256 byte tokens are ordinary vocabulary entries (as in Llama-2), right after the specials
    vocab = {t: i for i, t in enumerate([*specials, *(f"<0x{b:02X}>" for b in range(256))])}
    for token, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        vocab.setdefault(token, len(vocab))
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in trained["merges"]]
    tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = metaspace
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.add_special_tokens([AddedToken(t, special=True) for t in [*specials, "<|im_start|>", "<|im_end|>"]])
    return tok, {}


def _save_chat_tokenizer(tok, out: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=512,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(str(out))


def _causal_config(arch: str, vocab_size: int, eos: int, pad: int):
    from transformers import LlamaConfig, Qwen2Config, Qwen3Config

    common = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=pad,
        tie_word_embeddings=True,
    )
    if arch == "qwen3":
        return Qwen3Config(head_dim=8, **common)
    if arch == "qwen2":
        return Qwen2Config(**common)
    if arch == "llama":
        return LlamaConfig(head_dim=8, **common)
    raise ValueError(f"unknown causal arch {arch!r} (qwen2, qwen3, llama)")


def tiny_causal_lm_dir(arch: str = "qwen3", root: Path | None = None, tokenizer: str = "bytelevel") -> Path:
    """A random tiny causal LM folder (qwen2 / qwen3 / llama) with a ChatML tokenizer.

    ``tokenizer``: ``"bytelevel"`` (byte-level BPE, shared by every arch so they tokenize identically) or
    ``"sentencepiece"`` (Llama-2 style with byte fallback).
    """
    kind = tokenizer

    def build(out: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        tokenizer = AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir(kind, root)))
        pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        config = _causal_config(arch, len(tokenizer), pad, pad)
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config)
        # Chat replies end with <|im_end|>, plain text with <|endoftext|>: stop on either.
        model.generation_config = GenerationConfig(
            eos_token_id=[im_end, pad], pad_token_id=pad, bos_token_id=pad
        )
        model.save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))

    return _cached(("causal", arch) if kind == "bytelevel" else ("causal", arch, kind), root, build)
