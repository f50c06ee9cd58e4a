"""Silent fallbacks made visible: a temperature stuck at its bound, int8 calibration on the probe posts, and
``compare`` marking a best run when the runs were scored on different rows."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from medsift.cli import main
from test_report import make_run


def test_a_temperature_at_its_bound_is_warned_about():
    from medsift.decision.calibration import fit_temperature, temperature_warning

    y = np.ones(50)
    wrong = np.full(50, 0.02)  # every positive scored as a confident negative: the NLL falls as T grows
    stuck = fit_temperature(y, wrong)
    assert stuck > 99
    assert "stopped at the bound" in temperature_warning(stuck, "xlmr")
    # already calibrated: 7 of 10 rows at p = 0.7 are positive, 3 of 10 at p = 0.3 (T close to 1)
    y = np.r_[np.ones(7), np.zeros(3), np.ones(3), np.zeros(7)]
    fine = fit_temperature(y, np.r_[np.full(10, 0.7), np.full(10, 0.3)])
    assert 0.9 < fine < 1.1 and temperature_warning(fine, "xlmr") is None


def test_int8_calibration_reads_sample_training_files_not_the_probes():
    from medsift.engine.onnx import calibration_posts

    config = SimpleNamespace(data=SimpleNamespace(train=["sample:ade_sample_train.csv"]))
    posts, source = calibration_posts(config, None, lambda f: ["a post"] * 3, ["probe"])
    assert posts == ["a post"] * 3 and "ade_sample_train.csv" in source
    gone = SimpleNamespace(data=SimpleNamespace(train=["/nowhere/train.csv"]))
    assert "built-in probe posts" in calibration_posts(gone, None, lambda f: [], ["probe"])[1]


def test_export_warns_when_int8_calibration_fell_back_to_probe_posts(tmp_path: Path):
    from medsift.cli.export import _probe_fallbacks

    for seed, source in ((1, "6 posts from built-in probe posts"), (2, "40 posts from train.csv")):
        folder = tmp_path / f"seed-{seed}" / "onnx"
        folder.mkdir(parents=True)
        (folder / "export.json").write_text(json.dumps({"int8": {"calibration": source}}))
    notes = _probe_fallbacks(tmp_path)
    assert len(notes) == 1 and notes[0].startswith("seed-1: int8 calibration used 6 posts")


def test_compare_marks_no_best_run_when_runs_were_scored_on_different_rows(tmp_path, capsys):
    same = [make_run(tmp_path, "alpha"), make_run(tmp_path, "beta", shift=0.1)]
    main(["compare", *map(str, same)])
    out, err = capsys.readouterr()
    assert "★" in out and "WARNING" not in err
    other = make_run(tmp_path, "gamma", shift=0.2)
    calib = other / "calib_probabilities.csv"
    pd.read_csv(calib).iloc[:-3].to_csv(calib, index=False)  # scored on fewer rows
    main(["compare", str(same[0]), str(other)])
    out, err = capsys.readouterr()
    assert "★" not in out
    assert "WARNING: the runs were scored on different rows (alpha; gamma)" in " ".join(err.split())
