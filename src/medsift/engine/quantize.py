"""int8 quantisation of exported encoders: which linear layers get which int8 method, and why.

Four methods (``medsift export --quantize --int8 METHOD``); measured numbers in docs/deployment.md:

- ``smooth`` (default): per-channel smoothing, then a layer-by-layer choice. The linear layers that read a
  LayerNorm output (attention query/key/value and the feed-forward up-projection) see a few outlier channels
  tens of times larger than the rest, and dynamic int8's single scale per activation tensor blurs all the
  others. Smoothing (the idea of SmoothQuant, Xiao et al. 2023) divides each such input channel by
  ``s_j = max|x_j|^a / max|W_j|^(1-a)`` (``a`` = 0.5, ``max|x_j|`` measured on calibration posts) and
  multiplies row ``j`` of every weight reading it by ``s_j``: the product is unchanged in exact arithmetic,
  and activations and weights share the range. Those layers and the attention output then run dynamic int8;
  the narrowing layers (feed-forward down-projection, classifier head), whose GELU inputs no per-tensor
  scale suits, run blockwise int8. The division is one ``Mul`` node per smoothed tensor, not folded into the
  LayerNorm, because BERT-style encoders also add that LayerNorm output to the residual stream.
- ``mixed``: dynamic int8 for the LayerNorm readers without smoothing, blockwise for every other layer.
- ``dynamic``: ONNX Runtime's dynamic quantisation of every weight MatMul: the fastest, the least exact.
- ``blockwise``: int8 weights in blocks of 128 input channels (``MatMulNBits``; activations quantised per
  block too): the most exact, the smallest speed-up.

Under every method the vocabulary table also becomes int8 (rows in blocks of 128 channels,
``GatherBlockQuantized``): it is most of a multilingual encoder's memory and costs no speed. Pooler and
classifier ``Gemm`` nodes (one row per post) stay fp32: quantising them tripled ``dynamic``'s drift.

Layers are found by graph structure (three or more weight matrices reading one tensor; a weight that widens
or narrows its input), not by name, so the rule holds for BERT, XLM-R and DeBERTa graphs alike.

ONNX Runtime ships dynamic and blockwise quantisation but no smoothing pass and only 4-bit tables, hence
the hand-written :func:`_smooth` and :func:`_quantize_embeddings` (a few graph edits on top of the
library's quantisers).
"""

from __future__ import annotations

import logging
import os
import platform
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from medsift.errors import MedsiftError

INT8_METHODS = ("smooth", "mixed", "dynamic", "blockwise")
DEFAULT_INT8 = "smooth"
BLOCK = 128
SMOOTH_ALPHA = 0.5  # SmoothQuant's default migration strength
CALIBRATION_POSTS = 256  # enough: the outlier channels are a property of the model, present in every post
_SCALE_RANGE = (1e-2, 1e2)  # a dead channel (max 0) must not blow a weight row up

Feeds = Iterable[dict[str, np.ndarray]]  # batches of graph inputs (input_ids / attention_mask for an encoder)


def cpu_has_vnni(cpuinfo: str | None = None) -> bool:
    """Whether this x86 CPU multiplies u8 x s8 without 16-bit saturation (AVX512-VNNI, AVX-VNNI or AMX)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = next(
        (line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), []
    )
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags))


def int8_method(quantize: bool | str | None) -> str | None:
    """``quantize`` as given to the exporters: False/None (none), True (the default) or a method name."""
    if quantize is False or quantize is None:
        return None
    method = DEFAULT_INT8 if quantize is True else str(quantize)
    if method not in INT8_METHODS:
        raise MedsiftError(f"unknown int8 method '{method}'; choose one of {', '.join(INT8_METHODS)}")
    return method


def layer_roles(model: Any) -> dict[str, str]:
    """Role of every weight MatMul node: ``normed`` (reads a LayerNorm output: q/k/v or an up-projection),
    ``narrowing`` (fewer outputs than inputs: down-projection, classifier head) or ``square`` (the rest)."""
    weights = {init.name: tuple(init.dims) for init in model.graph.initializer}
    readers: dict[str, list[str]] = defaultdict(list)
    shapes: dict[str, tuple[int, ...]] = {}
    for node in _weight_matmuls(model, weights):
        readers[node.input[0]].append(node.name)
        shapes[node.name] = weights[node.input[1]]
    roles = {}
    for names in readers.values():
        for name in names:
            k, n = shapes[name]
            if len(names) >= 3 or n > k:
                roles[name] = "normed"
            else:
                roles[name] = "narrowing" if n < k else "square"
    return roles


def _input_uses(model: Any) -> dict[str, int]:
    """How many node inputs read each tensor (a weight read twice is tied to another layer)."""
    uses: dict[str, int] = defaultdict(int)
    for node in model.graph.node:
        for name in node.input:
            uses[name] += 1
    return uses


def _weight_matmuls(model: Any, weights: dict[str, Any]) -> list[Any]:
    return [
        node
        for node in model.graph.node
        if node.op_type == "MatMul"
        and len(node.input) == 2
        and node.input[1] in weights
        and len(weights[node.input[1]]) == 2
    ]


def quantize_model(
    src: Path, dst: Path, method: str = DEFAULT_INT8, *, calibration: Feeds | None = None
) -> dict[str, Any]:
    """int8 linear layers for the fp32 graph ``src``, written to ``dst``; returns the choices made.

    ``calibration`` (batches of model inputs) is needed by ``smooth`` only: it measures each smoothed
    channel's largest activation."""
    with _library_logging_contained():
        return _quantize_model(src, dst, method, calibration)


