"""ONNX export and ONNX Runtime inference for impact taggers (``impacts-tagger`` runs).

The encoder's per-subword scores are exported (``seed-<N>/onnx/model.onnx``, optionally ``model.int8.onnx``);
everything around them (windows, word strategy, CRF Viterbi, BIO repair, seed vote) stays medsift's own code:
:class:`OnnxTokenModel` stands in for the torch module inside :class:`medsift.impacts.predict.SpanTagger`.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from medsift.engine.onnx import (
    FP32,
    FP32_TOLERANCE,
    INT8,
    INT8_TOLERANCE,
    _check_calibration,
    _export_graph,
    calibration_posts,
    input_batches,
    session,
    worker_sessions,
)
from medsift.engine.quantize import int8_method, quantize_model
from medsift.errors import MedsiftError
from medsift.io.atomic import atomic_write_text
from medsift.results import TaggerMember
from medsift.runs import RunManifest

PROBE_POSTS = [
    ["I", "overdosed", "last", "night", "and", "lost", "my", "job", "."],
    ["No", "side", "effects", "so", "far"],
    ("withdrawal was hell and my family stopped talking to me " * 4).split(),
]


class OnnxTokenModel:
    """Duck-types the torch tagger for ``SpanTagger``: ``parameters()``, ``__call__`` -> ``.logits``, ``decode``."""

    def __init__(self, sess: Any, decode: Any = None, workers: int = 1):
        import torch

        self.sess, self._decode, self._device_probe = sess, decode, torch.zeros(1)
        self.workers = workers  # single-threaded workers sharing ``sess`` (see medsift.batching)

    def parameters(self):
        yield self._device_probe  # inputs stay on the CPU

    def eval(self) -> OnnxTokenModel:
        return self

    def __call__(self, input_ids: Any, attention_mask: Any) -> Any:
        import torch

        feed = {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()}
        return SimpleNamespace(logits=torch.from_numpy(self.sess.run(["logits"], feed)[0]))

    def decode(self, emissions: Any, valid: Any) -> list[list[int]]:
        return self._decode(emissions, valid)


def _tagger_seed_dirs(run_dir: Path) -> list[Path]:
    from medsift.training import seed_is_done

    manifest = RunManifest.load(run_dir)
    if manifest.kind != "impacts-tagger":
        raise MedsiftError(f"expected an impact tagger run, found '{manifest.kind}'", file=run_dir)
    return [d for d in (run_dir / f"seed-{s}" for s in manifest.seeds) if seed_is_done(d)]


def _max_diff(model: Any, tokenizer: Any, path: Path) -> float:
    import torch

    batch = tokenizer(PROBE_POSTS, is_split_into_words=True, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.softmax(-1)
    got = OnnxTokenModel(session(path, threads=1))(
        batch["input_ids"], batch["attention_mask"]
    ).logits.softmax(-1)
    mask = batch["attention_mask"].bool()
    return float((ref - got).abs()[mask].max())


def _tagger_feeds(tokenizer: Any, meta: dict[str, Any], posts: list[list[str]]) -> list[dict[str, Any]]:
    """Calibration batches: the posts cut into windows as the tagger cuts them."""
    from medsift.impacts.model import encode_windows

    windows, _ = encode_windows(tokenizer, posts, meta["max_length"], meta["stride"])
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return input_batches([w.input_ids for w in windows], pad_id)


def export_tagger_onnx(
    run_dir: str | Path,
    *,
    quantize: bool | str = False,
    quiet: bool = False,
    calibration: str | Path | None = None,
) -> list[Path]:
    """Export every finished seed of a tagger run; refuse when its scores disagree with torch."""
    from tqdm.auto import tqdm

    from medsift.impacts.model import load_tagger

    run_dir = Path(run_dir)
    method = int8_method(quantize)
    _check_calibration(method, calibration)
    posts, source = [], ""
    if method == "smooth":
        from medsift.config import parse_config, read_yaml
        from medsift.io import read_impacts

        config = parse_config(read_yaml(run_dir / "config.yaml"), source=run_dir / "config.yaml")
        posts, source = calibration_posts(
            config, calibration, lambda f: [list(t) for t in read_impacts(f)["tokens"]], PROBE_POSTS
        )
    written: list[Path] = []
    for seed_dir in tqdm(_tagger_seed_dirs(run_dir), desc="ONNX export", unit="seed", disable=quiet):
        model, tokenizer, meta = load_tagger(seed_dir / "model")
        encoder = model.encoder if meta.get("crf") else model
        out = seed_dir / "onnx"
        out.mkdir(exist_ok=True)
        example = tokenizer(PROBE_POSTS[:2], is_split_into_words=True, padding=True, return_tensors="pt")
        _export_graph(encoder, dict(example), out / FP32)
        report: dict[str, Any] = {"opset": 18, "max_abs_diff": {}}
        targets = [(FP32, FP32_TOLERANCE)]
        if method is not None:
            feeds = _tagger_feeds(tokenizer, meta, posts) if method == "smooth" else None
            report["int8"] = quantize_model(out / FP32, out / INT8, method, calibration=feeds)
            if feeds is not None:
                report["int8"]["calibration"] = source
            targets.append((INT8, INT8_TOLERANCE))
        else:
            (out / INT8).unlink(missing_ok=True)
        for name, tolerance in targets:
            diff = _max_diff(encoder, tokenizer, out / name)
            if not diff <= tolerance:
                (out / name).unlink(missing_ok=True)
                raise MedsiftError(
                    f"exported tagger disagrees with torch (max |dp| = {diff:.2g}); export refused",
                    file=out / name,
                )
            report["max_abs_diff"][name] = diff
            written.append(out / name)
        atomic_write_text(out / "export.json", json.dumps(report, indent=2) + "\n")
    return written


def onnx_span_tagger(
    run_dir: str | Path, *, quantized: bool | None = None, threads: int | None = None
) -> Any:
    """A ``SpanTagger`` whose encoders run on ONNX Runtime (CRF decoding stays in torch)."""
    from medsift.impacts.model import load_tagger
    from medsift.impacts.predict import SpanTagger

    seed_dirs = _tagger_seed_dirs(Path(run_dir))
    if quantized is None:
        quantized = all((d / "onnx" / INT8).exists() for d in seed_dirs)
    members = []
    for seed_dir in seed_dirs:
        path = seed_dir / "onnx" / (INT8 if quantized else FP32)
        if not path.exists():
            raise MedsiftError("no ONNX model; run `medsift export RUN_DIR` first", file=path)
        model, tokenizer, meta = load_tagger(seed_dir / "model")
        decode = model.decode if meta.get("crf") else None  # the CRF is tiny: Viterbi stays in torch
        sess, workers = worker_sessions(path, threads)
        members.append(TaggerMember(OnnxTokenModel(sess, decode, workers), tokenizer, meta))
    return SpanTagger(members)


__all__ = ["OnnxTokenModel", "export_tagger_onnx", "onnx_span_tagger"]
