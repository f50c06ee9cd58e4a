"""The classical member (``method: ngram``): the run contract of every ADE run kind, and its place in ensembles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medsift.ade.predict import AdeClassifier
from medsift.config import parse_config
from medsift.ensemble.ade import EnsembleOptions, build_ensemble, predict_file
from medsift.ensemble.members import parse_member
from medsift.errors import MedsiftError
from medsift.io import read_probabilities
from test_ade import make_ade_csv

MEDSIFT = Path(sys.executable).parent / "medsift"


def ngram_config(train_csv: Path, out: Path, **model):
    return parse_config(
        {
            "task": "ade",
            "method": "ngram",
            "model": {"n_features": 2**12, **model},
            "data": {"train": [str(train_csv)], "val_fraction": 0.2, "calib_fraction": 0.25},
            "output_dir": str(out),
        }
    )


@pytest.fixture(scope="module")
def ngram_run(tmp_path_factory) -> Path:
    from medsift.ade.ngram import train

    tmp = tmp_path_factory.mktemp("ngram")
    return train(ngram_config(make_ade_csv(tmp / "train.csv", n=120), tmp / "run"), quiet=True)


def test_the_run_folder_keeps_the_classifier_contract(ngram_run: Path):
    for name in ("config.yaml", "splits.csv", "thresholds.json", "metrics.json", "medsift_run.json"):
        assert (ngram_run / name).is_file(), name
    manifest = json.loads((ngram_run / "medsift_run.json").read_text())
    assert manifest["kind"] == "ade-classifier" and manifest["extra"]["method"] == "ngram"
    assert manifest["extra"]["languages"] == ["en", "ja"]
    assert (ngram_run / "seed-42" / "model" / "ngram.npz").is_file()
    val = read_probabilities(ngram_run / "val_probabilities.csv")
    assert len(val) == 24 and val["p_ade"].between(0, 1).all()
    assert json.loads((ngram_run / "metrics.json").read_text())["seeds"]["42"]["eval_f1"] > 0.8


def test_reload_scores_the_val_rows_exactly_as_training_wrote_them(ngram_run: Path):
    splits = pd.read_csv(ngram_run / "splits.csv", dtype=str)
    train = pd.read_csv(ngram_run.parent / "train.csv", dtype=str)
    val_ids = splits.loc[splits["split"] == "val", "id"].tolist()
    rows = train.set_index("id").loc[val_ids]
    clf = AdeClassifier.from_run(ngram_run)
    pred = clf.predict(rows["text"].tolist(), rows["language"].tolist())
    written = read_probabilities(ngram_run / "val_probabilities.csv").set_index("id").loc[val_ids]
    np.testing.assert_allclose(
        pred.p_ade, written["p_ade"].to_numpy(), rtol=0, atol=1e-6
    )  # stored as float32
    again = AdeClassifier.from_run(ngram_run).predict(rows["text"].tolist(), rows["language"].tolist())
    np.testing.assert_array_equal(pred.p_ade, again.p_ade)
    assert pred.n_truncated == 0 and set(pred.labels) <= {0, 1}


def test_it_learns_and_reads_posts_whole(ngram_run: Path):
    clf = AdeClassifier.from_run(ngram_run)
    pred = clf.predict(["this drug gave me a terrible headache", "I picked up my prescription today"])
    assert pred.p_ade[0] > pred.p_ade[1]
    long = clf.predict(["word " * 20000 + "terrible headache"])
    assert long.p_ade.shape == (1,) and long.n_truncated == 0


def test_a_different_config_in_the_same_folder_is_refused(ngram_run: Path):
    from medsift.ade.ngram import train

    config = ngram_config(ngram_run.parent / "train.csv", ngram_run, C=1.0)
    with pytest.raises(MedsiftError, match="already finished"):
        train(config)


def test_bad_ngram_settings_are_refused(tmp_path: Path):
    from medsift.errors import ConfigError

    with pytest.raises((ConfigError, MedsiftError, ValueError), match="ngram_range"):
        ngram_config(tmp_path / "x.csv", tmp_path / "r", ngram_range=[5, 2])


def test_cli_predict_and_export_refusal(ngram_run: Path, tmp_path: Path):
    posts = tmp_path / "posts.csv"
    pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "text": ["terrible headache from this drug", "so tired", "nice day"],
            "language": "en",
        }
    ).to_csv(posts, index=False)
    out = tmp_path / "sub.csv"
    cmd = [str(MEDSIFT), "predict", str(ngram_run), str(posts), "-o", str(out), "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert pd.read_csv(out)["id"].tolist() == ["a", "b", "c"]
    done = subprocess.run(
        [str(MEDSIFT), "export", str(ngram_run)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "needs no export" in done.stderr and "Traceback" not in done.stderr


def test_an_ngram_member_is_left_out_of_languages_it_never_saw(ngram_run: Path, tmp_path: Path):
    # A second member that knows every language: the ngram run's own probabilities, flipped, as files.
    files = {}
    for split in ("val", "calib"):
        frame = read_probabilities(ngram_run / f"{split}_probabilities.csv")
        frame["p_ade"] = 1 - frame["p_ade"]
        files[split] = tmp_path / f"other_{split}.csv"
        frame.to_csv(files[split], index=False)
    members = parse_member(str(ngram_run)) + parse_member(
        f"val={files['val']},calib={files['calib']},name=other"
    )
    assert members[0].languages == ["en", "ja"] and members[1].languages is None
    spec = build_ensemble(
        members,
        tmp_path / "ens",
        EnsembleOptions(method="weighted", weights_by="language", thresholds="tuned_global", min_positives=2),
    )
    weights = spec["group_weights"]
    assert weights["members"] == [ngram_run.name, "other"]
    assert weights["pooled"][0] > weights["pooled"][1]  # the flipped member is worse everywhere
    posts = tmp_path / "posts.csv"
    pd.DataFrame(
        {"id": ["a", "b"], "text": ["terrible headache", "سردرد شدید"], "language": ["en", "fa"]}
    ).to_csv(posts, index=False)
    with pytest.raises(MedsiftError, match="member-probabilities"):  # the file member has no model
        predict_file(tmp_path / "ens", posts, tmp_path / "sub.csv")
    given = tmp_path / "given.csv"
    pd.DataFrame({"id": ["a", "b"], "language": ["en", "fa"], "p_ade": [0.2, 0.9]}).to_csv(given, index=False)
    predict_file(
        tmp_path / "ens", posts, tmp_path / "sub.csv", probabilities=tmp_path / "p.csv",
        member_probabilities={"other": given},
    )  # fmt: skip
    p = read_probabilities(tmp_path / "p.csv").set_index("id")
    assert p.loc["b", "p_ade"] == pytest.approx(0.9)  # fa: only the member that knows every language
    w_en = np.asarray(weights["pooled"])
    assert p.loc["a", "p_ade"] == pytest.approx(w_en @ [p.loc["a", f"p_ade__{ngram_run.name}"], 0.2])
