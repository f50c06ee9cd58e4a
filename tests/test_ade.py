"""The ADE classifier contract on a tiny random model: it trains, learns, reloads identically, batches safely."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from medsift.ade.loss import focal_loss
from medsift.config import parse_config
from medsift.io import read_probabilities

POS = [
    "this drug gave me a terrible headache",
    "after the pills I felt dizzy and sick",
    "the medication caused nausea",
    "薬のせいで頭痛がひどい",
    "副作用で吐き気がする",
]
NEG = [
    "I picked up my prescription today",
    "the weather is nice",
    "my doctor called about the appointment",
    "今日は薬局に行った",
    "天気がいいですね",
]


def make_ade_csv(path: Path, n: int = 80, seed: int = 0) -> Path:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = int(i % 3 == 0)
        text = rng.choice(POS if label else NEG) + " " + rng.choice(["", "!", " really", " today"])
        lang = "ja" if any(ord(c) > 0x3000 for c in text) else "en"
        rows.append(
            {
                "id": f"{lang}_{i}",
                "text": text,
                "label": f"{label}.0",
                "origin": "test",
                "type": "tweet",
                "language": lang,
                "split": "train",
            }
        )
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def tiny_config(model_dir: Path, train_csv: Path, out: Path, **overrides):
    raw = {
        "task": "ade",
        "model": {"name": str(model_dir), "max_length": 32},
        "data": {
            "train": [str(train_csv)],
            "val_fraction": 0.2,
            "calib_fraction": 0.2,
            "oversample_positives": 2.0,
        },
        "loss": {"name": "ce"},
        "training": {
            "learning_rate": 1e-2,
            "per_device_train_batch_size": 8,
            "num_train_epochs": 6,
            "logging_steps": 1,
            "use_cpu": True,
            "save_total_limit": None,
        },
        "seeds": [7],
        "output_dir": str(out),
    }
    for key, value in overrides.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) else value
    return parse_config(raw)


@pytest.fixture(scope="module")
def trained_run(tiny_bert: Path, tmp_path_factory) -> Path:
    from medsift.ade.train import train

    tmp = tmp_path_factory.mktemp("ade")
    return train(tiny_config(tiny_bert, make_ade_csv(tmp / "train.csv"), tmp / "run"), quiet=True)


def test_run_directory_is_self_describing(trained_run: Path):
    manifest = json.loads((trained_run / "medsift_run.json").read_text())
    assert manifest["kind"] == "ade-classifier" and manifest["seeds"] == [7]
    assert all(len(h) == 64 for h in manifest["data"].values())
    assert "transformers" in manifest["packages"]
    model_dir = trained_run / "seed-7" / "model"
    assert (model_dir / "model.safetensors").exists()
    assert not list(model_dir.glob("*.bin")) and not list(model_dir.glob("*.pt"))
    assert (trained_run / "config.yaml").exists() and (trained_run / "thresholds.json").exists()


def test_splits_are_disjoint_and_oversampling_touches_training_only(trained_run: Path):
    splits = pd.read_csv(trained_run / "splits.csv")
    assert splits["uid"].is_unique  # every input row is in exactly one split
    assert len(splits) == 80
    val = read_probabilities(trained_run / "seed-7" / "val_probabilities.csv")
    calib = read_probabilities(trained_run / "seed-7" / "calib_probabilities.csv")
    assert len(val) == (splits["split"] == "val").sum() and len(calib) == (splits["split"] == "calib").sum()
    assert set(val["id"]).isdisjoint(set(calib["id"]))


def test_loss_falls_and_model_learns(trained_run: Path):
    metrics = json.loads((trained_run / "seed-7" / "metrics.json").read_text())
    losses = [h["train_loss"] for h in metrics["history"]]
    assert losses[-1] < losses[0]
    assert metrics["best"]["eval_f1"] > 0.8  # the toy task is separable


def test_reload_gives_identical_predictions_and_batching_changes_nothing(trained_run: Path):
    from medsift.ade import AdeClassifier

    val = read_probabilities(trained_run / "seed-7" / "val_probabilities.csv")
    splits = pd.read_csv(trained_run / "splits.csv").set_index("id")
    src = pd.read_csv(Path(splits["source"].iloc[0])).set_index("id")
    texts = src.loc[val["id"], "text"].tolist()
    clf = AdeClassifier.from_run(trained_run, device="cpu")
    batched = clf.predict(texts, val["language"].tolist())
    np.testing.assert_allclose(
        batched.p_ade, val["p_ade"].to_numpy(), atol=1e-6
    )  # saved in-memory == reloaded
    one_by_one = clf.predict(texts, batch_tokens=1)  # every batch holds a single post
    np.testing.assert_allclose(one_by_one.p_ade, batched.p_ade, atol=1e-5)


def test_every_trainable_parameter_gets_a_gradient(tiny_bert: Path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    batch = tok(POS[:2] + NEG[:2], padding=True, return_tensors="pt", return_token_type_ids=True)
    batch["token_type_ids"][:, -1] = 1  # touch both token-type rows
    loss = focal_loss(model(**batch).logits, torch.tensor([1, 1, 0, 0]))
    loss.backward()
    missing = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not p.grad.abs().sum())
    ]
    assert not missing


def test_focal_loss_with_gamma_zero_and_no_alpha_is_cross_entropy():
    logits = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 2, (16,), generator=torch.Generator().manual_seed(1))
    ce = torch.nn.functional.cross_entropy(logits, labels)
    torch.testing.assert_close(focal_loss(logits, labels, alpha=None, gamma=0.0), ce)
    assert focal_loss(logits, labels, alpha=None, gamma=2.0) < ce  # easy examples are down-weighted


def test_predict_command_writes_one_row_per_id_and_scores(trained_run: Path, tmp_path: Path, capsys):
    from medsift.cli import main
    from medsift.io import read_ade_submission

    test_csv = make_ade_csv(tmp_path / "test.csv", n=20, seed=3)
    main(
        [
            "predict",
            str(trained_run),
            str(test_csv),
            "-o",
            str(tmp_path / "sub.csv"),
            "--probabilities",
            str(tmp_path / "probs.csv"),
            "--json",
            "--quiet",
        ]
    )
    sub = read_ade_submission(tmp_path / "sub.csv")
    assert sub["id"].tolist() == pd.read_csv(test_csv)["id"].tolist()
    probs = read_probabilities(tmp_path / "probs.csv")
    assert "p_ade__seed7" in probs.columns
    scores = json.loads(capsys.readouterr().out)
    assert 0.0 <= scores["f1"] <= 1.0


def test_distilled_student_learns_from_the_teacher(trained_run: Path, tiny_bert: Path, tmp_path: Path):
    from medsift.ensemble.teacher import distill

    csv = make_ade_csv(tmp_path / "train.csv")
    student = distill(
        tiny_config(tiny_bert, csv, tmp_path / "student", loss={"distill_weight": 1.0}),
        trained_run,
        run_dir=tmp_path / "student",
        quiet=True,
    )
    manifest = json.loads((student / "medsift_run.json").read_text())
    assert manifest["extra"]["teacher"] == str(trained_run.resolve())
    metrics = json.loads((student / "seed-7" / "metrics.json").read_text())
    assert metrics["best"]["eval_f1"] > 0.8  # pure soft targets from a good teacher still teach the task


def test_training_on_files_that_share_ids_keeps_every_row_in_one_split_and_its_probabilities(
    tiny_bert: Path, tmp_path: Path
):
    """The official files repeat ids across files: a whole multi-seed run (and an ensemble of its seeds) keys
    its own probability files by uid, so no row is refused, dropped or doubled."""
    from medsift.ade.train import train
    from medsift.ensemble.ade import EnsembleOptions, build_ensemble
    from medsift.ensemble.members import parse_member

    a = make_ade_csv(tmp_path / "a.csv", n=40, seed=1)
    b = make_ade_csv(tmp_path / "b.csv", n=40, seed=2)  # the same ids (en_0, ja_3, ...) as a.csv
    cfg = tiny_config(
        tiny_bert,
        a,
        tmp_path / "run",
        seeds=[7, 8],
        training={"num_train_epochs": 1},
        data={
            "val_fraction": 0.35,
            "calib_fraction": 0.35,
        },  # large enough that both copies of an id land in one
    )
    cfg.data.train = [str(a), str(b)]
    run = train(cfg, quiet=True)

    splits = pd.read_csv(run / "splits.csv", dtype=str)
    expected = [f"a:{i}" for i in pd.read_csv(a)["id"]] + [f"b:{i}" for i in pd.read_csv(b)["id"]]
    assert sorted(splits["uid"]) == sorted(expected)  # every row once, in exactly one split
    for split in ("val", "calib"):
        rows = splits[splits["split"] == split]
        paths = [run / f"{split}_probabilities.csv"] + [
            run / f"seed-{s}" / f"{split}_probabilities.csv" for s in (7, 8)
        ]
        for path in paths:
            probs = read_probabilities(path)
            assert sorted(probs["uid"]) == sorted(rows["uid"])
            assert probs.set_index("uid").loc[rows["uid"], "id"].tolist() == rows["id"].tolist()
        averaged = read_probabilities(run / f"{split}_probabilities.csv")
        np.testing.assert_allclose(averaged["p_ade"], averaged[["p_ade__seed7", "p_ade__seed8"]].mean(axis=1))
    tuned = splits[splits["split"] != "train"]
    assert (
        tuned.groupby("split")["id"].apply(lambda ids: ids.duplicated().any()).any()
    )  # ids do repeat in a split

    members = parse_member(str(run), expand_seeds=True)
    spec = build_ensemble(
        members, tmp_path / "ens", EnsembleOptions(method="soft", thresholds="tuned_global")
    )
    ens_calib = read_probabilities(tmp_path / "ens" / "calib_probabilities.csv")
    assert sorted(ens_calib["uid"]) == sorted(splits.loc[splits["split"] == "calib", "uid"])
    assert spec["rows_used"]["calibration_and_thresholds"]["rows"] == len(ens_calib)
