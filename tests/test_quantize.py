"""int8 methods on a graph small enough to reason about: smoothing keeps fp32 exact and tames outliers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medsift.errors import MedsiftError

H = 32


def _outlier_block(path: Path, seed: int = 0) -> Path:
    """x -> LayerNorm (channel 0 scaled 40x: the outlier) -> q/k/v projections + residual -> y.

    Three weight MatMuls read one LayerNorm output, as in an encoder's attention."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    gamma = np.ones(H, np.float32)
    gamma[0] = 40.0
    inits = [
        numpy_helper.from_array(gamma, "gamma"),
        numpy_helper.from_array(np.zeros(H, np.float32), "beta"),
    ]
    nodes = [helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["h"], axis=-1, name="ln")]
    outputs = []
    for name in ("q", "k", "v"):
        inits.append(
            numpy_helper.from_array((rng.normal(size=(H, H)) / np.sqrt(H)).astype(np.float32), f"W{name}")
        )
        nodes.append(helper.make_node("MatMul", ["h", f"W{name}"], [name], name=f"{name}/MatMul"))
        outputs.append(name)
    nodes += [
        helper.make_node("Add", ["q", "k"], ["qk"], name="add1"),
        helper.make_node("Add", ["qk", "v"], ["qkv"], name="add2"),
        helper.make_node("Add", ["qkv", "h"], ["y"], name="residual"),  # the LayerNorm output is read twice
    ]
    graph = helper.make_graph(
        nodes,
        "block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, H])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, H])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, str(path))
    return path


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["y"], {"x": x})[0]


def test_smoothing_changes_nothing_in_exact_arithmetic(tmp_path: Path):
    import onnx

    from medsift.engine.quantize import _activation_ranges, _smooth, layer_roles

    src = _outlier_block(tmp_path / "block.onnx")
    x = np.random.default_rng(1).normal(size=(64, H)).astype(np.float32)
    model = onnx.load(str(src))
    assert set(layer_roles(model).values()) == {"normed"}
    ranges, tokens = _activation_ranges(model, [{"x": x}], ["h"])
    assert tokens == 64 and ranges["h"][0] > 10 * np.median(ranges["h"])  # the outlier channel
    assert _smooth(model, ranges, alpha=0.5) == 1
    onnx.save(model, str(tmp_path / "smoothed.onnx"))
    np.testing.assert_allclose(_run(tmp_path / "smoothed.onnx", x), _run(src, x), rtol=1e-4, atol=1e-4)
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("Mul") == 1  # one division for the three projections
    smoothed_ranges, _ = _activation_ranges(model, [{"x": x}], ["h/smoothed"])
    spread = lambda r: r.max() / np.median(r)  # noqa: E731
    assert spread(smoothed_ranges["h/smoothed"]) < spread(ranges["h"]) / 3


def test_smooth_int8_is_closer_to_fp32_than_plain_dynamic(tmp_path: Path):
    from medsift.engine.quantize import quantize_model

    src = _outlier_block(tmp_path / "block.onnx")
    rng = np.random.default_rng(2)
    calibration = [{"x": rng.normal(size=(128, H)).astype(np.float32)}]
    held_out = rng.normal(size=(256, H)).astype(np.float32)
    exact = _run(src, held_out)
    errors = {}
    for method in ("smooth", "dynamic"):
        dst = tmp_path / f"{method}.onnx"
        report = quantize_model(src, dst, method, calibration=calibration if method == "smooth" else None)
        assert report["method"] == method
        errors[method] = float(np.abs(_run(dst, held_out) - exact).mean())
    assert errors["smooth"] < errors["dynamic"] / 2


def test_smooth_needs_calibration_and_methods_are_checked(tmp_path: Path):
    from medsift.engine.quantize import int8_method, quantize_model

    src = _outlier_block(tmp_path / "block.onnx")
    with pytest.raises(MedsiftError, match="calibration"):
        quantize_model(src, tmp_path / "out.onnx", "smooth")
    with pytest.raises(MedsiftError, match="no tokens"):
        quantize_model(src, tmp_path / "out.onnx", "smooth", calibration=[])
    assert not (tmp_path / "out.onnx").exists()
    assert int8_method(True) == "smooth" and int8_method(False) is None and int8_method("mixed") == "mixed"
    with pytest.raises(MedsiftError, match="unknown int8 method 'int4'"):
        int8_method("int4")


