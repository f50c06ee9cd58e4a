"""Reproducibility and safe loading: same config + seed -> same metrics (ADE classifier and impact tagger);
runs record how they were made; pickled weights are never loaded (classifier and tagger runs)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from medsift.errors import MedsiftError
from medsift.runs import file_sha256

SRC = Path(__file__).resolve().parents[1] / "src" / "medsift"
TIMING = ("runtime", "per_second")


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if not any(t in k for t in TIMING)}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


@pytest.fixture(scope="module")
def two_runs(tiny_bert: Path, tmp_path_factory) -> tuple[Path, Path]:
    """The same config and seed trained twice, into two different folders."""
    from medsift.ade.train import train
    from test_ade import make_ade_csv, tiny_config

    tmp = tmp_path_factory.mktemp("repro")
    csv = make_ade_csv(tmp / "train.csv", n=40)
    runs = []
    for name in ("a", "b"):
        cfg = tiny_config(tiny_bert, csv, tmp / name, training={"num_train_epochs": 2})
        runs.append(train(cfg, quiet=True))
    return runs[0], runs[1]


def test_same_config_and_seed_give_identical_metrics(two_runs):
    a, b = two_runs
    ma = json.loads((a / "seed-7" / "metrics.json").read_text())
    mb = json.loads((b / "seed-7" / "metrics.json").read_text())
    ma.pop("best_checkpoint"), mb.pop("best_checkpoint")  # absolute paths differ by design
    assert _without_timings(ma) == _without_timings(mb)
    pa = pd.read_csv(a / "seed-7" / "val_probabilities.csv")
    pb = pd.read_csv(b / "seed-7" / "val_probabilities.csv")
    assert pa["id"].tolist() == pb["id"].tolist()
    np.testing.assert_array_equal(pa["p_ade"].to_numpy(), pb["p_ade"].to_numpy())
    assert (a / "splits.csv").read_bytes() == (b / "splits.csv").read_bytes()


@pytest.fixture(scope="module")
def two_tagger_runs(tiny_bert: Path, tmp_path_factory) -> tuple[Path, Path]:
    """The same impact-tagger config and seed trained twice, into two different folders."""
    from medsift.impacts.train import train
    from test_impacts_model import POSTS, _config, _write_csv

    tmp = tmp_path_factory.mktemp("repro_tagger")
    csv = _write_csv(tmp / "train.csv", POSTS * 3)
    runs = []
    for name in ("a", "b"):
        config = _config(tiny_bert, csv, "bio", False, tmp / name)
        training = config.training.model_copy(update={"num_train_epochs": 2})
        runs.append(train(config.model_copy(update={"training": training}), quiet=True))
    return runs[0], runs[1]


def test_same_tagger_config_and_seed_give_identical_metrics_and_tags(two_tagger_runs):
    from safetensors.torch import load_file

    from medsift.impacts.predict import SpanTagger
    from test_impacts_model import POSTS

    a, b = two_tagger_runs
    ma = json.loads((a / "seed-7" / "metrics.json").read_text())
    mb = json.loads((b / "seed-7" / "metrics.json").read_text())
    assert _without_timings(ma) == _without_timings(mb)
    wa = load_file(str(a / "seed-7" / "model" / "model.safetensors"))
    wb = load_file(str(b / "seed-7" / "model" / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(bool((wa[k] == wb[k]).all()) for k in wa)  # bit-identical
    posts = [tokens for tokens, _ in POSTS] + [["I", "lost", "my", "job", "after", "the", "overdose"] * 6]
    assert SpanTagger.from_run(a).tag(posts) == SpanTagger.from_run(b).tag(posts)


def test_run_records_what_is_needed_to_repeat_it(two_runs):
    from medsift.config import parse_config

    run = two_runs[0]
    manifest = json.loads((run / "medsift_run.json").read_text())
    assert manifest["seeds"] == [7]
    for path, digest in manifest["data"].items():  # data hashes match the files trained on
        assert digest == file_sha256(path)
    for package in ("python", "torch", "transformers", "numpy", "pandas"):
        assert manifest["packages"].get(package)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    cfg = parse_config(
        saved
    )  # the resolved config re-parses to itself: `medsift train config.yaml` repeats it
    assert cfg.model_dump(mode="json") == saved
    assert saved["data"]["split_seed"] is not None and saved["seeds"] == [7]


def test_pickled_weights_are_refused_with_one_clear_error(two_runs, tmp_path):
    """A run whose model folder holds only pytorch_model.bin (pickle) is refused before anything is unpickled."""
    import torch

    from medsift.ade import AdeClassifier

    run = tmp_path / "run"
    shutil.copytree(two_runs[0], run)
    model_dir = run / "seed-7" / "model"
    (model_dir / "model.safetensors").unlink()
    marker = tmp_path / "unpickled"
    torch.save({"payload": _Trap(str(marker))}, model_dir / "pytorch_model.bin")
    with pytest.raises(MedsiftError) as info:
        AdeClassifier.from_run(run, device="cpu")
    message = str(info.value)
    assert str(model_dir) in message and "pytorch_model.bin" in message and "safetensors" in message
    assert not marker.exists()  # the pickle never ran


@pytest.mark.parametrize("crf_file", [False, True])
def test_tagger_with_pickled_weights_is_refused_before_unpickling(two_tagger_runs, tmp_path, crf_file):
    """Tagger runs too: only pytorch_model.bin is refused, even beside another *.safetensors (a CRF layer)."""
    import torch

    from medsift.impacts.predict import SpanTagger

    run = tmp_path / "run"
    shutil.copytree(two_tagger_runs[0], run)
    model_dir = run / "seed-7" / "model"
    (model_dir / "model.safetensors").unlink()
    if crf_file:
        (model_dir / "crf.safetensors").write_bytes(b"")
    marker = tmp_path / "unpickled"
    torch.save({"payload": _Trap(str(marker))}, model_dir / "pytorch_model.bin")
    with pytest.raises(MedsiftError) as info:
        SpanTagger.from_run(run)
    message = str(info.value)
    assert str(model_dir) in message and "pytorch_model.bin" in message and "safetensors" in message
    assert not marker.exists()


def test_predict_with_pickled_tagger_run_is_one_error_line(two_tagger_runs, tmp_path, capsys):
    from medsift.cli import main

    run = tmp_path / "run"
    shutil.copytree(two_tagger_runs[0], run)
    model_dir = run / "seed-7" / "model"
    (model_dir / "model.safetensors").rename(model_dir / "pytorch_model.bin")
    posts = tmp_path / "posts.txt"
    posts.write_text("I overdosed and lost my job\n", encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["predict", str(run), str(posts), "-o", str(tmp_path / "out.csv"), "-q"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err
    assert err.startswith("medsift: error: ") and len(err.strip().splitlines()) == 1
    assert str(model_dir) in err and "pytorch_model.bin" in err
    assert not (tmp_path / "out.csv").exists()


def test_predict_with_pickled_run_is_one_error_line(two_runs, tmp_path, capsys):
    from medsift.cli import main

    run = tmp_path / "run"
    shutil.copytree(two_runs[0], run)
    (run / "seed-7" / "model" / "model.safetensors").rename(run / "seed-7" / "model" / "pytorch_model.bin")
    posts = tmp_path / "posts.csv"
    posts.write_text("id,text\np1,hello\n", encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["predict", str(run), str(posts), "-o", str(tmp_path / "out.csv"), "-q"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err
    assert err.startswith("medsift: error: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.csv").exists()


class _Trap:
    """Unpickling this object writes a marker file: proof that a pickle was (or was not) executed."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_every_torch_load_in_src_uses_weights_only():
    """``torch.load`` without ``weights_only=True`` can execute arbitrary code from a file."""
    offenders = []
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"torch\.load\(", text):
            depth, end = 0, match.end() - 1  # find the matching parenthesis of the call
            for end in range(match.end() - 1, len(text)):
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                if depth == 0:
                    break
            call = text[match.start() : end + 1]
            if not re.search(r"weights_only\s*=\s*True", call):
                offenders.append(f"{path.relative_to(SRC)}:{text.count(chr(10), 0, match.start()) + 1}")
    assert not offenders, f"torch.load without weights_only=True: {offenders}"


def test_no_pickle_or_unsafe_yaml_in_src():
    offenders = []
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for pattern in (
            r"\bpickle\.loads?\(",
            r"yaml\.load\(",
            r"yaml\.unsafe_load",
            r"(?<![.\w])(?<!def )eval\(",  # a method named eval (torch's Module.eval) is not the builtin
            r"(?<![.\w])(?<!def )exec\(",
        ):
            for match in re.finditer(pattern, text):
                offenders.append(f"{path.relative_to(SRC)}:{text.count(chr(10), 0, match.start()) + 1}")
    assert not offenders, f"unsafe loading: {offenders}"
