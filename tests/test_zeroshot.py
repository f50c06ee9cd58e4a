"""Zero-shot run kinds (method: nli / gliner): tiny random models, no training, joining ensembles like any member."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from medsift.config import parse_config
from medsift.decision.stacking import Stacker
from medsift.errors import MedsiftError
from medsift.io import read_probabilities
from test_ade import make_ade_csv


@pytest.fixture(scope="module")
def tiny_nli(tiny_bert: Path, tmp_path_factory) -> Path:
    """A random BERT with an NLI head (entailment / neutral / contradiction), as an NLI checkpoint is saved."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path_factory.mktemp("nli")
    labels = {0: "entailment", 1: "neutral", 2: "contradiction"}
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert, num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()}
    )
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(out)
    return out


class FakeGliner:
    """Stands in for the gliner package's model only (its ``inference``): entities from keywords."""

    WORDS: ClassVar = {
        "headache": ("side effect", 0.9),
        "nausea": ("side effect", 0.7),
        "pill": ("drug", 0.8),
    }

    def inference(self, texts, labels, threshold=0.5, flat_ner=True):
        out = []
        for text in texts:
            found = [
                {"text": w, "label": lab, "score": s}
                for w, (lab, s) in self.WORDS.items()
                if w in text.lower() and lab in labels and s >= threshold
            ]
            out.append(found)
        return out


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("zs")
    return {
        "train": [str(make_ade_csv(tmp / "train.csv", n=120))],
        "val_fraction": 0.25,
        "calib_fraction": 0.3,
    }


@pytest.fixture(scope="module")
def runs(tiny_nli: Path, tiny_bert: Path, data: dict, tmp_path_factory) -> dict[str, Path]:
    from medsift.ade.ngram import train as train_ngram
    from medsift.ade.zeroshot.run import train

    tmp = tmp_path_factory.mktemp("zsruns")
    out = {}
    nli = {"task": "ade", "method": "nli", "data": data, "model": {"name": str(tiny_nli), "max_length": 32}}
    out["nli"] = train(parse_config({**nli, "output_dir": str(tmp / "nli")}), quiet=True)
    sim = {
        **nli,
        "model": {"name": str(tiny_bert), "max_length": 32},
        "nli": {"scorer": "similarity", "query_prefix": "query: ", "passage_prefix": "passage: "},
    }
    out["sim"] = train(parse_config({**sim, "output_dir": str(tmp / "sim")}), quiet=True)
    gl = {"task": "ade", "method": "gliner", "data": data, "model": {"name": "fake/gliner"}}
    out["gliner"] = train(
        parse_config({**gl, "output_dir": str(tmp / "gliner")}), quiet=True, gliner_model=FakeGliner()
    )
    ngram = {"task": "ade", "method": "ngram", "data": data, "model": {"n_features": 4096}}
    out["ngram"] = train_ngram(parse_config({**ngram, "output_dir": str(tmp / "ngram")}), quiet=True)
    return out


def test_zero_shot_runs_score_the_same_val_and_calib_rows_as_a_trained_member(runs: dict[str, Path]):
    ref = {s: read_probabilities(runs["ngram"] / f"{s}_probabilities.csv") for s in ("val", "calib")}
    for name in ("nli", "sim", "gliner"):
        manifest = json.loads((runs[name] / "medsift_run.json").read_text())
        assert manifest["kind"] == "ade-classifier" and manifest["extra"]["zero_shot"]
        for split, frame in ref.items():
            mine = read_probabilities(runs[name] / f"{split}_probabilities.csv")
            assert list(mine["uid"]) == list(frame["uid"])
            assert mine["p_ade"].between(0, 1).all()
    gl = read_probabilities(runs["gliner"] / "calib_probabilities.csv")
    assert {"feat__n_entities", "feat__max_side_effect", "feat__n_drug"} <= set(gl.columns)
    headache = gl["feat__max_side_effect"] == 0.9
    assert (gl.loc[headache, "p_ade"] == 0.9).all() and (
        gl.loc[gl["feat__n_side_effect"] == 0, "p_ade"] == 0
    ).all()


def test_nli_probabilities_sum_the_positive_candidates(tiny_nli: Path, data: dict):
    from medsift.ade.zeroshot.nli import NliScorer, positive_share

    assert positive_share(["a", "b", "c"], [0.5, 0.3, 0.2], ["a", "c"]) == pytest.approx(0.7)
    config = parse_config({"task": "ade", "method": "nli", "data": data, "model": {"name": str(tiny_nli), "max_length": 32},
                           "nli": {"positive": ["x"], "negative": ["y"], "templates": {"ja": "これは{}です。"}}})  # fmt: skip
    p = NliScorer(config).score(["a headache", "頭痛"], ["en", "ja"])
    assert p.shape == (2,) and ((p > 0) & (p < 1)).all()


