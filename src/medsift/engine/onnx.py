"""ONNX export of a run's seed models and ONNX Runtime inference with the torch path's encoding and batching.

``export_onnx`` writes ``RUN_DIR/seed-<N>/onnx/model.onnx`` (and ``model.int8.onnx`` with int8 linear layers,
:mod:`medsift.engine.quantize`) with dynamic batch and sequence axes, then scores a few probe posts with
both torch and ONNX Runtime and refuses the export when the probabilities differ by more than a tolerance:
an exported model that silently disagrees with the trained one is worse than none.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from medsift.ade.encode import EncodedPosts, encode_posts
from medsift.ade.inference import score_batches
from medsift.ade.predict import AdeClassifier
from medsift.batching import CPU_BATCH_TOKENS, MAX_BATCH, available_cores, pad_batch
from medsift.engine.quantize import CALIBRATION_POSTS, int8_method, quantize_model
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
    from medsift.engine.backends import _is_ngram_run

    if _is_ngram_run(run_dir):
        raise MedsiftError(
            "this is a character n-gram run: it needs no export (it runs in numpy, with either --backend)",
            file=run_dir,
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


def session(path: Path, *, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session with all graph optimisations and ``threads`` intra-op threads.

    Spinning is off: a thread that busy-waits for work steals the core its neighbour (another worker, or
    another tenant of the machine) needs; under load this tripled throughput here.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = max(1, threads or available_cores())
    options.inter_op_num_threads = 1  # one graph at a time; parallelism inside operators or across workers
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def worker_sessions(path: Path, threads: int | None = None) -> tuple[Any, int]:
    """One session shared by ``threads`` single-threaded workers: ``(session, workers)``.

    ``InferenceSession.run`` is thread-safe and releases the GIL, so workers run batches side by side.
    """
    workers = max(1, threads or available_cores())
    return session(path, threads=1), workers


def onnx_positive_probabilities(
    sess: Any,
    pad_id: int,
    encoded: EncodedPosts,
    *,
    batch_tokens: int = CPU_BATCH_TOKENS,
    workers: int = 1,
    max_batch: int = MAX_BATCH,
    progress: bool = False,
) -> np.ndarray:
    """P(label 1) per post in input order: the torch path's batching, padding and window averaging."""
    features = encoded.features

    def positive(batch: list[int]) -> np.ndarray:
        ids, mask = pad_batch([features[i]["input_ids"] for i in batch], pad_id)
        logits = sess.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0].astype(np.float64)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))  # (batch, 2)
        return shifted[:, 1] / shifted.sum(axis=1)

    return score_batches(
        encoded,
        positive,
        batch_tokens=batch_tokens,
        workers=workers,
        progress=progress,
        desc="scoring (onnx)",
        max_batch=max_batch,
    )


def spread(items: list[Any], n: int = CALIBRATION_POSTS) -> list[Any]:
    """``n`` items evenly spaced over ``items`` (all of them when fewer): files grouped by language or source
    still give every group its share."""
    if len(items) <= n:
        return list(items)
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


def calibration_posts(
    config: Any, calibration: str | Path | None, read: Callable[[Path], list[Any]], probes: list[Any]
) -> tuple[list[Any], str]:
    """The posts int8 calibration reads, spread over their files (:func:`spread`), and where they came from.

    ``calibration`` when given (it must exist), else the run's training files that are still where its
    config says, else ``probes``. ``read`` turns one file into its posts."""
    if calibration is not None:
        if not Path(calibration).is_file():
            raise MedsiftError("calibration file not found", file=calibration)
        files = [Path(calibration)]
    else:
        from medsift.config import resolve_data_path

        # sample:NAME training files are read from the bundled sample (they were probe posts before)
        files = [path for path in map(resolve_data_path, config.data.train) if path.is_file()]
    posts = spread([post for f in files for post in read(f)] or list(probes))
    return posts, f"{len(posts)} posts from {', '.join(map(str, files)) or 'built-in probe posts'}"


def _check_calibration(method: str | None, calibration: str | Path | None) -> None:
    if calibration is not None and method != "smooth":
        raise MedsiftError(
            "--calibration is read by the int8 method 'smooth' only: add --quantize, or drop it"
        )


def _ade_calibration(config: Any, calibration: str | Path | None) -> tuple[list[str], str]:
    from medsift.io import read_ade_any
    from medsift.preprocess import normalize_text

    texts, source = calibration_posts(config, calibration, lambda f: read_ade_any(f)["text"].tolist(), PROBES)
    return [normalize_text(t) for t in texts] if config.data.normalize else texts, source


def _ade_feeds(config: Any, tokenizer: Any, texts: list[str]) -> list[dict[str, np.ndarray]]:
    """Calibration batches: the posts encoded as ``predict`` encodes them."""
    m = config.model
    encoded = encode_posts(
        tokenizer,
        texts,
        max_length=m.max_length,
        policy=m.long_posts,
        head_fraction=m.head_fraction,
        stride=m.window_stride,
    )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return input_batches([f["input_ids"] for f in encoded.features], pad_id)