TINY = dict(
    vocab_size=120,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=128,
    max_position_embeddings=64,
)
ARCHITECTURES = {
    "bert": ({}, 4),
    "xlm-roberta": ({"pad_token_id": 1}, 4),
    # shared attention keys: q/k weights also project the relative positions, so only the up-projections
    # are smoothed
    "deberta-v2": (
        {
            "relative_attention": True,
            "position_buckets": 16,
            "pos_att_type": ["p2c", "c2p"],
            "share_att_key": True,
            "max_relative_positions": 32,
            "type_vocab_size": 0,
        },
        2,
    ),
}


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_the_layer_rule_carries_to_the_encoders_the_papers_use(architecture: str, tmp_path: Path):
    import onnx
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from medsift.engine.onnx import _export_graph, session
    from medsift.engine.quantize import layer_roles, quantize_model

    extra, smoothed = ARCHITECTURES[architecture]
    torch.manual_seed(0)
    config = AutoConfig.for_model(architecture, **TINY, **extra)
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation="eager").eval()
    ids = torch.randint(3, 120, (2, 12))
    _export_graph(model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, tmp_path / "fp32.onnx")
    roles = sorted(layer_roles(onnx.load(str(tmp_path / "fp32.onnx"))).values())
    # per layer: q, k, v and the up-projection read a LayerNorm output; attention output; down-projection
    assert roles == ["narrowing"] * 2 + ["normed"] * 8 + ["square"] * 2
    rng = np.random.default_rng(0)
    mask = np.ones((4, 16), np.int64)
    calibration = [{"input_ids": rng.integers(3, 120, (4, 16)), "attention_mask": mask}]
    report = quantize_model(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", "smooth", calibration=calibration)
    assert report["smoothed_tensors"] == smoothed and report["calibration_tokens"] == 64
    feed = {"input_ids": rng.integers(3, 120, (8, 20)), "attention_mask": np.ones((8, 20), np.int64)}
    exact, int8 = (
        session(tmp_path / f, threads=1).run(["logits"], feed)[0] for f in ("fp32.onnx", "int8.onnx")
    )
    softmax = lambda z: np.exp(z) / np.exp(z).sum(-1, keepdims=True)  # noqa: E731
    assert np.abs(softmax(exact) - softmax(int8)).max() < 0.02


def test_quantising_prints_no_library_chatter_and_leaves_logging_as_it_was(tmp_path: Path):
    """In a fresh interpreter, as the CLI runs: ONNX Runtime's quantiser configures logging when imported."""
    import subprocess
    import sys

    src = _outlier_block(tmp_path / "block.onnx")
    script = f"""
import logging
import numpy as np
from medsift.engine.quantize import quantize_model
root = logging.getLogger()
before = (list(root.handlers), root.level)
for method in ("smooth", "blockwise"):  # both quantisers log every graph node at INFO
    quantize_model({str(src)!r}, __import__("pathlib").Path({str(tmp_path)!r}) / (method + ".onnx"), method,
                   calibration=[{{"x": np.ones((4, {H}), np.float32)}}])
assert (list(root.handlers), root.level) == before, (root.handlers, root.level)
print("done")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "done\n"
    assert "INFO" not in done.stderr and "WARNING" not in done.stderr, done.stderr[:500]


def _lookup(path: Path, rows: int, tied: bool = False) -> Path:
    """ids -> Gather(table) -> y; with ``tied``, the same table also feeds a MatMul (an output layer)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    table = np.random.default_rng(3).normal(scale=0.05, size=(rows, 200)).astype(np.float32)
    table[7, 3] = 2.0  # one large value: only its own block's scale grows
    nodes = [helper.make_node("Gather", ["table", "ids"], ["y"], name="embed")]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if tied:
        nodes.append(helper.make_node("Transpose", ["table"], ["table_t"], name="tie"))
        outputs.append(helper.make_tensor_value_info("table_t", TensorProto.FLOAT, None))
    graph = helper.make_graph(
        nodes,
        "lookup",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [None, None])],
        outputs,
        [numpy_helper.from_array(table, "table")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def test_vocabulary_tables_become_int8_rows_in_blocks(tmp_path: Path):
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from medsift.engine.quantize import BLOCK, EMBEDDING_ROWS, quantize_model

    src = _lookup(tmp_path / "lookup.onnx", EMBEDDING_ROWS)
    report = quantize_model(src, tmp_path / "int8.onnx", "blockwise")
    assert report["int8_embeddings"] == 1
    assert (tmp_path / "int8.onnx").stat().st_size < src.stat().st_size / 3
    table = numpy_helper.to_array(onnx.load(str(src)).graph.initializer[0])
    ids = np.array([[0, 7, EMBEDDING_ROWS - 1], [7, 7, 1]], np.int64)
    got = ort.InferenceSession(str(tmp_path / "int8.onnx"), providers=["CPUExecutionProvider"]).run(
        ["y"], {"ids": ids}
    )[0]
    # error at most half a step of each row's block; the outlier's block (row 7, channels 0-127) alone is coarse
    step = np.abs(np.pad(table, ((0, 0), (0, BLOCK * 2 - 200))).reshape(-1, 2, BLOCK)).max(axis=2) / 127
    bound = np.repeat(step, BLOCK, axis=1)[:, :200][ids] / 2
    assert np.all(np.abs(got - table[ids]) <= bound + 1e-7)
    assert np.abs(got[0, 1, BLOCK:] - table[7, BLOCK:]).max() < 0.001  # row 7's second block stays fine

    small = _lookup(tmp_path / "small.onnx", EMBEDDING_ROWS - 1)  # position-like tables stay fp32
    assert quantize_model(small, tmp_path / "small8.onnx", "blockwise")["int8_embeddings"] == 0
    tied = _lookup(tmp_path / "tied.onnx", EMBEDDING_ROWS, tied=True)  # shared with another layer: stays
    assert quantize_model(tied, tmp_path / "tied8.onnx", "blockwise")["int8_embeddings"] == 0


def test_smooth_on_a_graph_without_layernorm_readers_just_quantises(tmp_path: Path):
    from medsift.engine.quantize import quantize_model

    src = _lookup(tmp_path / "lookup.onnx", 16)  # a lookup and no linear layer: nothing to smooth
    report = quantize_model(src, tmp_path / "int8.onnx", "smooth", calibration=[])
    assert report["smoothed_tensors"] == 0 and report["calibration_tokens"] == 0
    assert (tmp_path / "int8.onnx").exists()