@contextmanager
def _library_logging_contained() -> Iterator[None]:
    """Keep ONNX Runtime's quantisers from printing a line per graph node.

    Importing ``matmul_nbits_quantizer`` calls ``logging.basicConfig(level=INFO)``, which gives the root
    logger a stderr handler, and both quantisers log every node at INFO. Only errors pass meanwhile, and the
    root logger gets back its own handlers and level afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import onnxruntime.quantization.matmul_nbits_quantizer  # noqa: F401  (its basicConfig runs now, not later)

    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _quantize_model(src: Path, dst: Path, method: str, calibration: Feeds | None) -> dict[str, Any]:
    import onnx

    method = int8_method(method) or DEFAULT_INT8
    model = onnx.load(str(src))
    roles = layer_roles(model)
    report: dict[str, Any] = {"method": method, "int8_embeddings": _quantize_embeddings(model)}
    if method == "smooth":
        if calibration is None:
            raise MedsiftError("int8 method 'smooth' needs calibration posts")
        smoothed = sorted({n.input[0] for n in model.graph.node if roles.get(n.name) == "normed"})
        tokens = count = 0  # a graph without LayerNorm readers has nothing to smooth
        if smoothed:
            ranges, tokens = _activation_ranges(model, calibration, smoothed)
            count = _smooth(model, ranges, SMOOTH_ALPHA)
        report.update(alpha=SMOOTH_ALPHA, calibration_tokens=tokens, smoothed_tensors=count)
    blockwise = {
        "smooth": {"narrowing"},
        "mixed": {"narrowing", "square"},
        "blockwise": {"normed", "narrowing", "square"},
        "dynamic": set(),
    }[method]
    dynamic = [name for name, role in roles.items() if role not in blockwise]
    if blockwise:
        model = _blockwise(model, exclude=dynamic)
        report.update(bits=8, block_size=BLOCK, accuracy_level=4, symmetric=True)
    tmp = dst.with_name(dst.name + ".tmp")
    if dynamic:
        report |= _dynamic(model, tmp, nodes=dynamic)
    else:
        onnx.save(model, str(tmp))
    os.replace(tmp, dst)
    return report


EMBEDDING_ROWS = 4096  # a Gather table with at least this many rows is a vocabulary, worth int8


def _quantize_embeddings(model: Any) -> int:
    """Vocabulary tables to int8 in blocks of ``BLOCK`` channels per row (``GatherBlockQuantized``, 8 bits).

    Multilingual vocabularies dominate an encoder's size (e5-small: 96M of its 118M parameters; XLM-R:
    250k rows), and a lookup reads one row per token, so int8 rows cost no speed and a quarter of the memory.
    ONNX Runtime's weight-only quantiser writes only 4-bit tables, hence the hand-written table here.
    Returns the number of tables converted."""
    from onnx import helper, numpy_helper

    weights = {init.name: init for init in model.graph.initializer}
    uses = _input_uses(model)
    replaced: dict[int, Any] = {}  # node position -> its GatherBlockQuantized
    for i, node in enumerate(model.graph.node):
        table = weights.get(node.input[0]) if node.op_type == "Gather" else None
        if table is None or len(table.dims) != 2 or table.dims[0] < EMBEDDING_ROWS or uses[table.name] > 1:
            continue  # small tables (positions, token types) and tied tables (shared with an output layer) stay
        if next((a.i for a in node.attribute if a.name == "axis"), 0) != 0:
            continue
        values = numpy_helper.to_array(table)
        rows, cols = values.shape
        blocks = -(-cols // BLOCK)
        padded = np.zeros((rows, blocks * BLOCK), np.float32)
        padded[:, :cols] = values
        padded = padded.reshape(rows, blocks, BLOCK)
        scales = np.abs(padded).max(axis=2) / 127.0
        scales[scales == 0] = 1.0
        codes = np.clip(np.round(padded / scales[..., None]), -127, 127) + 128
        codes = codes.astype(np.uint8).reshape(rows, blocks * BLOCK)[:, :cols]
        model.graph.initializer.remove(table)
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(np.ascontiguousarray(codes), f"{table.name}/int8"),
                numpy_helper.from_array(scales.astype(np.float32), f"{table.name}/scales"),
                numpy_helper.from_array(np.full((rows, blocks), 128, np.uint8), f"{table.name}/zero_points"),
            ]
        )
        replaced[i] = helper.make_node(
            "GatherBlockQuantized",
            [f"{table.name}/int8", node.input[1], f"{table.name}/scales", f"{table.name}/zero_points"],
            list(node.output),
            name=f"{node.name}/int8",
            domain="com.microsoft",
            bits=8,
            block_size=BLOCK,
            gather_axis=0,
            quantize_axis=1,
        )
    for i, node in replaced.items():
        model.graph.node[i].CopyFrom(node)
    converted = len(replaced)
    if converted and not any(op.domain == "com.microsoft" for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return converted


def _activation_ranges(model: Any, feeds: Feeds, tensors: list[str]) -> tuple[dict[str, np.ndarray], int]:
    """Largest |activation| per channel of each tensor over the calibration tokens (padding left out)."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    for name in tensors:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    ranges: dict[str, np.ndarray] = {}
    tokens = 0
    for feed in feeds:
        mask = feed.get("attention_mask")
        for name, value in zip(tensors, sess.run(tensors, feed), strict=True):
            # one row per token, padding left out (a graph without a mask: every row counts)
            rows = value[mask.astype(bool)] if mask is not None else value.reshape(-1, value.shape[-1])
            peak = np.abs(rows).max(axis=0) if len(rows) else np.zeros(value.shape[-1], value.dtype)
            ranges[name] = np.maximum(ranges[name], peak) if name in ranges else peak
        tokens += len(rows) if tensors else 0
    if not tokens:
        raise MedsiftError("int8 calibration got no tokens: give it at least one non-empty post")
    return ranges, tokens


