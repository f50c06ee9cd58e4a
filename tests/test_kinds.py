"""One registry of run kinds: ``medsift.train`` and ``medsift.load`` take every kind, and an ensemble run is a
predictor like any single run (an ensemble of one member predicts exactly what that member predicts)."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

import medsift
from medsift.config import parse_config
from medsift.kinds import KINDS, trainer_for
from medsift.runs import Run
from test_ade import make_ade_csv, tiny_config
from test_ade_ngram import ngram_config

TEXTS = ["this drug gave me a terrible headache", "feeling fine today", "頭痛がひどい", "no side effects"]
LANGUAGES = ["en", "en", "ja", "en"]


def _real_file_predictors():
    from medsift.engine import streaming, tagger_stream
    from medsift.ensemble import ade as ensemble_ade
    from medsift.llm import predict as llm_predict

    return {
        "ade-classifier": streaming.predict_file,
        "ade-ensemble": ensemble_ade.predict_file,
        "ade-llm": llm_predict.predict_file,
        "impacts-tagger": tagger_stream.predict_file,
        "impacts-ensemble": tagger_stream.predict_file,
        "impacts-llm": llm_predict.predict_file,
    }


def test_every_kind_states_the_options_its_file_predictor_takes():
    real = _real_file_predictors()
    assert set(real) == set(KINDS)
    for name, kind in KINDS.items():
        params = inspect.signature(real[name]).parameters
        keyword = {p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY}
        assert set(kind.options) == keyword, name


def test_every_config_method_has_one_trainer():
    from medsift.config import _SCHEMAS, _load_schema_modules

    _load_schema_modules()
    for task, method in _SCHEMAS:
        assert callable(trainer_for(task, method)), (task, method)


def test_an_unknown_kind_is_one_error_naming_the_folder(tmp_path):
    from medsift.errors import MedsiftError
    from medsift.runs import RunManifest

    RunManifest(kind="ade-somethingelse", task="ade").save(tmp_path)
    with pytest.raises(MedsiftError, match="unknown run kind 'ade-somethingelse'") as err:
        medsift.load(tmp_path)
    assert err.value.file == str(tmp_path)


@pytest.fixture(scope="module")
def ngram_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("kinds-ngram")
    run = medsift.train(ngram_config(make_ade_csv(tmp / "train.csv", n=120), tmp / "run"))
    assert isinstance(run, Run) and run.kind == "ade-classifier" and run.method == "ngram"
    return run.path


def test_load_an_ngram_run_predicts_like_its_classifier(ngram_run):
    from medsift.ade.predict import AdeClassifier

    pred = medsift.load(ngram_run).predict(TEXTS, LANGUAGES)
    again = AdeClassifier.from_run(ngram_run).predict(TEXTS, LANGUAGES)
    assert np.array_equal(pred.p_ade, again.p_ade) and np.array_equal(pred.labels, again.labels)


def test_an_ensemble_of_one_member_predicts_exactly_what_the_member_predicts(ngram_run, tmp_path):
    """The ensemble contract: one member, soft vote, the member's own (global) threshold, no calibration."""
    from medsift.ensemble.ade import EnsembleOptions, build_ensemble
    from medsift.ensemble.members import parse_member
    from medsift.io import read_probabilities

    build_ensemble(parse_member(str(ngram_run)), tmp_path / "ens", EnsembleOptions(method="soft"))
    member, ensemble = medsift.load(ngram_run), medsift.load(tmp_path / "ens")
    ids = [f"id{i}" for i in range(len(TEXTS))]
    for kwargs in ({}, {"ids": ids}):
        want, got = member.predict(TEXTS, LANGUAGES, **kwargs), ensemble.predict(TEXTS, LANGUAGES, **kwargs)
        assert np.array_equal(got.p_ade, want.p_ade)
        assert np.array_equal(got.labels, want.labels)
        assert np.array_equal(got.thresholds, want.thresholds)
    # and through `medsift predict`'s file path: the same submission, byte for byte, and the same probabilities
    test_csv = make_ade_csv(tmp_path / "test.csv", n=40, seed=5)
    from medsift.kinds import predict_file

    for run, out in ((ngram_run, "member"), (tmp_path / "ens", "ensemble")):
        predict_file(
            Run.load(run),
            test_csv,
            tmp_path / f"{out}.csv",
            probabilities=tmp_path / f"{out}_p.csv",
            quiet=True,
        )
    assert (tmp_path / "member.csv").read_bytes() == (tmp_path / "ensemble.csv").read_bytes()
    member_p = read_probabilities(tmp_path / "member_p.csv")["p_ade"].to_numpy()
    ensemble_p = read_probabilities(tmp_path / "ensemble_p.csv")["p_ade"].to_numpy()
    assert np.array_equal(member_p, ensemble_p)


