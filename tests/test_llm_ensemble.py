"""An LLM ADE run joins an ensemble with an encoder run trained on the same files (tiny random models)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from medsift.cli import main
from medsift.config import parse_config
from medsift.io import read_probabilities


@pytest.fixture(scope="module")
def encoder_and_llm(tiny_bert: Path, tiny_qwen3: Path, tmp_path_factory) -> tuple[Path, Path, Path]:
    from medsift.ade.train import train as train_encoder
    from medsift.llm.train import train as train_llm
    from test_ade import make_ade_csv, tiny_config

    tmp = tmp_path_factory.mktemp("llm-ens")
    data = make_ade_csv(tmp / "train.csv", n=60)
    encoder = train_encoder(
        tiny_config(tiny_bert, data, tmp / "encoder", training={"num_train_epochs": 2}), quiet=True
    )
    # the same data keys as the encoder config (val/calib shares 0.2, default split_seed) and nothing else
    llm_config = parse_config(
        {
            "task": "ade",
            "method": "llm",
            "model": {"name": str(tiny_qwen3), "max_length": 128},
            "data": {"train": [str(data)], "val_fraction": 0.2, "calib_fraction": 0.2},
            "training": {
                "max_steps": 2,
                "per_device_train_batch_size": 4,
                "eval_strategy": "steps",
                "eval_steps": 2,
                "use_cpu": True,
            },
            "seeds": [3, 4],
            "output_dir": str(tmp / "llm"),
        }
    )
    llm = train_llm(llm_config, quiet=True)
    return encoder, llm, data


def _ids(run: Path, split: str) -> list[str]:
    return sorted(read_probabilities(run / f"{split}_probabilities.csv")["id"].astype(str))


@pytest.mark.slow
def test_llm_and_encoder_runs_share_val_and_calib_rows(encoder_and_llm):
    encoder, llm, _ = encoder_and_llm
    for split in ("val", "calib"):
        assert _ids(llm, split) == _ids(encoder, split) and _ids(llm, split)
    # the same row went to the same group in both runs: the LLM never trained on the encoder's calib rows
    enc_splits = pd.read_csv(encoder / "splits.csv").set_index("uid")["split"]
    llm_splits = pd.read_csv(llm / "splits.csv").set_index("uid")["split"]
    assert llm_splits.sort_index().equals(enc_splits.sort_index())
    columns = list(pd.read_csv(llm / "calib_probabilities.csv").columns)
    assert columns == ["id", "language", "p_ade", "label", "uid", "p_ade__seed3", "p_ade__seed4"]
    assert list(pd.read_csv(encoder / "calib_probabilities.csv").columns)[:5] == columns[:5]


@pytest.mark.slow
def test_ensemble_of_an_encoder_and_an_llm_run_predicts_new_posts(encoder_and_llm, tmp_path, capsys):
    from test_ade import make_ade_csv

    encoder, llm, _ = encoder_and_llm
    ens = tmp_path / "ens"
    main(
        [
            "ensemble",
            str(encoder),
            str(llm),
            "--method",
            "soft",
            "--thresholds",
            "tuned_global",
            "-o",
            str(ens),
        ]
    )
    spec = json.loads((ens / "ensemble.json").read_text())
    assert [m["kind"] for m in spec["members"]] == ["ade-classifier", "ade-llm"]
    assert spec["rows_used"]["calibration_and_thresholds"]["split"] == "calib"
    test = make_ade_csv(tmp_path / "test.csv", n=9, seed=4)
    sub, probs = tmp_path / "sub.csv", tmp_path / "p.csv"
    capsys.readouterr()
    main(["predict", str(ens), str(test), "-o", str(sub), "--probabilities", str(probs), "--json", "-q"])
    scores = json.loads(capsys.readouterr().out)
    assert 0.0 <= scores["f1"] <= 1.0
    assert pd.read_csv(sub)["id"].tolist() == pd.read_csv(test)["id"].tolist()
    p = read_probabilities(probs)
    assert {f"p_ade__{encoder.name}", f"p_ade__{llm.name}"} <= set(p.columns)
    # the LLM member's column is what the LLM run itself predicts for these posts
    main(["predict", str(llm), str(test), "-o", str(tmp_path / "llm_sub.csv"), "--probabilities",
          str(tmp_path / "llm_p.csv"), "-q"])  # fmt: skip
    alone = read_probabilities(tmp_path / "llm_p.csv")
    assert p[f"p_ade__{llm.name}"].tolist() == pytest.approx(alone["p_ade"].tolist(), abs=1e-6)
