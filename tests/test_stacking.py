"""Stacking (a logistic regression over member logits and per-post features, fit on calib rows only) and
members restricted to some languages, on hand-made probability files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medsift.cli import main
from medsift.decision.restricted import combine_known, known_mask
from medsift.decision.stacking import cross_fit_stacker, design_matrix, fit_stacker
from medsift.ensemble.ade import EnsembleOptions, build_ensemble, predict_file
from medsift.ensemble.members import parse_member
from medsift.errors import MedsiftError
from medsift.io import read_probabilities, write_probabilities


def _rows(n: int, prefix: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    langs = np.where(np.arange(n) % 3 == 0, "ja", "en")
    # member a is informative, member b is noise; the feature "n_entities" of b is informative too
    a = np.clip(0.25 + 0.5 * y + rng.normal(0, 0.15, n), 0.01, 0.99)
    b = rng.uniform(0.05, 0.95, n)
    ents = y * rng.integers(1, 4, n) + rng.integers(0, 2, n)
    return pd.DataFrame(
        {"id": [f"{prefix}{i}" for i in range(n)], "language": langs, "label": y, "a": a, "b": b, "e": ents}
    )


def _member_files(tmp_path: Path, val: pd.DataFrame, calib: pd.DataFrame, name: str, feature: bool) -> str:
    paths = []
    for split, frame in (("val", val), ("calib", calib)):
        out = pd.DataFrame(
            {"id": frame["id"], "language": frame["language"], "p_ade": frame[name], "label": frame["label"]}
        )
        if feature:
            out["feat__n_entities"] = frame["e"].to_numpy(dtype=float)
        paths.append(write_path := tmp_path / f"{name}_{split}.csv")
        write_probabilities(write_path, out)
    return f"val={paths[0]},calib={paths[1]},name={name}"


@pytest.fixture
def data(tmp_path: Path):
    val, calib = _rows(60, "v", 1), _rows(120, "c", 2)
    specs = [_member_files(tmp_path, val, calib, "a", False), _member_files(tmp_path, val, calib, "b", True)]
    return specs, val, calib


def _build(specs, out, **options):
    return build_ensemble([m for s in specs for m in parse_member(s)], out, EnsembleOptions(**options))


def test_the_stacker_learns_signed_coefficients_and_its_out_of_fold_scores_differ_from_the_fit():
    frame = _rows(200, "r", 0)
    X, names = design_matrix(frame[["a", "b"]].to_numpy(), ["a", "b"], features={"b:n_entities": frame["e"]})
    assert names == ["p:a", "p:b", "b:n_entities"]
    fit = cross_fit_stacker(frame["label"], X, names, frame["language"].to_numpy(), folds=5)
    coef = {c["feature"]: c["coefficient"] for c in fit.stacker.coefficients()}
    assert coef["p:a"] > 1 and coef["b:n_entities"] > 0.3 and abs(coef["p:b"]) < coef["p:a"]
    full = fit.stacker.apply(X)
    assert not np.allclose(full, fit.out_of_fold)  # each row scored by folds that did not see it
    assert fit_stacker(frame["label"], X, names).coef == fit.stacker.coef


def test_a_restricted_member_is_blanked_in_other_languages_of_the_design():
    probs = np.array([[0.9, 0.9], [0.9, 0.9]])
    known = known_mask([None, ["ja"]], ["en", "ja"])
    X, _ = design_matrix(probs, ["a", "jab"], known)
    assert X[0, 1] == 0 and X[1, 1] > 0  # en row: the ja-only member says nothing (logit 0.5)


def test_stacking_is_fit_on_calib_rows_only_and_reports_each_coefficient(data, tmp_path: Path):
    specs, val, calib = data
    spec = _build(specs, tmp_path / "st", method="stacking", stack_features=["b"], thresholds="tuned_global")
    stacking = spec["stacking"]
    assert stacking["fit_on"] == "calib" and stacking["folds"] == 5
    assert {c["feature"] for c in stacking["coefficients"]} == {"p:a", "p:b", "b:n_entities"}
    assert spec["rows_used"]["calibration_and_thresholds"]["split"] == "calib"
    report = (tmp_path / "st" / "report.md").read_text()
    assert "## Stacking" in report and "b:n_entities" in report and "learned (stacking)" in report
    # the calib file holds out-of-fold probabilities: not what the final model gives those rows
    cal = read_probabilities(tmp_path / "st" / "calib_probabilities.csv")
    X, _ = design_matrix(calib[["a", "b"]].to_numpy(), ["a", "b"], features={"b:n_entities": calib["e"]})
    from medsift.decision.stacking import Stacker

    model = Stacker.from_dict(stacking["model"])
    assert not np.allclose(cal["p_ade"], model.apply(X))
    # fit on calib only: flipping every val label changes nothing in the model
    flipped = tmp_path / "flipped"
    flipped.mkdir()
    val2 = val.assign(label=1 - val["label"])
    specs2 = [_member_files(flipped, val2, calib, "a", False), _member_files(flipped, val2, calib, "b", True)]
    spec2 = _build(
        specs2, tmp_path / "st2", method="stacking", stack_features=["b"], thresholds="tuned_global"
    )
    assert spec2["stacking"]["model"] == stacking["model"]
    assert spec2["policy"] == spec["policy"]


def test_stacking_predicts_new_posts_with_the_member_features(data, tmp_path: Path):
    specs, _, calib = data
    _build(specs, tmp_path / "st", method="stacking", stack_features=["b"])
    test = calib.head(20)
    inp = tmp_path / "test.csv"
    test[["id", "language"]].assign(text="post").to_csv(inp, index=False)
    given = {}
    for name in "ab":
        frame = pd.DataFrame({"id": test["id"], "language": test["language"], "p_ade": test[name]})
        if name == "b":
            frame["feat__n_entities"] = test["e"].to_numpy(dtype=float)
        write_probabilities(given.setdefault(name, tmp_path / f"{name}_test.csv"), frame)
    out = predict_file(
        tmp_path / "st",
        inp,
        tmp_path / "sub.csv",
        probabilities=tmp_path / "p.csv",
        member_probabilities=given,
    )
    assert out["rows"] == 20
    # without the features the stacker refuses (one clear message, not a wrong score)
    write_probabilities(
        given["b"], pd.DataFrame({"id": test["id"], "language": test["language"], "p_ade": test["b"]})
    )
    with pytest.raises(MedsiftError, match="b:n_entities"):
        predict_file(tmp_path / "st", inp, tmp_path / "sub2.csv", member_probabilities=given)


def test_stacking_refuses_what_it_cannot_use(data, tmp_path: Path):
    specs, _, _ = data
    with pytest.raises(MedsiftError, match="no member named zz"):
        _build(specs, tmp_path / "x1", method="stacking", stack_features=["zz"])
    with pytest.raises(MedsiftError, match="wrote no per-post features"):
        _build(specs, tmp_path / "x2", method="stacking", stack_features=["a"])
    with pytest.raises(MedsiftError, match="learns its own weights"):
        _build(specs, tmp_path / "x3", method="stacking", weights=[1, 1])


def test_stacking_from_the_command_line(data, tmp_path: Path, capsys):
    specs, _, _ = data
    assert not main(
        [
            "ensemble",
            *specs,
            "--method",
            "stacking",
            "--stack-features",
            "b",
            "--stack-folds",
            "3",
            "-o",
            str(tmp_path / "cli"),
        ]
    )
    assert "## Stacking" in capsys.readouterr().out


def test_combine_known_leaves_a_member_out_of_languages_it_does_not_know():
    probs = np.array([[0.2, 0.9], [0.2, 0.9], [0.4, 0.8]])
    known = known_mask([None, ["ja"]], ["en", "ja", "fa"])
    np.testing.assert_allclose(combine_known(probs, "soft", None, known), [0.2, 0.55, 0.4])
    # hard vote: en row is the first member's vote alone
    np.testing.assert_allclose(combine_known(probs, "hard", None, known), [0.0, 0.5, 0.0])
    # a row no member knows: every member votes
    only = known_mask([["ja"], ["ja"]], ["fa"])
    assert only.all()


def test_a_language_restricted_file_member_is_ignored_elsewhere_in_the_ensemble(data, tmp_path: Path):
    specs, val, calib = data
    ja = _member_files(tmp_path, val.assign(j=0.99), calib.assign(j=0.99), "j", False) + ",languages=ja"
    spec = _build([specs[0], ja], tmp_path / "r", method="soft")
    assert spec["members"][1]["languages"] == ["ja"]
    cal = read_probabilities(tmp_path / "r" / "calib_probabilities.csv")
    en = cal["language"] == "en"
    np.testing.assert_allclose(cal.loc[en, "p_ade"], cal.loc[en, "p_ade__a"])
    np.testing.assert_allclose(cal.loc[~en, "p_ade"], (cal.loc[~en, "p_ade__a"] + 0.99) / 2)
    assert "j (only ja)" in (tmp_path / "r" / "report.md").read_text()