def input_batches(sequences: list[list[int]], pad_id: int, size: int = 16) -> list[dict[str, np.ndarray]]:
    """Padded ``input_ids`` / ``attention_mask`` batches of ``size`` sequences, similar lengths together."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    batches = []
    for start in range(0, len(order), size):
        ids, mask = pad_batch([sequences[i] for i in order[start : start + size]], pad_id)
        batches.append({"input_ids": ids, "attention_mask": mask})
    return batches


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


def export_onnx(
    run_dir: str | Path,
    *,
    quantize: bool | str = False,
    quiet: bool = False,
    calibration: str | Path | None = None,
) -> list[Path]:
    """Export every seed of an ADE (or impact tagger) run to ``seed-<N>/onnx/``; returns the model paths.

    ``quantize``: False, True (the default int8 method) or a method name (:mod:`medsift.engine.quantize`).
    ``calibration``: posts for the ``smooth`` method's activation ranges (default: the run's training
    files, else built-in probes). A progress bar counts the seeds (``quiet`` switches it off)."""
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from medsift.config import parse_config, read_yaml

    run_dir = Path(run_dir)
    if RunManifest.load(run_dir).kind == "impacts-tagger":
        from medsift.engine.onnx_tagger import export_tagger_onnx

        return export_tagger_onnx(run_dir, quantize=quantize, quiet=quiet, calibration=calibration)
    method = int8_method(quantize)
    _check_calibration(method, calibration)
    seed_dirs = _seed_dirs(run_dir)
    config = parse_config(read_yaml(run_dir / "config.yaml"), source=run_dir / "config.yaml")
    max_length = config.model.max_length
    texts, source = _ade_calibration(config, calibration) if method == "smooth" else ([], "")
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
        if method is not None:
            feeds = _ade_feeds(config, tokenizer, texts) if method == "smooth" else None
            report["int8"] = quantize_model(out / FP32, out / INT8, method, calibration=feeds)
            if feeds is not None:
                report["int8"]["calibration"] = source
            report["max_abs_diff"]["int8"] = _verify(model, tokenizer, max_length, out / INT8, INT8_TOLERANCE)
            written.append(out / INT8)
        else:
            (out / INT8).unlink(missing_ok=True)  # a stale int8 model would not match the new fp32 one
        atomic_write_text(out / "export.json", json.dumps(report, indent=2) + "\n")
    return written


class OnnxAdeClassifier(AdeClassifier):
    """``AdeClassifier`` on ONNX Runtime: same encoding, batching, seed averaging and thresholds.

    ``threads`` single-threaded workers (default: the cores this process may use) share each seed's session.
    """

    def __init__(
        self, run_dir: Path, config: Any, sessions: dict[str, Any], tokenizer: Any, policy: Any, workers: int
    ):
        super().__init__(run_dir, config, {}, tokenizer, policy)
        self.sessions, self.workers = sessions, workers

    @classmethod
    def from_run(
        cls, run_dir: str | Path, *, quantized: bool | None = None, threads: int | None = None
    ) -> OnnxAdeClassifier:
        """Load the exported seeds; ``quantized=None`` takes int8 models when they were exported."""
        from transformers import AutoTokenizer

        from medsift.config import parse_config, read_yaml
        from medsift.runs import read_thresholds

        run_dir = Path(run_dir)
        seed_dirs = _seed_dirs(run_dir)
        if quantized is None:
            quantized = all((d / "onnx" / INT8).exists() for d in seed_dirs)
        sessions, workers = {}, 1
        for seed_dir in seed_dirs:
            path = seed_dir / "onnx" / (INT8 if quantized else FP32)
            if not path.exists():
                hint = "medsift export RUN_DIR --quantize" if quantized else "medsift export RUN_DIR"
                raise MedsiftError(f"no ONNX model; run `{hint}` first", file=path)
            sessions[seed_dir.name.replace("-", "")], workers = worker_sessions(path, threads)
        config = parse_config(read_yaml(run_dir / "config.yaml"), source=run_dir / "config.yaml")
        tokenizer = AutoTokenizer.from_pretrained(seed_dirs[0] / "model")
        return cls(run_dir, config, sessions, tokenizer, read_thresholds(run_dir), workers)

    def _score_members(
        self, encoded: EncodedPosts, *, batch_tokens: int | None, progress: bool
    ) -> dict[str, np.ndarray]:
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        return {
            name: onnx_positive_probabilities(
                sess,
                pad_id,
                encoded,
                batch_tokens=batch_tokens or CPU_BATCH_TOKENS,
                workers=self.workers,
                progress=progress,
            )
            for name, sess in self.sessions.items()
        }
