"""``medsift cv``: folds disjoint and stratified, every row predicted exactly once out of fold, resume
identical (tiny random models, made-up posts; CPU, fixed seeds)."""

from __future__ import annotations

import csv
import json
import random
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medsift.config import parse_config
from medsift.cv import cross_validate, group_folds, stratified_folds, summarise
from medsift.errors import MedsiftError

C, S = "ClinicalImpacts", "SocialImpacts"


# --- pure: folds and summaries -----------------------------------------------------------------------


def test_stratified_folds_are_disjoint_cover_every_row_and_keep_proportions():
    keys = ["a"] * 50 + ["b"] * 20 + ["c"] * 10
    folds = stratified_folds(keys, 5, seed=3)
    assert folds.shape == (80,) and set(folds.tolist()) == set(range(5))  # each row in exactly one fold
    for k in range(5):
        in_fold = Counter(key for key, f in zip(keys, folds, strict=True) if f == k)
        assert in_fold == {"a": 10, "b": 4, "c": 2}
    assert (stratified_folds(keys, 5, seed=3) == folds).all()
    assert not (stratified_folds(keys, 5, seed=4) == folds).all()


def test_rare_strata_are_pooled_instead_of_spread_unevenly():
    keys = ["x"] * 20 + ["rare1", "rare2", "rare3"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn warns when a stratum has fewer rows than folds
        folds = stratified_folds(keys, 3, seed=0)
    assert sorted(Counter(folds.tolist()).values()) == [7, 8, 8]
    with pytest.raises(MedsiftError, match="cannot fill"):
        stratified_folds(["a", "b"], 3, seed=0)
    with pytest.raises(MedsiftError, match="at least 2"):
        stratified_folds(["a"] * 9, 1, seed=0)


def test_group_folds_leave_one_group_out():
    folds, names = group_folds(["ru", "en", "ru", "de", "en"])
    assert names == ["de", "en", "ru"]
    assert folds.tolist() == [2, 1, 2, 0, 1]
    with pytest.raises(MedsiftError, match="at least 2 groups"):
        group_folds(["en", "en"])


def test_summary_is_mean_and_sample_sd_over_the_folds_that_have_a_metric():
    out = summarise([{"f1": 0.2, "f1.en": 0.5}, {"f1": 0.4}])
    assert out["f1"]["mean"] == pytest.approx(0.3) and out["f1"]["sd"] == pytest.approx(0.1414, abs=1e-4)
    assert out["f1.en"] == {"mean": 0.5, "sd": 0.0, "n": 1}


# --- impacts: a tiny tagger end to end ---------------------------------------------------------------

WORDS = ["I", "lost", "my", "job", "after", "the", "overdose", "and", "my", "family", "left", "me"]


def _impacts_csv(path: Path, n: int = 24) -> Path:
    """Made-up posts; the first three share one ID, as the official train file's first rows do."""
    rng = random.Random(0)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["tokens", "labels", "ID", "ner_tags"])
        for i in range(n):
            tokens = rng.sample(WORDS, 8)
            tags = ["O"] * 8
            if i % 2 == 0:
                tags[1:3] = [f"B-{C}", f"I-{C}"]
            if i % 3 == 0:
                tags[5] = f"B-{S}"
            labels = ["_" if t == "O" else t[2:] for t in tags]
            w.writerow([repr(tokens), repr(labels), "Train_1" if i < 3 else f"Train_{i}", repr(tags)])
    return path


def _impacts_config(model: Path, train: Path, out: Path):
    return parse_config(
        {
            "task": "impacts",
            "model": {"name": str(model), "max_length": 16, "stride": 4},
            "data": {"train": [str(train)], "val_fraction": 0.2, "seed": 1},
            "training": {
                "learning_rate": 5e-3,
                "num_train_epochs": 1,
                "per_device_train_batch_size": 8,
                "use_cpu": True,
                "logging_steps": 1,
            },
            "seeds": [7],
            "output_dir": str(out),
        }
    )


def _stable(result: dict) -> dict:
    """cv.json without the wall times."""
    return {k: v for k, v in result.items() if k != "train_seconds"}


