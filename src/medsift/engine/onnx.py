"""ONNX export of a run's seed models and ONNX Runtime inference with the torch path's encoding and batching.

``export_onnx`` writes ``RUN_DIR/seed-<N>/onnx/model.onnx`` (and ``model.int8.onnx`` with dynamic int8
quantisation of the linear layers) with dynamic batch and sequence axes, then scores a few probe posts with
both torch and ONNX Runtime and refuses the export when the probabilities differ by more than a tolerance:
an exported model that silently disagrees with the trained one is worse than none.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from medsift.ade.encode import EncodedPosts, encode_posts
from medsift.ade.inference import token_budget_batches
from medsift.errors import MedsiftError
from medsift.io.atomic import atomic_write_text
from medsift.runs import RunManifest

FP32, INT8 = "model.onnx", "model.int8.onnx"
# Probes cover several scripts, lengths and a post longer than tiny test models' room.
PROBES = [
    "this drug gave me a terrible headache",
    "I picked up my prescription today",
    "薬のせいで頭痛がひどい",
    "После приёма таблеток у меня сильно болела голова.",
    "ok",
    "Nach der Einnahme von Ibuprofen hatte ich starke Kopfschmerzen und Übelkeit, " * 6,
]
FP32_TOLERANCE = 1e-4  # max |p_torch - p_onnx| over the probes
INT8_TOLERANCE = 0.1  # int8 moves probabilities; larger drifts mean a broken quantisation


def _seed_dirs(run_dir: Path) -> list[Path]:
    manifest = RunManifest.load(run_dir)
    if manifest.kind != "ade-classifier":
        raise MedsiftError(
            f"ONNX export supports ADE classifier runs; this run is '{manifest.kind}'", file=run_dir
        )
    return [run_dir / f"seed-{seed}" for seed in manifest.seeds]


def _export_graph(model: Any, example: dict[str, Any], path: Path) -> None:
    """torch -> ONNX with dynamic batch and sequence axes; logits out."""
    import torch

    class Logits(torch.nn.Module):
        # a plain tensor output: ModelOutput dataclasses do not survive every exporter
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
    tmp = path.with_name(path.name + ".tmp")
    # The tracer warns about Python-side shape checks in transformers' mask code; they are constant for
    # encoders, and _verify below catches any input shape the traced graph would get wrong.
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Logits(model).eval(),
            (example["input_ids"], example["attention_mask"]),
            str(tmp),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={**axes, "logits": {0: "batch"}},
            opset_version=18,
            dynamo=False,
        )
    os.replace(tmp, path)


def _quantize(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = dst.with_name(dst.name + ".tmp")
    # Only MatMul/Gemm: quantised embeddings and attention ops cost accuracy for little speed on CPU.
    # Per-channel weights with reduce_range (7-bit) avoid the u8s8 saturation of AVX2 kernels: on the
    # benchmark models this halved the drift from fp32 (MiniLM tagger max |dp| 0.24 -> 0.09) at equal speed.
    quantize_dynamic(
        str(src),
        str(tmp),
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"],
        per_channel=True,
        reduce_range=True,
    )
    os.replace(tmp, dst)


def session(path: Path, *, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session: all graph optimisations, intra-op threads = the cores we may use."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    options.intra_op_num_threads = max(1, threads or available)
    options.inter_op_num_threads = 1  # one graph at a time; parallelism inside operators
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_positive_probabilities(
    sess: Any,
    pad_id: int,
    encoded: EncodedPosts,
    *,
    batch_tokens: int = 16384,
    max_batch: int = 128,
    progress: bool = False,
) -> np.ndarray:
    """P(label 1) per post in input order: the torch path's batching, padding and window averaging."""
    from tqdm.auto import tqdm

    features = encoded.features
    lengths = [len(f["input_ids"]) for f in features]
    per_input = np.zeros(len(features), dtype=np.float64)
    bar = tqdm(total=len(features), disable=not progress, desc="scoring (onnx)", unit="input")
    for batch in token_budget_batches(lengths, batch_tokens, max_batch):
        width = max(lengths[i] for i in batch)
        ids = np.full((len(batch), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, i in enumerate(batch):
            ids[row, : lengths[i]] = features[i]["input_ids"]
            mask[row, : lengths[i]] = 1
        logits = sess.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0].astype(np.float64)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        per_input[batch] = shifted[:, 1] / shifted.sum(axis=1)
        bar.update(len(batch))
    bar.close()
    posts = np.array([f["post"] for f in features], dtype=np.int64)
    sums = np.bincount(posts, weights=per_input, minlength=encoded.n_posts)
    counts = np.bincount(posts, minlength=encoded.n_posts)
    return sums / np.maximum(counts, 1)


def _verify(model: Any, tokenizer: Any, max_length: int, path: Path, tolerance: float) -> float:
    from medsift.ade.inference import positive_probabilities

    encoded = encode_posts(tokenizer, PROBES, max_length=max_length, policy="windows", stride=8)
    p_torch = positive_probabilities(model, tokenizer, encoded)
    p_onnx = onnx_positive_probabilities(session(path, threads=1), tokenizer.pad_token_id or 0, encoded)
    diff = float(np.max(np.abs(p_torch - p_onnx)))
    if not diff <= tolerance:
        path.unlink(missing_ok=True)
        raise MedsiftError(
            f"exported model disagrees with torch (max |dp| = {diff:.2g} > {tolerance:g}); export refused",
            file=path,
        )
    return diff


def export_onnx(run_dir: str | Path, *, quantize: bool = False, quiet: bool = False) -> list[Path]:
    """Export every seed of an ADE (or impact tagger) run to ``seed-<N>/onnx/``; returns the model paths.

    A progress bar counts the seeds (``quiet`` switches it off)."""
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from medsift.config import parse_config, read_yaml

    run_dir = Path(run_dir)
    if RunManifest.load(run_dir).kind == "impacts-tagger":
        from medsift.engine.onnx_tagger import export_tagger_onnx

        return export_tagger_onnx(run_dir, quantize=quantize, quiet=quiet)
    seed_dirs = _seed_dirs(run_dir)
    config = parse_config(read_yaml(run_dir / "config.yaml"), source=run_dir / "config.yaml")
    max_length = config.model.max_length
    written: list[Path] = []
    for seed_dir in tqdm(seed_dirs, desc="ONNX export", unit="seed", disable=quiet):
        folder = seed_dir / "model"
        # eager attention traces to plain ops every exporter and runtime understands
        model = AutoModelForSequenceClassification.from_pretrained(
            folder, use_safetensors=True, attn_implementation="eager"
        ).eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        out = seed_dir / "onnx"
        out.mkdir(exist_ok=True)
        example = tokenizer(PROBES[:2], padding=True, return_tensors="pt")
        _export_graph(model, dict(example), out / FP32)
        report = {"opset": 18, "torch": torch.__version__, "max_abs_diff": {}}
        report["max_abs_diff"]["fp32"] = _verify(model, tokenizer, max_length, out / FP32, FP32_TOLERANCE)
        written.append(out / FP32)
        if quantize:
            _quantize(out / FP32, out / INT8)
            report["max_abs_diff"]["int8"] = _verify(model, tokenizer, max_length, out / INT8, INT8_TOLERANCE)
            written.append(out / INT8)
        else:
            (out / INT8).unlink(missing_ok=True)  # a stale int8 model would not match the new fp32 one
        atomic_write_text(out / "export.json", json.dumps(report, indent=2) + "\n")
    return written


class OnnxAdeClassifier:
    """``AdeClassifier`` on ONNX Runtime: same encoding, batching, seed averaging and thresholds."""

    def __init__(self, run_dir: Path, config: Any, sessions: dict[str, Any], tokenizer: Any, policy: Any):
        self.run_dir, self.config, self.sessions, self.tokenizer, self.policy = (
            run_dir,
            config,
            sessions,
            tokenizer,
            policy,
        )

    @classmethod
    def from_run(
        cls, run_dir: str | Path, *, quantized: bool | None = None, threads: int | None = None
    ) -> OnnxAdeClassifier:
        """Load the exported seeds; ``quantized=None`` takes int8 models when they were exported."""
        from transformers import AutoTokenizer

        from medsift.config import parse_config, read_yaml
        from medsift.decision import ThresholdPolicy
        from medsift.runs import read_json

        run_dir = Path(run_dir)
        seed_dirs = _seed_dirs(run_dir)
        if quantized is None:
            quantized = all((d / "onnx" / INT8).exists() for d in seed_dirs)
        sessions = {}
        for seed_dir in seed_dirs:
            path = seed_dir / "onnx" / (INT8 if quantized else FP32)
            if not path.exists():
                hint = "medsift export RUN_DIR --quantize" if quantized else "medsift export RUN_DIR"
                raise MedsiftError(f"no ONNX model; run `{hint}` first", file=path)
            sessions[seed_dir.name.replace("-", "")] = session(path, threads=threads)
        config = parse_config(read_yaml(run_dir / "config.yaml"), source=run_dir / "config.yaml")
        tokenizer = AutoTokenizer.from_pretrained(seed_dirs[0] / "model")
        policy = ThresholdPolicy.from_dict(read_json(run_dir / "thresholds.json"))
        return cls(run_dir, config, sessions, tokenizer, policy)

    def predict(
        self,
        texts: list[str],
        languages: list[str] | None = None,
        *,
        progress: bool = False,
        batch_tokens: int = 16384,
        ids: list[str] | None = None,
    ) -> Any:
        """Same contract as :meth:`medsift.ade.AdeClassifier.predict`."""
        from medsift.ade.predict import AdePrediction
        from medsift.preprocess import normalize_text

        m = self.config.model
        if self.config.data.normalize:
            texts = [normalize_text(t) for t in texts]
        encoded = encode_posts(
            self.tokenizer,
            list(texts),
            max_length=m.max_length,
            policy=m.long_posts,
            head_fraction=m.head_fraction,
            stride=m.window_stride,
        )
        pad_id = self.tokenizer.pad_token_id or 0
        per_seed = {
            name: onnx_positive_probabilities(
                sess, pad_id, encoded, batch_tokens=batch_tokens, progress=progress
            )
            for name, sess in self.sessions.items()
        }
        p = np.mean(np.stack(list(per_seed.values())), axis=0) if texts else np.zeros(0)
        languages = list(languages) if languages is not None else [""] * len(texts)
        from medsift.decision import threshold_groups

        groups = threshold_groups(ids, languages) if ids is not None else languages
        thresholds = self.policy.thresholds_for(groups)
        return AdePrediction(p, per_seed, (p >= thresholds).astype(int), thresholds, encoded.n_too_long)