def test_zero_shot_members_join_an_ensemble_and_stacking_reads_gliner_features(
    runs: dict[str, Path], tmp_path: Path
):
    from medsift.ensemble.ade import EnsembleOptions, build_ensemble
    from medsift.ensemble.members import parse_member

    members = [m for name in ("ngram", "nli", "sim", "gliner") for m in parse_member(str(runs[name]))]
    for m, name in zip(members, ("ngram", "nli", "sim", "gliner"), strict=True):
        m.name = name
    soft = build_ensemble(
        members, tmp_path / "soft", EnsembleOptions(method="soft", thresholds="per_language", min_positives=2)
    )
    assert [m["name"] for m in soft["members"]] == ["ngram", "nli", "sim", "gliner"]
    spec = build_ensemble(
        members,
        tmp_path / "stack",
        EnsembleOptions(method="stacking", stack_features=["gliner"], stack_folds=3),
    )
    names = {c["feature"] for c in spec["stacking"]["coefficients"]}
    assert {"p:ngram", "p:nli", "p:sim", "p:gliner", "gliner:max_side_effect", "gliner:n_entities"} <= names
    assert Stacker.from_dict(spec["stacking"]["model"]).names[0] == "p:ngram"


def test_a_zero_shot_run_predicts_new_posts(runs: dict[str, Path], tmp_path: Path):
    from medsift.ade.predict import AdeClassifier

    clf = AdeClassifier.from_run(runs["nli"])
    pred = clf.predict(["headache after the pill", "nice day"], ["en", "en"])
    assert pred.p_ade.shape == (2,) and set(pred.labels) <= {0, 1}


def test_gliner_without_the_package_is_one_clear_line(data: dict, tmp_path: Path):
    from medsift.ade.zeroshot.gliner import load_gliner

    pytest.importorskip("torch")
    try:
        import gliner  # noqa: F401

        pytest.skip("the gliner package is installed here")
    except ImportError:
        pass
    with pytest.raises(MedsiftError, match=r"pip install 'medsift\[gliner\]'"):
        load_gliner("urchade/gliner_multi-v2.1")


def test_an_nli_scorer_refuses_a_model_without_an_entailment_label(tiny_bert: Path, data: dict):
    from medsift.ade.zeroshot.nli import NliScorer

    config = parse_config({"task": "ade", "method": "nli", "data": data, "model": {"name": str(tiny_bert)}})
    with pytest.raises(MedsiftError, match=r"no entailment label.*nli.scorer: similarity"):
        NliScorer(config)
    missing = parse_config(
        {"task": "ade", "method": "nli", "data": data, "model": {"name": "no-org/no-nli-model"}}
    )
    with pytest.raises(MedsiftError, match="is not available here"):
        NliScorer(missing)


def test_gliner_features_and_probability_from_hand_made_entities():
    from medsift.ade.zeroshot.gliner import feature_names, post_features, post_probability

    ents = [
        {"label": "side effect", "score": 0.6},
        {"label": "side effect", "score": 0.8},
        {"label": "drug", "score": 0.9},
    ]
    assert post_probability(ents, ["side effect"]) == 0.8 and post_probability([], ["side effect"]) == 0.0
    feats = post_features(ents, ["side effect", "drug"])
    assert feats == {
        "n_entities": 3.0,
        "n_side_effect": 2.0,
        "max_side_effect": 0.8,
        "n_drug": 1.0,
        "max_drug": 0.9,
    }
    assert feature_names(["side effect", "drug"]) == list(feats)
    assert np.isclose(feats["max_side_effect"], 0.8)


def test_a_stacked_ensemble_with_a_gliner_member_predicts_new_posts(
    runs: dict[str, Path], tmp_path: Path, monkeypatch
):
    import pandas as pd

    from medsift.ade.zeroshot import run as zrun
    from medsift.ensemble.ade import EnsembleOptions, build_ensemble, predict_file
    from medsift.ensemble.members import parse_member

    members = [m for name in ("ngram", "gliner") for m in parse_member(str(runs[name]))]
    members[0].name, members[1].name = "ngram", "gliner"
    build_ensemble(
        members, tmp_path / "st", EnsembleOptions(method="stacking", stack_features=["gliner"], stack_folds=3)
    )
    real = zrun.build_scorer
    monkeypatch.setattr(
        zrun, "build_scorer", lambda config, gliner_model=None: real(config, gliner_model=FakeGliner())
    )
    pd.DataFrame(
        {"id": ["a", "b"], "text": ["headache after the pill", "a nice day"], "language": ["en", "en"]}
    ).to_csv(tmp_path / "in.csv", index=False)
    predict_file(tmp_path / "st", tmp_path / "in.csv", tmp_path / "sub.csv", probabilities=tmp_path / "p.csv")
    p = read_probabilities(tmp_path / "p.csv").set_index("id")
    assert p.loc["a", "p_ade__gliner"] == 0.9 and p.loc["b", "p_ade__gliner"] == 0.0