@pytest.fixture(scope="module")
def impacts_cv(tiny_bert: Path, tmp_path_factory) -> tuple:
    tmp = tmp_path_factory.mktemp("cv-impacts")
    config = _impacts_config(tiny_bert, _impacts_csv(tmp / "train.csv"), tmp / "run")
    result = cross_validate(config, tmp / "cv", folds=3, quiet=True)
    return config, tmp / "cv", result


def test_impact_folds_are_disjoint_and_stratified_by_type(impacts_cv):
    _, out, result = impacts_cv
    folds = pd.read_csv(out / "folds.csv")
    assert folds["row"].tolist() == list(range(1, 25)) and result["fold_rows"] == [8, 8, 8]
    # strata of the 24 posts: Clinical only 8, Social only 4, both 4, none 8
    totals = {"C": 8, "S": 4, "CS": 4, "": 8}
    for k in range(3):
        train = pd.read_csv(out / f"fold-{k}" / "train.csv")
        test = pd.read_csv(out / f"fold-{k}" / "test.csv")
        assert len(train) + len(test) == 24
        assert set(zip(train["tokens"], train["ID"], strict=True)).isdisjoint(
            zip(test["tokens"], test["ID"], strict=True)
        )
        kinds = Counter(("C" if C in tags else "") + ("S" if S in tags else "") for tags in test["ner_tags"])
        for kind, total in totals.items():
            assert kinds[kind] in (total // 3, -(-total // 3)), (k, kind, kinds)


def test_impact_rows_are_predicted_exactly_once_out_of_fold(impacts_cv):
    from medsift.io import read_impacts, read_impacts_submission

    config, out, result = impacts_cv
    gold = read_impacts(config.data.train[0], labelled=True)
    oof = read_impacts_submission(out / "oof_predictions.csv")
    assert oof["ID"].tolist() == gold["ID"].tolist()  # input order, repeated IDs kept by position
    assert [len(t) for t in oof["predicted_ner_tags"]] == [len(t) for t in gold["tokens"]]
    stacked = []
    folds = pd.read_csv(out / "folds.csv")["fold"].to_numpy()
    for k in range(3):
        fold_sub = read_impacts_submission(out / f"fold-{k}" / "predictions.csv")
        assert fold_sub["predicted_ner_tags"].tolist() == oof["predicted_ner_tags"][folds == k].tolist()
        stacked += np.flatnonzero(folds == k).tolist()
    assert sorted(stacked) == list(range(24))
    summary = result["summary"]
    for name in ("strict.f1", "relaxed.f1", "strict.precision", "relaxed.recall"):
        assert summary[name]["n"] == 3 and name in result["pooled"]
    assert json.loads((out / "cv.json").read_text())["summary"] == summary


def test_impact_cv_resumes_to_identical_results(impacts_cv, tmp_path, monkeypatch):
    import medsift.cv as cv

    config, out, result = impacts_cv
    # a rerun of a finished cv reads every fold back
    assert _stable(cross_validate(config, out, folds=3, quiet=True)) == _stable(result)
    # killed during the second fold, then started again: the same numbers as the uninterrupted run
    real = cv.run_fold

    def dies_on_fold_1(config, data, fold_dir, *args, **kwargs):
        if fold_dir.name == "fold-1":
            raise KeyboardInterrupt
        return real(config, data, fold_dir, *args, **kwargs)

    monkeypatch.setattr(cv, "run_fold", dies_on_fold_1)
    with pytest.raises(KeyboardInterrupt):
        cross_validate(config, tmp_path / "cv", folds=3, quiet=True)
    assert (tmp_path / "cv" / "fold-0" / "scores.json").exists()
    assert not (tmp_path / "cv" / "cv.json").exists()
    monkeypatch.setattr(cv, "run_fold", real)
    again = cross_validate(config, tmp_path / "cv", folds=3, quiet=True)
    assert _stable(again) == _stable(result)
    assert (tmp_path / "cv" / "oof_predictions.csv").read_bytes() == (
        out / "oof_predictions.csv"
    ).read_bytes()


def test_a_cv_folder_refuses_another_plan(impacts_cv):
    config, out, _ = impacts_cv
    with pytest.raises(MedsiftError, match="another folds, assignment"):
        cross_validate(config, out, folds=2, quiet=True)


# --- ADE: stratified and leave one language out, through the CLI ------------------------------------


def _ade_csv(path: Path, n: int = 36) -> Path:
    pos = ["this drug gave me a terrible headache", "薬のせいで頭痛がひどい", "the pills made me dizzy"]
    neg = ["I picked up my prescription today", "天気がいいですね", "nice weather"]
    rows = []
    for i in range(n):
        label = int(i % 3 == 0)
        lang = ["en", "ja", "de"][(i // 3) % 3]  # every language: 4 positives, 8 negatives
        text = (pos if label else neg)[i % 3] + f" {i}"
        row = {"id": f"{lang}_{i}", "text": text, "label": f"{label}.0", "language": lang}
        rows.append({**row, "origin": "t", "type": "tweet", "split": "train"})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _ade_config_file(model: Path, train: Path, folder: Path) -> Path:
    import yaml

    raw = {
        "task": "ade",
        "model": {"name": str(model), "max_length": 32},
        "data": {"train": [str(train)], "val_fraction": 0.2, "calib_fraction": 0.2},
        "loss": {"name": "ce"},
        "training": {
            "learning_rate": 1e-2,
            "per_device_train_batch_size": 8,
            "num_train_epochs": 1,
            "use_cpu": True,
            "logging_steps": 1,
        },
        "seeds": [7],
        "output_dir": str(folder / "run"),
    }
    path = folder / "ade.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_ade_cv_leave_one_language_out_from_the_cli(tiny_bert: Path, tmp_path: Path, capsys):
    from medsift.cli import main
    from medsift.io import read_ade, read_ade_submission, read_probabilities

    train = _ade_csv(tmp_path / "train.csv")
    cfg = _ade_config_file(tiny_bert, train, tmp_path)
    main(["cv", str(cfg), "--group-by", "language", "--output-dir", str(tmp_path / "cv"), "-q"])
    printed = capsys.readouterr().out
    assert "leave one language out (de, en, ja)" in printed and "f1.ja" in printed
    result = json.loads((tmp_path / "cv" / "cv.json").read_text())
    assert result["folds"] == 3 and result["fold_names"] == ["de", "en", "ja"]
    gold = read_ade(train)
    for k, lang in enumerate(result["fold_names"]):
        test = read_ade(tmp_path / "cv" / f"fold-{k}" / "test.csv")
        assert set(test["language"]) == {lang}
        assert lang not in set(read_ade(tmp_path / "cv" / f"fold-{k}" / "train.csv")["language"])
        assert set(result["per_fold"][k]) >= {"f1", f"f1.{lang}"}
    oof = read_ade_submission(tmp_path / "cv" / "oof_predictions.csv")
    assert oof["id"].tolist() == gold["id"].tolist()  # every row once, in input order
    probs = read_probabilities(tmp_path / "cv" / "oof_probabilities.csv")
    assert probs["id"].tolist() == gold["id"].tolist() and probs["p_ade"].between(0, 1).all()


def test_ade_folds_are_stratified_by_label_and_language(tiny_bert: Path, tmp_path: Path):
    from medsift.config import load_config
    from medsift.io import read_ade

    cfg = load_config(_ade_config_file(tiny_bert, _ade_csv(tmp_path / "train.csv"), tmp_path))
    result = cross_validate(cfg, tmp_path / "cv", folds=2, quiet=True)
    tests = [read_ade(tmp_path / "cv" / f"fold-{k}" / "test.csv") for k in range(2)]
    strata = [Counter(zip(t["language"], t["label"], strict=True)) for t in tests]
    assert strata[0] == strata[1]  # every (language, label) stratum here has an even count
    assert result["rows"] == 36 and sum(result["fold_rows"]) == 36
    with pytest.raises(MedsiftError, match="applies to task ade only"):
        cross_validate(
            _impacts_config(tiny_bert, _impacts_csv(tmp_path / "t7.csv"), tmp_path / "r"),
            tmp_path / "cv7",
            group_by="language",
        )