def _smooth(model: Any, ranges: dict[str, np.ndarray], alpha: float) -> int:
    """Insert ``x / s`` before the weight MatMuls reading each tensor of ``ranges``; scale their weight rows.

    Returns how many tensors were smoothed."""
    from onnx import helper, numpy_helper

    weights = {init.name: init for init in model.graph.initializer}
    uses = _input_uses(model)
    readers: dict[str, list[Any]] = defaultdict(list)
    for node in _weight_matmuls(model, {k: v.dims for k, v in weights.items()}):
        if node.input[0] in ranges:
            readers[node.input[0]].append(node)
    inserted: dict[str, Any] = {}
    for name, nodes in readers.items():
        if any(uses[node.input[1]] > 1 for node in nodes):
            continue  # a tied weight (DeBERTa's shared attention keys) also serves an unsmoothed input
        matrices = [numpy_helper.to_array(weights[node.input[1]]) for node in nodes]
        w_max = np.max([np.abs(m).max(axis=1) for m in matrices], axis=0)
        scale = np.maximum(ranges[name], 1e-6) ** alpha / np.maximum(w_max, 1e-6) ** (1 - alpha)
        scale = np.clip(scale, *_SCALE_RANGE).astype(np.float32)
        inverse = numpy_helper.from_array(1.0 / scale, f"{name}/smooth_inverse")
        model.graph.initializer.append(inverse)
        inserted[name] = helper.make_node(
            "Mul", [name, inverse.name], [f"{name}/smoothed"], name=f"{name}/smooth"
        )
        for node, matrix in zip(nodes, matrices, strict=True):
            weights[node.input[1]].CopyFrom(numpy_helper.from_array(matrix * scale[:, None], node.input[1]))
            node.input[0] = f"{name}/smoothed"
    # each Mul goes right after the node producing its input (graph inputs: first), keeping topological order
    nodes = list(model.graph.node)
    produced = {out for node in nodes for out in node.output}
    ordered = [inserted[name] for name in inserted if name not in produced]
    for node in nodes:
        ordered.append(node)
        ordered.extend(inserted[out] for out in node.output if out in inserted)
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    return len(inserted)


def _blockwise(model: Any, exclude: list[str]) -> Any:
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    # accuracy_level 4: int8 arithmetic on the quantised blocks (the fast path on x86 and Arm)
    config = DefaultWeightOnlyQuantConfig(block_size=BLOCK, is_symmetric=True, accuracy_level=4, bits=8)
    quantizer = MatMulNBitsQuantizer(
        model,
        bits=8,
        block_size=BLOCK,
        is_symmetric=True,
        accuracy_level=4,
        nodes_to_exclude=exclude,
        algo_config=config,
    )
    quantizer.process()
    return quantizer.model.model


def _dynamic(model: Any, dst: Path, nodes: list[str]) -> dict[str, Any]:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Only the weight MatMuls in ``nodes``: the vocabulary is int8 already (_quantize_embeddings), and the
    # pooler/classifier Gemm stays fp32 (it tripled the drift for no speed). x86 CPUs without VNNI multiply u8 x s8 pairs into 16 bits, which saturates: 7-bit weights
    # (reduce_range) avoid it there (it moved some MiniLM tagger probabilities by 0.24 otherwise), and cost
    # speed and precision on CPUs that have VNNI.
    x86 = platform.machine().lower() in {"x86_64", "amd64", "i686", "x86"}
    options = {"per_channel": True, "reduce_range": x86 and not cpu_has_vnni()}
    quantize_dynamic(
        model,
        str(dst),
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        nodes_to_quantize=nodes,
        # MatMulNBits nodes come from a contrib domain that shape inference cannot type
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        **options,
    )
    return options
