"""`method: ensemble` configs: every member trained on the same splits, then the per-language ensemble."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medsift.config import load_config, parse_config
from medsift.decision import search_threshold
from medsift.ensemble.ade import predict_file
from medsift.errors import ConfigError, MedsiftError
from medsift.io import read_probabilities
from test_ade import make_ade_csv


def recipe(tiny_bert: Path, train_csv: Path, out: Path) -> dict:
    return {
        "task": "ade",
        "method": "ensemble",
        "data": {"train": [str(train_csv)], "val_fraction": 0.2, "calib_fraction": 0.3},
        "members": {
            "ngram": {"method": "ngram", "model": {"n_features": 4096}},
            "encoder": {
                "model": {"name": str(tiny_bert), "max_length": 32, "freeze_embeddings": True},
                "loss": {"name": "ce"},
                "training": {"learning_rate": 1e-2, "num_train_epochs": 2, "use_cpu": True, "bf16": "auto"},
                "seeds": [3],
            },
        },
        "ensemble": {"min_positives": 2, "weight_shrink": 5, "threshold_shrink": 5, "fallback": "pooled"},
        "output_dir": str(out),
    }


@pytest.fixture(scope="module")
def recipe_run(tiny_bert: Path, tmp_path_factory) -> Path:
    from medsift.ensemble.recipe import train

    tmp = tmp_path_factory.mktemp("recipe")
    return train(
        parse_config(recipe(tiny_bert, make_ade_csv(tmp / "train.csv", n=120), tmp / "run")), quiet=True
    )


def test_members_share_splits_and_the_folder_is_an_ensemble(recipe_run: Path):
    manifest = json.loads((recipe_run / "medsift_run.json").read_text())
    assert manifest["kind"] == "ade-ensemble" and manifest["extra"]["members"] == ["ngram", "encoder"]
    splits = [pd.read_csv(recipe_run / "members" / m / "splits.csv") for m in ("ngram", "encoder")]
    pd.testing.assert_frame_equal(splits[0], splits[1])
    spec = json.loads((recipe_run / "ensemble.json").read_text())
    assert [m["path"] for m in spec["members"]] == ["members/ngram", "members/encoder"]  # the folder can move
    assert spec["group_weights"]["knows"] == [["en", "ja"], None]
    assert spec["policy"]["shrink"] == 5
    # unseen languages are scored by the encoder alone: their fallback is tuned on the calib rows scored that way
    calib = read_probabilities(recipe_run / "calib_probabilities.csv")
    encoder_only = search_threshold(calib["label"].to_numpy(), calib["p_ade__encoder"].to_numpy())
    assert spec["policy"]["fallback"] == encoder_only.threshold
    # a group the n-gram member knows without rows of its own is scored by both members: the pooled threshold
    pooled = calib[["p_ade__ngram", "p_ade__encoder"]].to_numpy() @ spec["group_weights"]["pooled"]
    both = search_threshold(calib["label"].to_numpy(), pooled)
    assert spec["policy"]["thresholds"]["ja_cadec"] == both.threshold
    assert "no threshold of its own" in spec["policy"]["fallback_languages"]["ja_cadec"]


def test_predict_after_moving_the_folder(recipe_run: Path, tmp_path: Path):
    moved = tmp_path / "moved"
    shutil.copytree(recipe_run, moved)
    posts = tmp_path / "posts.csv"
    pd.DataFrame(
        {
            "id": ["1", "2", "3"],
            "text": ["terrible headache", "nice day", "سردرد"],
            "language": ["en", "en", "fa"],
        }
    ).to_csv(posts, index=False)
    a = predict_file(recipe_run, posts, tmp_path / "a.csv", probabilities=tmp_path / "pa.csv", quiet=True)
    b = predict_file(moved, posts, tmp_path / "b.csv", probabilities=tmp_path / "pb.csv", quiet=True)
    assert a["rows"] == b["rows"] == 3
    pa, pb = read_probabilities(tmp_path / "pa.csv"), read_probabilities(tmp_path / "pb.csv")
    np.testing.assert_array_equal(pa["p_ade"], pb["p_ade"])
    # fa: neither member saw it; the encoder (which knows every language) scores it alone
    fa = pa.set_index("id").loc["3"]
    assert fa["p_ade"] == pytest.approx(fa["p_ade__encoder"])


def test_a_rerun_refuses_a_finished_run_and_bad_members_fail_before_training(
    recipe_run: Path, tiny_bert, tmp_path
):
    from medsift.ensemble.recipe import train

    raw = recipe(tiny_bert, recipe_run.parent / "train.csv", recipe_run)
    with pytest.raises(MedsiftError, match="already finished"):
        train(parse_config(raw))
    raw["output_dir"] = str(tmp_path / "bad")
    raw["members"]["encoder"]["training"]["no_such_key"] = 1
    with pytest.raises(ConfigError, match=r"members\.encoder"):
        train(parse_config(raw))
    assert not (tmp_path / "bad").exists()
    raw["members"]["encoder"]["data"] = {"train": ["x.csv"]}
    with pytest.raises(ConfigError, match="come from the ensemble config"):
        parse_config(raw)


def test_the_shipped_cpu_recipe_parses_and_names_both_members():
    config = load_config("ade-cpu-full")
    assert set(config.members) == {"ngram", "encoder"}
    assert config.member_config("encoder", Path("runs/x")).model.freeze_embeddings is True
    assert config.ensemble.fallback == "global"  # 0.5 for unseen languages (leave-one-language-out)


def test_global_fallback_keeps_half_for_unseen_languages_only(recipe_run: Path, tmp_path: Path):
    from medsift.ensemble.ade import EnsembleOptions, build_ensemble
    from medsift.ensemble.members import parse_member

    members = [m for name in ("ngram", "encoder") for m in parse_member(str(recipe_run / "members" / name))]
    options = EnsembleOptions(
        method="weighted", weights_by="language", thresholds="per_language", min_positives=2
    )
    spec = build_ensemble(members, tmp_path / "ens", options)  # fallback: the options' default, mean
    options.fallback = "global"
    spec = build_ensemble(members, tmp_path / "ens-global", options)
    assert spec["policy"]["fallback"] == 0.5
    assert "no threshold of its own" in spec["policy"]["fallback_languages"]["ja_cadec"]