def test_train_and_load_an_ensemble_config(tmp_path):
    data = make_ade_csv(tmp_path / "train.csv", n=120)
    config = parse_config(
        {
            "task": "ade",
            "method": "ensemble",
            "data": {"train": [str(data)], "val_fraction": 0.2, "calib_fraction": 0.25},
            "members": {"ngram": {"method": "ngram", "model": {"n_features": 4096}}},
            "ensemble": {"method": "soft", "thresholds": "global"},
            "output_dir": str(tmp_path / "recipe"),
        }
    )
    run = medsift.train(config)
    assert run.kind == "ade-ensemble"
    pred = medsift.load(run.path).predict(TEXTS, LANGUAGES)
    member = medsift.load(run.path / "members" / "ngram").predict(TEXTS, LANGUAGES)
    assert np.array_equal(pred.p_ade, member.p_ade) and np.array_equal(pred.labels, member.labels)


def test_train_and_load_an_encoder_run(tiny_bert, tmp_path):
    from medsift.ade.predict import AdeClassifier

    config = tiny_config(
        tiny_bert,
        make_ade_csv(tmp_path / "train.csv", n=40),
        tmp_path / "run",
        training={"num_train_epochs": 1},
    )
    run = medsift.train(config)
    pred = medsift.load(run.path).predict(TEXTS, LANGUAGES)
    want = AdeClassifier.from_run(run.path).predict(TEXTS, LANGUAGES)
    assert np.allclose(pred.p_ade, want.p_ade) and np.array_equal(pred.labels, want.labels)


def test_train_from_a_file_with_overrides_and_refuse_another_config_in_the_folder(tmp_path):
    from medsift.errors import MedsiftError

    data = make_ade_csv(tmp_path / "train.csv", n=120)
    cfg = tmp_path / "ngram.yaml"
    cfg.write_text(
        f"task: ade\nmethod: ngram\nmodel:\n  n_features: 4096\ndata:\n  train: [{data}]\n"
        f"  val_fraction: 0.2\n  calib_fraction: 0.25\noutput_dir: {tmp_path / 'run'}\n",
        encoding="utf-8",
    )
    run = medsift.train(cfg, overrides=["model.C=2.0"])
    assert run.config["model"]["C"] == 2.0
    with pytest.raises(MedsiftError, match="already finished"):
        medsift.train(cfg)


def test_train_and_load_a_tagger_run(tiny_bert, tmp_path):
    from test_impacts_model import _config, _write_csv

    posts = [(["took", "oxy", "felt", "sick"], ["O", "O", "B-ADR", "I-ADR"])] * 12
    config = _config(tiny_bert, _write_csv(tmp_path / "train.csv", posts), "bio", False, tmp_path / "run", 1)
    run = medsift.train(config)
    assert run.kind == "impacts-tagger"
    tags = medsift.load(run.path).tag([["took", "oxy", "felt", "sick"], ["fine"]])
    assert [len(t) for t in tags] == [4, 1]


def _llm_config(model: Path, task: str, data: Path, out: Path, **training):
    raw = {
        "task": task,
        "method": "llm",
        "model": {"name": str(model), "max_length": 128},
        "data": {
            "train": [str(data)],
            "val_fraction": 0.2,
            **({"calib_fraction": 0.2} if task == "ade" else {}),
        },
        "training": {"per_device_train_batch_size": 4, "use_cpu": True, **training},
        "seeds": [3],
        "output_dir": str(out),
    }
    if task == "impacts":
        raw["model"]["max_length"] = 1024
        raw["decoding"] = {"max_new_tokens": 8}
    return parse_config(raw)


def test_train_and_load_an_ade_llm_run_cut_by_its_thresholds(tiny_qwen3, tmp_path):
    from medsift.decision import ThresholdPolicy
    from medsift.runs import read_json

    data = make_ade_csv(tmp_path / "train.csv", n=40)
    run = medsift.train(_llm_config(tiny_qwen3, "ade", data, tmp_path / "llm", max_steps=1))
    assert run.kind == "ade-llm"
    policy = ThresholdPolicy.from_dict(read_json(run.path / "thresholds.json"))  # the classifiers' file
    assert policy.mode == "global" and policy.fallback == 0.5
    pred = medsift.load(run.path).predict(TEXTS, LANGUAGES)
    assert np.array_equal(pred.labels, (pred.p_ade >= 0.5).astype(int)) and list(pred.per_seed) == ["seed3"]


def test_train_and_load_an_impacts_llm_run(tiny_qwen3, tmp_path):
    from test_impacts_model import _write_csv

    posts = [(["took", "oxy", "felt", "sick"], ["O", "O", "B-ADR", "I-ADR"])] * 6
    data = _write_csv(tmp_path / "train.csv", posts)
    run = medsift.train(_llm_config(tiny_qwen3, "impacts", data, tmp_path / "llm", num_train_epochs=0))
    assert run.kind == "impacts-llm"
    tags = medsift.load(run.path).tag([["took", "oxy"], ["fine"]])
    assert [len(t) for t in tags] == [2, 1]
