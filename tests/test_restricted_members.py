"""Language-restricted members (config key ``languages``): trained on their languages, used only there."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medsift.config import parse_config
from medsift.ensemble.ade import predict_file
from medsift.errors import MedsiftError
from medsift.io import read_probabilities
from test_ade import make_ade_csv


def _recipe(tiny_bert: Path, train_csv: Path, out: Path) -> dict:
    return {
        "task": "ade",
        "method": "ensemble",
        "data": {"train": [str(train_csv)], "val_fraction": 0.25, "calib_fraction": 0.3},
        "members": {
            "ngram": {"method": "ngram", "model": {"n_features": 4096}, "languages": ["en"]},
            "jabert": {
                "languages": ["ja"],
                "model": {"name": str(tiny_bert), "max_length": 32},
                "loss": {"name": "ce"},
                "training": {"learning_rate": 1e-2, "num_train_epochs": 1, "use_cpu": True},
                "seeds": [3],
            },
        },
        "ensemble": {"method": "soft", "weights_by": "none", "thresholds": "global"},
        "output_dir": str(out),
    }


@pytest.fixture(scope="module")
def restricted_run(tiny_bert: Path, tmp_path_factory) -> Path:
    from medsift.ensemble.recipe import train

    tmp = tmp_path_factory.mktemp("restricted")
    return train(
        parse_config(_recipe(tiny_bert, make_ade_csv(tmp / "train.csv", n=120), tmp / "run")), quiet=True
    )


def test_a_restricted_member_trains_on_its_languages_and_the_ensemble_uses_it_there_only(
    restricted_run: Path,
):
    members = restricted_run / "members"
    for name, langs in (("ngram", ["en"]), ("jabert", ["ja"])):
        manifest = json.loads((members / name / "medsift_run.json").read_text())
        assert manifest["extra"]["languages"] == langs
        splits = pd.read_csv(members / name / "splits.csv")
        # val and calib rows are whole (the members line up), the training rows are of its languages only
        assert set(splits.loc[splits["split"] != "train", "language"]) == {"en", "ja"}
        assert set(splits.loc[splits["split"] == "train", "language"]) == set(langs)
    spec = json.loads((restricted_run / "ensemble.json").read_text())
    assert [m["languages"] for m in spec["members"]] == [["en"], ["ja"]]
    calib = read_probabilities(restricted_run / "calib_probabilities.csv")
    en = calib["language"] == "en"
    np.testing.assert_allclose(calib.loc[en, "p_ade"], calib.loc[en, "p_ade__ngram"])
    np.testing.assert_allclose(calib.loc[~en, "p_ade"], calib.loc[~en, "p_ade__jabert"])
    assert "jabert (only ja)" in (restricted_run / "report.md").read_text()


def test_predict_uses_each_restricted_member_on_its_language_and_all_members_on_an_unseen_one(
    restricted_run: Path, tmp_path: Path
):
    test = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "text": ["headache after the pill", "頭痛がひどい", "سردرد"],
            "origin": "t",
            "type": "tweet",
            "language": ["en", "ja", "fa"],
            "split": "test",
        }
    )
    test.to_csv(tmp_path / "test.csv", index=False)
    predict_file(
        restricted_run, tmp_path / "test.csv", tmp_path / "sub.csv", probabilities=tmp_path / "p.csv"
    )
    p = read_probabilities(tmp_path / "p.csv").set_index("id")
    assert p.loc["a", "p_ade"] == pytest.approx(p.loc["a", "p_ade__ngram"])
    assert p.loc["b", "p_ade"] == pytest.approx(p.loc["b", "p_ade__jabert"])
    assert p.loc["c", "p_ade"] == pytest.approx(
        (p.loc["c", "p_ade__ngram"] + p.loc["c", "p_ade__jabert"]) / 2
    )


def test_a_language_without_training_rows_is_refused(tmp_path: Path):
    from medsift.ade.ngram import train

    raw = {
        "task": "ade",
        "method": "ngram",
        "languages": ["fr"],
        "data": {"train": [str(make_ade_csv(tmp_path / "t.csv", n=60))]},
        "output_dir": str(tmp_path / "run"),
    }
    with pytest.raises(MedsiftError, match=r"no training row is in these languages"):
        train(parse_config(raw), quiet=True)
