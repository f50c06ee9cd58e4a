"""`medsift ensemble` and the decision commands: hand-made probability files, then two tiny trained runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medsift.cli import main
from medsift.decision import ThresholdPolicy
from medsift.ensemble.ade import EnsembleOptions, build_ensemble, predict_file
from medsift.ensemble.members import parse_member
from medsift.errors import MedsiftError
from medsift.io import read_probabilities, write_probabilities

# Two members over the same 6 val rows and 8 calib rows.
VAL = {"ids": [f"v{i}" for i in range(6)], "lang": ["en"] * 3 + ["ja"] * 3, "y": [1, 0, 1, 0, 1, 0]}
VAL_A = [0.9, 0.2, 0.6, 0.4, 0.7, 0.1]  # perfect at 0.5: F1 1.0
VAL_B = [0.8, 0.6, 0.3, 0.2, 0.4, 0.3]  # TP v0, FP v1 -> F1 = 2/(2+1+2) = 0.4
CAL = {"ids": [f"c{i}" for i in range(8)], "lang": ["en"] * 4 + ["ja"] * 4, "y": [1, 1, 0, 0, 1, 1, 0, 0]}
CAL_A = [0.9, 0.45, 0.3, 0.1, 0.8, 0.7, 0.9, 0.2]
CAL_B = [0.7, 0.55, 0.5, 0.2, 0.4, 0.6, 0.2, 0.1]


def _write(path: Path, rows: dict, p: list[float]) -> Path:
    frame = pd.DataFrame({"id": rows["ids"], "language": rows["lang"], "p_ade": p, "label": rows["y"]})
    write_probabilities(path, frame)
    return path


@pytest.fixture
def members(tmp_path: Path) -> list[str]:
    specs = []
    for name, val, cal in (("a", VAL_A, CAL_A), ("b", VAL_B, CAL_B)):
        v = _write(tmp_path / f"{name}_val.csv", VAL, val)
        c = _write(tmp_path / f"{name}_calib.csv", CAL, cal)
        specs.append(f"val={v},calib={c},name={name}")
    return specs


def _build(specs: list[str], out: Path, **options) -> dict:
    found = [m for s in specs for m in parse_member(s)]
    return build_ensemble(found, out, EnsembleOptions(**options))


def test_soft_vote_is_the_mean_and_the_manifest_records_rows_used(members, tmp_path: Path):
    spec = _build(members, tmp_path / "soft", method="soft")
    calib = read_probabilities(tmp_path / "soft" / "calib_probabilities.csv")
    np.testing.assert_allclose(calib["p_ade"], (np.array(CAL_A) + np.array(CAL_B)) / 2)
    assert list(calib["p_ade__a"]) == CAL_A  # no calibration: member columns are the inputs
    used = spec["rows_used"]
    assert used["weights"] == {
        "split": "val",
        "rows": 6,
        "files": [str(tmp_path / f"{n}_val.csv") for n in "ab"],
    }
    assert used["calibration_and_thresholds"]["split"] == "calib"
    assert used["calibration_and_thresholds"]["rows"] == 8
    assert [m["val_f1_at_0.5"] for m in spec["members"]] == pytest.approx([1.0, 0.4])
    manifest = json.loads((tmp_path / "soft" / "medsift_run.json").read_text())
    assert manifest["kind"] == "ade-ensemble"
    assert "calib" in (tmp_path / "soft" / "report.md").read_text()


def test_hard_vote_is_the_fraction_of_positive_votes(members, tmp_path: Path):
    _build(members, tmp_path / "hard", method="hard")
    calib = read_probabilities(tmp_path / "hard" / "calib_probabilities.csv")
    # votes at 0.5: a = 1 0 0 0 1 1 1 0 ; b = 1 1 1 0 0 1 0 0
    assert calib["p_ade"].tolist() == [1.0, 0.5, 0.5, 0.0, 0.5, 1.0, 0.5, 0.0]


def test_weighted_vote_uses_val_f1_weights_or_explicit_ones(members, tmp_path: Path):
    spec = _build(members, tmp_path / "w", method="weighted")
    assert spec["weights"] == pytest.approx([1.0 / 1.4, 0.4 / 1.4])
    calib = read_probabilities(tmp_path / "w" / "calib_probabilities.csv")
    np.testing.assert_allclose(calib["p_ade"], (np.array(CAL_A) * 1.0 + np.array(CAL_B) * 0.4) / 1.4)
    spec = _build(members, tmp_path / "w2", method="weighted", weights=[1.0, 0.7])
    calib = read_probabilities(tmp_path / "w2" / "calib_probabilities.csv")
    np.testing.assert_allclose(calib["p_ade"], (np.array(CAL_A) + 0.7 * np.array(CAL_B)) / 1.7)


def test_per_language_thresholds_are_tuned_on_calib_rows_with_a_fallback(members, tmp_path: Path):
    spec = _build(
        members, tmp_path / "pl", method="soft", thresholds="per_language", min_positives=2, fallback="mean"
    )
    policy = ThresholdPolicy.from_dict(spec["policy"])
    p = (np.array(CAL_A) + np.array(CAL_B)) / 2
    en, ja = p[:4], p[4:]  # en: pos 0.8, 0.5; neg 0.4, 0.15 -> any t in (0.4, 0.5] is perfect; closest to 0.5
    assert policy.thresholds["en"] == pytest.approx(0.5)
    assert ja.tolist() == pytest.approx([0.6, 0.65, 0.55, 0.15])  # perfect for t in (0.55, 0.6]
    assert policy.thresholds["ja"] == pytest.approx(0.56)
    assert policy.threshold_for("fa") == policy.fallback == pytest.approx(0.53)  # the mean rule
    assert policy.counts == {"en": {"rows": 4, "positives": 2}, "ja": {"rows": 4, "positives": 2}}
    assert en.tolist() == pytest.approx([0.8, 0.5, 0.4, 0.15])


def test_temperature_calibration_records_ece_before_and_after(members, tmp_path: Path):
    spec = _build(members, tmp_path / "cal", method="soft", calibrate="temperature")
    assert [c["method"] for c in spec["calibrators"]] == ["temperature", "temperature"]
    for values in spec["ece"].values():
        assert set(values) == {"tuning_rows_before", "tuning_rows_after", "val_rows_before", "val_rows_after"}
        assert values["tuning_rows_after"] <= values["tuning_rows_before"] + 0.05


def test_members_without_calib_rows_need_cross_fitting(tmp_path: Path):
    specs = [f"val={_write(tmp_path / f'{n}.csv', VAL, p)},name={n}" for n, p in (("a", VAL_A), ("b", VAL_B))]
    with pytest.raises(MedsiftError, match="--cross-fit"):
        _build(specs, tmp_path / "x", thresholds="tuned_global")
    spec = _build(specs, tmp_path / "cf", thresholds="tuned_global", cross_fit=2)
    assert spec["rows_used"]["calibration_and_thresholds"]["split"] == "val (cross-fitted)"
    assert spec["warnings"] and "VAL rows" in (tmp_path / "cf" / "report.md").read_text()
    manifest = json.loads((tmp_path / "cf" / "medsift_run.json").read_text())
    assert manifest["extra"]["tuned_on"] == "val (cross-fitted)" and manifest["extra"]["warnings"]


def test_calib_files_can_be_given_for_members_that_lack_them(tmp_path: Path, capsys):
    specs = [f"val={_write(tmp_path / f'{n}.csv', VAL, p)},name={n}" for n, p in (("a", VAL_A), ("b", VAL_B))]
    calibs = [str(_write(tmp_path / f"{n}_c.csv", CAL, p)) for n, p in (("a", CAL_A), ("b", CAL_B))]
    out = tmp_path / "given"
    main(["ensemble", *specs, "-o", str(out), "--thresholds", "tuned_global", "--calib-file", calibs[0],
          "--calib-file", calibs[1]])  # fmt: skip
    spec = json.loads((out / "ensemble.json").read_text())
    assert spec["rows_used"]["calibration_and_thresholds"]["split"] == "calib"
    assert spec["rows_used"]["calibration_and_thresholds"]["files"] == [
        str(Path(c).resolve()) for c in calibs
    ]
    assert "calib" in capsys.readouterr().out


def test_mismatched_ids_are_refused_with_one_error_line(members, tmp_path: Path, capsys):
    short = _write(tmp_path / "short_val.csv", {k: v[:5] for k, v in VAL.items()}, VAL_A[:5])
    with pytest.raises(SystemExit) as exc:
        main(["ensemble", members[0], f"val={short},name=short", "-o", str(tmp_path / "bad")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not score the same rows" in err[0] and "v5" in err[0]
    assert not (tmp_path / "bad" / "medsift_run.json").exists()


def test_a_probability_file_member_cannot_predict_new_posts(members, tmp_path: Path):
    _build(members, tmp_path / "files")
    test = tmp_path / "test.csv"
    pd.DataFrame({"id": ["t1"], "text": ["hello"], "language": ["en"]}).to_csv(test, index=False)
    with pytest.raises(MedsiftError, match="probability file"):
        predict_file(tmp_path / "files", test, tmp_path / "sub.csv", quiet=True)


def test_analysis_commands(members, tmp_path: Path, capsys):
    main(
        [
            "ensemble",
            *members,
            "-o",
            str(tmp_path / "e1"),
            "--thresholds",
            "per_language",
            "--min-positives",
            "2",
        ]
    )
    main(
        ["ensemble", *members, "-o", str(tmp_path / "e2"), "--method", "hard", "--thresholds", "tuned_global"]
    )
    capsys.readouterr()
    main(["histograms", str(tmp_path / "e1"), "--bins", "4", "--png", str(tmp_path / "h.png")])
    out = capsys.readouterr().out
    assert "en" in out and "ja" in out and (tmp_path / "h.png").stat().st_size > 1000
    main(["threshold-shift", str(tmp_path / "e1"), str(tmp_path / "e2"), "--drift", "0.0"])
    captured = capsys.readouterr()
    assert "<unseen>" in captured.out and "WARNING" in captured.err


# ---- two tiny trained runs (slow) --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_runs(tiny_bert: Path, tmp_path_factory) -> list[Path]:
    from medsift.ade.train import train
    from test_ade import make_ade_csv, tiny_config

    tmp = tmp_path_factory.mktemp("ens")
    data = make_ade_csv(tmp / "train.csv", n=60)
    runs = []
    for name, seeds in (("r1", [7]), ("r2", [8, 9])):
        cfg = tiny_config(tiny_bert, data, tmp / name, seeds=seeds, training={"num_train_epochs": 3})
        runs.append(train(cfg, quiet=True))
    return runs


def _fa_test_file(path: Path) -> Path:
    from test_ade import make_ade_csv

    make_ade_csv(path, n=12, seed=5)
    frame = pd.read_csv(path)
    frame.loc[:3, "language"] = "fa"  # a language the runs never saw
    frame.loc[:3, "id"] = [f"fa_{i}" for i in range(4)]
    frame.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_ensemble_of_trained_runs_uses_the_fallback_for_an_unseen_language(two_runs, tmp_path: Path):
    out = tmp_path / "ens"
    main([
        "ensemble", str(two_runs[0]), str(two_runs[1]), "--per-seed", "-o", str(out), "--method", "weighted",
        "--thresholds", "per_language", "--min-positives", "1", "--fallback", "pooled", "--calibrate", "platt",
    ])  # fmt: skip
    spec = json.loads((out / "ensemble.json").read_text())
    assert [m["name"] for m in spec["members"]] == ["r1", "r2@seed8", "r2@seed9"]
    policy = ThresholdPolicy.from_dict(spec["policy"])
    assert "fa" not in policy.counts
    test = _fa_test_file(tmp_path / "test.csv")
    result = predict_file(out, test, tmp_path / "sub.csv", probabilities=tmp_path / "p.csv", quiet=True)
    assert result["rows"] == 12 and result["fallback_rows"] >= 4
    assert result["thresholds"]["fa"] == policy.fallback
    probs = read_probabilities(tmp_path / "p.csv")
    sub = pd.read_csv(tmp_path / "sub.csv")
    fa = probs["language"] == "fa"
    np.testing.assert_array_equal(sub.loc[fa, "predicted_label"], (probs.loc[fa, "p_ade"] >= policy.fallback))
    assert {"p_ade__r1", "p_ade__r2@seed8", "p_ade__r2@seed9"} <= set(probs.columns)
    assert "scores" in result and 0.0 <= result["scores"]["f1"] <= 1.0


@pytest.mark.slow
def test_predict_command_on_an_ensemble_and_a_nested_one(two_runs, tmp_path: Path, capsys):
    inner = tmp_path / "inner"
    main(["ensemble", *map(str, two_runs), "-o", str(inner), "--thresholds", "tuned_global"])
    outer = tmp_path / "outer"
    main(["ensemble", str(inner), str(two_runs[0]), "-o", str(outer), "--method", "hard"])
    capsys.readouterr()
    test = _fa_test_file(tmp_path / "test.csv")
    main(["predict", str(outer), str(test), "-o", str(tmp_path / "sub.csv"), "--json", "--quiet"])
    scores = json.loads(capsys.readouterr().out)
    assert set(scores["per_language"]) == {"en", "ja", "fa"}
    sub = pd.read_csv(tmp_path / "sub.csv")
    assert sub["id"].tolist() == pd.read_csv(test)["id"].tolist()


@pytest.mark.slow
def test_thresholds_command_retunes_a_classifier_run(two_runs, tmp_path: Path, capsys):
    import shutil

    run = Path(shutil.copytree(two_runs[1], tmp_path / "copy"))
    main(["thresholds", str(run), "--mode", "per_language", "--min-positives", "1", "--fallback", "pooled"])
    policy = ThresholdPolicy.from_dict(json.loads((run / "thresholds.json").read_text()))
    assert policy.mode == "per_language" and policy.n_calibration == len(
        read_probabilities(run / "calib_probabilities.csv")
    )
    assert "<unseen>" in capsys.readouterr().out


# ---- tie rule, threshold groups and outside-system members (hand-made files) ----------------------------


def test_hard_vote_tie_rule_is_an_ensemble_option(members, tmp_path: Path, capsys):
    # votes at 0.5: a = 1 0 0 0 1 1 1 0 ; b = 1 1 1 0 0 1 0 0 -> ties on c1, c2, c4, c6
    expected = {
        "positive": [1, 1, 1, 0, 1, 1, 1, 0],
        "negative": [1, 0, 0, 0, 0, 1, 0, 0],
        # mean member probability of the tied rows: c1 0.5, c2 0.4, c4 0.6, c6 0.55
        "mean_prob": [1, 1, 0, 0, 1, 1, 1, 0],
    }
    for tie, labels in expected.items():
        out = tmp_path / tie
        main(["ensemble", *members, "-o", str(out), "--method", "hard", "--tie", tie])
        calib = read_probabilities(out / "calib_probabilities.csv")
        policy = ThresholdPolicy.from_dict(json.loads((out / "thresholds.json").read_text()))
        assert policy.apply(calib["p_ade"], calib["language"]).tolist() == labels, tie
        assert json.loads((out / "ensemble.json").read_text())["options"]["tie"] == tie
        assert f"resolved as `{tie}`" in (out / "report.md").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["ensemble", *members, "-o", str(tmp_path / "bad"), "--method", "soft", "--tie", "negative"])
    assert "--tie applies to --method hard only" in capsys.readouterr().err


def _cadec_members(tmp_path: Path) -> list[str]:
    """One member over calib rows of native de posts (too few positives) and CADEC de rows (tuned alone)."""
    ids = [f"de_{i}" for i in range(4)] + [f"cadec_de_{i}" for i in range(6)]
    y = [1, 0, 0, 0, 1, 1, 1, 0, 0, 0]
    p = [0.7, 0.2, 0.1, 0.3, 0.9, 0.8, 0.7, 0.35, 0.2, 0.1]
    rows = {"ids": ids, "lang": ["de"] * 10, "y": y}
    val = _write(tmp_path / "val.csv", rows, p)
    calib = _write(tmp_path / "calib.csv", rows, p)
    return [f"val={val},calib={calib},name=outside"]


def _input_and_member_file(tmp_path: Path, ids: list[str], p: list[float]) -> tuple[Path, Path]:
    test = tmp_path / "test.csv"
    pd.DataFrame({"id": ids, "text": ["post"] * len(ids), "language": ["de"] * len(ids)}).to_csv(
        test, index=False
    )
    given = tmp_path / "outside_test.csv"
    write_probabilities(given, pd.DataFrame({"id": ids, "language": ["de"] * len(ids), "p_ade": p}))
    return test, given


def test_predict_reports_the_threshold_groups_it_applied(tmp_path: Path, capsys):
    spec = _build(_cadec_members(tmp_path), tmp_path / "ens", thresholds="per_language", min_positives=2)
    policy = ThresholdPolicy.from_dict(spec["policy"])
    assert set(policy.thresholds) == {"de_cadec"} and "de" in policy.fallback_languages
    test, given = _input_and_member_file(tmp_path, ["de_9", "cadec_de_9", "fa_1"], [0.6, 0.6, 0.6])
    result = predict_file(
        tmp_path / "ens", test, tmp_path / "sub.csv", quiet=True, member_probabilities={"outside": given}
    )
    assert result["thresholds"] == {"de": policy.fallback, "de_cadec": policy.thresholds["de_cadec"]}
    assert result["fallback_rows"] == 2 and result["fallback_groups"] == ["de"]  # de_9 and fa_1 (language de)
    main(["predict", str(tmp_path / "ens"), str(test), "-o", str(tmp_path / "sub.csv"), "--member-probabilities",
          f"outside={given}"])  # fmt: skip
    assert "2 rows of group(s) de have no tuned threshold" in capsys.readouterr().err
    sub = pd.read_csv(tmp_path / "sub.csv")
    cut = [policy.fallback, policy.thresholds["de_cadec"], policy.fallback]
    assert sub["predicted_label"].tolist() == [int(t <= 0.6) for t in cut]


def test_member_probabilities_stand_in_for_an_outside_system_on_new_posts(members, tmp_path: Path, capsys):
    _build(members, tmp_path / "ens", method="weighted")
    ids = ["t1", "t2", "t3"]
    test = tmp_path / "test.csv"
    pd.DataFrame({"id": ids, "text": ["x", "y", "z"], "language": ["en"] * 3}).to_csv(test, index=False)
    for name, p in (("a", [0.9, 0.2, 0.6]), ("b", [0.1, 0.2, 0.9])):
        write_probabilities(
            tmp_path / f"{name}_test.csv", pd.DataFrame({"id": ids[::-1], "language": "en", "p_ade": p[::-1]})
        )
    flags = [
        "--member-probabilities",
        f"a={tmp_path / 'a_test.csv'}",
        "--member-probabilities",
        f"b={tmp_path / 'b_test.csv'}",
    ]
    main(
        [
            "predict",
            str(tmp_path / "ens"),
            str(test),
            "-o",
            str(tmp_path / "sub.csv"),
            "--probabilities",
            str(tmp_path / "p.csv"),
            *flags,
        ]
    )
    probs = read_probabilities(tmp_path / "p.csv")
    np.testing.assert_allclose(
        probs["p_ade"], (np.array([0.9, 0.2, 0.6]) + 0.4 * np.array([0.1, 0.2, 0.9])) / 1.4
    )
    assert probs["id"].tolist() == ids  # aligned by id, not by file order
    capsys.readouterr()

    def refused(*extra: str) -> str:
        with pytest.raises(SystemExit) as exc:
            main(["predict", str(tmp_path / "ens"), str(test), "-o", str(tmp_path / "bad.csv"), *extra])
        assert exc.value.code == 2 and not (tmp_path / "bad.csv").exists()
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1
        return err[0]

    assert "--member-probabilities b=PATH" in refused(flags[0], flags[1])  # b has no model and no file
    short = tmp_path / "short.csv"
    write_probabilities(short, pd.DataFrame({"id": ["t1", "t2", "zz"], "language": "en", "p_ade": [0.5] * 3}))
    err = refused(flags[0], f"a={short}", *flags[2:])
    assert "1 id(s) of" in err and "'t3'" in err and "'zz'" in err and "short.csv" in err
    assert "no probability-file member of that name" in refused(
        *flags, "--member-probabilities", f"c={short}"
    )
    assert "expected NAME=PATH" in refused("--member-probabilities", "a")


def test_decision_options_say_what_they_do():
    import typer

    from medsift.cli import app

    commands = typer.main.get_command(app).commands
    helps = {(c, p.name): p.help or "" for c in ("ensemble", "thresholds") for p in commands[c].params}
    assert "own threshold" in helps[("thresholds", "min_positives")]
    assert "Default positive" in helps[("ensemble", "tie")] and "mean_prob" in helps[("ensemble", "tie")]
    predict = {p.name: p.help or "" for p in commands["predict"].params}
    assert "matched by id" in predict["member_probabilities"]


@pytest.mark.slow
def test_an_ensemble_runs_on_onnx_and_is_served(two_runs, tmp_path: Path):
    from fastapi.testclient import TestClient

    from medsift.ensemble.members import MemberPredictor
    from medsift.serve import create_app

    out = tmp_path / "ens"
    main(["ensemble", *map(str, two_runs), "--per-seed", "-o", str(out), "--method", "weighted"])
    test = _fa_test_file(tmp_path / "test.csv")
    for run in two_runs:
        main(["export", str(run), "-q"])
    subs = {}
    for backend in ("torch", "onnx"):
        result = predict_file(
            out,
            test,
            tmp_path / f"{backend}.csv",
            probabilities=tmp_path / f"p-{backend}.csv",
            backend=backend,
        )
        subs[backend] = result
    torch_p = read_probabilities(tmp_path / "p-torch.csv")["p_ade"]
    onnx_p = read_probabilities(tmp_path / "p-onnx.csv")["p_ade"]
    np.testing.assert_allclose(onnx_p, torch_p, atol=1e-4)  # fp32 ONNX members
    # One predictor loads each member run once and scores many batches.
    predictor = MemberPredictor(quiet=True)
    texts = pd.read_csv(test)["text"].tolist()
    from medsift.ensemble.ade import ensemble_probabilities

    first = ensemble_probabilities(out, texts, ["en"] * len(texts), predictor=predictor)[0]
    loaded = dict(predictor._loaded)
    again = ensemble_probabilities(out, texts[:3], ["en"] * 3, predictor=predictor)[0]
    assert predictor._loaded == loaded and len(loaded) == 2
    np.testing.assert_allclose(again, first[:3], atol=1e-6)
    # The service answers /v1/ade with the ensemble's probabilities and thresholds.
    with TestClient(create_app(out, max_batch=8)) as client:
        assert client.get("/health").json()["kind"] == "ade-ensemble"
        info = client.get("/v1/model").json()
        assert info["members"] == ["r1", "r2@seed8", "r2@seed9"] and "fallback" in info["thresholds"]
        frame = pd.read_csv(test).head(4)
        body = {"texts": frame["text"].tolist(), "languages": frame["language"].tolist()}
        results = client.post("/v1/ade", json=body).json()["results"]
    np.testing.assert_allclose([r["p_ade"] for r in results], torch_p[:4], atol=1e-6)
