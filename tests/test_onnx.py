"""ONNX export and ONNX Runtime scoring agree with torch on a tiny trained ADE run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medsift.errors import MedsiftError
from test_ade import NEG, POS, make_ade_csv, tiny_config

TEXTS = POS + NEG + ["a post much longer than the tiny model's room " * 8]


@pytest.fixture(scope="module")
def ade_run(tiny_bert: Path, tmp_path_factory) -> Path:
    from medsift.ade.train import train

    tmp = tmp_path_factory.mktemp("onnx")
    config = tiny_config(
        tiny_bert, make_ade_csv(tmp / "train.csv"), tmp / "run", training={"num_train_epochs": 2}
    )
    return train(config, quiet=True)


@pytest.fixture(scope="module")
def exported(ade_run: Path) -> list[Path]:
    from medsift.engine.onnx import export_onnx

    return export_onnx(ade_run, quantize=True)


def test_export_writes_fp32_and_int8_models_and_a_report(ade_run: Path, exported: list[Path]):
    import onnx

    from medsift.engine.quantize import layer_roles

    onnx_dir = ade_run / "seed-7" / "onnx"
    assert exported == [onnx_dir / "model.onnx", onnx_dir / "model.int8.onnx"]
    report = json.loads((onnx_dir / "export.json").read_text())
    assert report["max_abs_diff"]["fp32"] <= 1e-4
    int8 = report["int8"]
    assert int8["method"] == "smooth" and int8["alpha"] == 0.5  # the default
    # calibrated on the run's own training file; two layers, each smoothing its q/k/v input and up input
    assert int8["calibration"].endswith("train.csv") and int8["smoothed_tensors"] == 4
    roles = layer_roles(onnx.load(str(onnx_dir / "model.onnx")))  # found by structure, named here to check
    kind = {
        name.split("layer.1/")[1].removesuffix("/MatMul"): role
        for name, role in roles.items()
        if "layer.1/" in name
    }
    assert kind == {
        "attention/self/query": "normed",
        "attention/self/key": "normed",
        "attention/self/value": "normed",
        "intermediate/dense": "normed",  # the feed-forward up-projection
        "attention/output/dense": "square",
        "output/dense": "narrowing",  # the feed-forward down-projection
    }
    assert len(roles) == 12  # two layers
    ops = [node.op_type for node in onnx.load(str(onnx_dir / "model.int8.onnx")).graph.node]
    assert "MatMulNBits" in ops and "DynamicQuantizeLinear" in ops
    assert not list(onnx_dir.glob("*.tmp"))


def test_onnx_backend_agrees_with_torch(ade_run: Path, exported: list[Path]):
    from medsift.engine import load_classifier
    from medsift.engine.onnx import OnnxAdeClassifier

    torch_pred = load_classifier(ade_run, backend="torch", device="cpu").predict(TEXTS)
    fp32 = OnnxAdeClassifier.from_run(ade_run, quantized=False, threads=1).predict(TEXTS)
    np.testing.assert_allclose(fp32.p_ade, torch_pred.p_ade, atol=1e-4)
    assert fp32.labels.tolist() == torch_pred.labels.tolist()
    assert fp32.n_truncated == torch_pred.n_truncated == 1
    int8 = load_classifier(ade_run, backend="onnx", threads=1).predict(TEXTS)  # int8 is picked when present
    assert list(int8.per_seed) == ["seed7"]
    np.testing.assert_allclose(int8.p_ade, torch_pred.p_ade, atol=0.1)
    # batching must not change ONNX results either
    one_by_one = OnnxAdeClassifier.from_run(ade_run, quantized=False, threads=1).predict(
        TEXTS, batch_tokens=1
    )
    np.testing.assert_allclose(one_by_one.p_ade, fp32.p_ade, atol=1e-5)


def test_missing_export_and_unknown_backend_are_clear_errors(ade_run: Path, tmp_path: Path):
    import shutil

    from medsift.engine import load_classifier

    copy = tmp_path / "run"
    shutil.copytree(ade_run, copy, ignore=shutil.ignore_patterns("onnx", "checkpoints"))
    with pytest.raises(MedsiftError, match="medsift export"):
        load_classifier(copy, backend="onnx")
    with pytest.raises(MedsiftError, match="unknown backend"):
        load_classifier(copy, backend="tensorrt")


@pytest.mark.parametrize("method", ["blockwise", "dynamic", "mixed"])
def test_each_int8_method_exports_a_checked_model(
    ade_run: Path, exported: list[Path], tmp_path: Path, method
):
    import shutil

    import onnx

    from medsift.cli import main
    from medsift.engine.onnx import OnnxAdeClassifier

    copy = Path(shutil.copytree(ade_run, tmp_path / "run"))
    main(["export", str(copy), "--quantize", "--int8", method, "-q"])
    onnx_dir = copy / "seed-7" / "onnx"
    report = json.loads((onnx_dir / "export.json").read_text())
    assert report["int8"]["method"] == method and report["max_abs_diff"]["int8"] <= 0.1
    ops = {node.op_type for node in onnx.load(str(onnx_dir / "model.int8.onnx")).graph.node}
    assert ("MatMulNBits" in ops) == (method != "dynamic")
    assert ("DynamicQuantizeLinear" in ops) == (method != "blockwise")
    assert "calibration" not in report["int8"]  # only smoothing calibrates
    fp32 = OnnxAdeClassifier.from_run(copy, quantized=False, threads=1).predict(TEXTS)
    int8 = OnnxAdeClassifier.from_run(copy, threads=1).predict(TEXTS)
    np.testing.assert_allclose(int8.p_ade, fp32.p_ade, atol=0.1)
    with pytest.raises(SystemExit) as bad:
        main(["export", str(copy), "--quantize", "--int8", "int4"])
    assert bad.value.code == 2


def test_export_command(ade_run: Path, exported: list[Path], capsys):
    from medsift.cli import main

    main(["export", str(ade_run)])
    assert "model.onnx" in capsys.readouterr().out
    assert not (ade_run / "seed-7" / "onnx" / "model.int8.onnx").exists()


@pytest.mark.slow  # trains a tiny tagger
@pytest.mark.parametrize("crf", [False, True])
def test_tagger_onnx_export_gives_the_torch_tags(tiny_bert: Path, tmp_path: Path, crf: bool):
    from medsift.engine.onnx import export_onnx
    from medsift.engine.onnx_tagger import onnx_span_tagger
    from medsift.impacts.predict import SpanTagger
    from medsift.impacts.train import train
    from test_impacts_model import POSTS, _config, _write_csv

    config = _config(tiny_bert, _write_csv(tmp_path / "train.csv", POSTS * 3), "bio", crf, tmp_path / "run")
    training = config.training.model_copy(update={"num_train_epochs": 1})
    run = train(config.model_copy(update={"training": training}), quiet=True)
    paths = export_onnx(run, quantize=True)
    assert [p.name for p in paths] == ["model.onnx", "model.int8.onnx"]
    int8 = json.loads((paths[0].parent / "export.json").read_text())["int8"]
    assert (
        int8["method"] == "smooth"
        and int8["calibration"] == f"{len(POSTS) * 3} posts from {tmp_path / 'train.csv'}"
    )
    posts = [tokens for tokens, _ in POSTS] + [("I lost my job after the overdose " * 12).split()]
    expected = SpanTagger.from_run(run).tag(posts)
    assert onnx_span_tagger(run, quantized=False, threads=1).tag(posts) == expected
    assert len(onnx_span_tagger(run, threads=1).tag(posts)[4]) == len(posts[4])  # int8: one tag per token


@pytest.mark.slow  # trains a tiny tagger
def test_predict_backend_onnx_for_a_tagger_and_a_tagger_ensemble(tiny_bert: Path, tmp_path: Path):
    from medsift.cli import main
    from medsift.impacts.train import train
    from test_impacts_model import POSTS, _config, _write_csv

    train_csv = _write_csv(tmp_path / "train.csv", POSTS * 3)
    config = _config(tiny_bert, train_csv, "io", False, tmp_path / "run")
    training = config.training.model_copy(update={"num_train_epochs": 1})
    run = train(config.model_copy(update={"training": training}), quiet=True)
    main(["ensemble", str(run), str(run), "--method", "hard", "-o", str(tmp_path / "ens")])
    with pytest.raises(SystemExit) as missing:  # not exported yet: one clear error
        main(["predict", str(run), str(train_csv), "-o", str(tmp_path / "x.csv"), "--backend", "onnx", "-q"])
    assert missing.value.code == 2 and not (tmp_path / "x.csv").exists()
    main(["export", str(run), "-q"])
    for target in (run, tmp_path / "ens"):
        outputs = {}
        for backend in ("torch", "onnx"):
            out = tmp_path / f"{target.name}-{backend}.csv"
            main(["predict", str(target), str(train_csv), "-o", str(out), "--backend", backend, "-q"])
            outputs[backend] = out.read_text()
        assert outputs["onnx"] == outputs["torch"]  # fp32 ONNX: the same tags, row for row


def test_int8_calibration_source_is_chosen_and_reported(
    ade_run: Path, exported: list[Path], tmp_path: Path, capsys
):
    import shutil

    import yaml

    from medsift.cli import main

    copy = Path(shutil.copytree(ade_run, tmp_path / "run"))
    report_path = copy / "seed-7" / "onnx" / "export.json"
    posts = tmp_path / "posts.jsonl"
    posts.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS), encoding="utf-8")
    main(["export", str(copy), "--quantize", "--calibration", str(posts), "-q"])
    assert json.loads(report_path.read_text())["int8"]["calibration"] == f"{len(TEXTS)} posts from {posts}"

    before = report_path.read_text()
    with pytest.raises(SystemExit) as missing:
        main(["export", str(copy), "--quantize", "--calibration", str(tmp_path / "nope.csv")])
    assert missing.value.code == 2
    assert f"{tmp_path / 'nope.csv'}: calibration file not found" in capsys.readouterr().err
    assert report_path.read_text() == before  # refused before anything was rewritten
    for flags in ([], ["--quantize", "--int8", "dynamic"]):  # nothing would read it: say so, do not ignore it
        with pytest.raises(SystemExit):
            main(["export", str(copy), *flags, "--calibration", str(posts)])
        assert "'smooth' only" in capsys.readouterr().err
    assert report_path.read_text() == before

    # the training files moved away (exported on another machine): the built-in probes still calibrate
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["data"]["train"] = [str(tmp_path / "elsewhere" / "train.csv")]
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    main(["export", str(copy), "--quantize", "-q"])
    report = json.loads(report_path.read_text())
    assert report["int8"]["calibration"].endswith("posts from built-in probe posts")
    fp32 = _onnx_classifier(copy, quantized=False).predict(TEXTS)
    int8 = _onnx_classifier(copy, quantized=True).predict(TEXTS)
    np.testing.assert_allclose(int8.p_ade, fp32.p_ade, atol=0.1)


def _onnx_classifier(run: Path, *, quantized: bool):
    from medsift.engine.onnx import OnnxAdeClassifier

    return OnnxAdeClassifier.from_run(run, quantized=quantized, threads=1)
