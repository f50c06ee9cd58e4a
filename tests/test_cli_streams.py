"""``-`` for standard input and output, and run folders: lock, ``--overwrite``, no half-made folder left.

``cat posts.csv | medsift predict RUN - -o - -q`` must give one row per input on stdout and nothing on stderr.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from medsift.cli import main
from test_ade import make_ade_csv, tiny_config

MEDSIFT = Path(sys.executable).parent / "medsift"


@pytest.fixture(scope="module")
def ade_run(tiny_bert: Path, tmp_path_factory) -> Path:
    from medsift.ade.train import train

    tmp = tmp_path_factory.mktemp("streams")
    cfg = tiny_config(
        tiny_bert, make_ade_csv(tmp / "train.csv"), tmp / "run", training={"num_train_epochs": 1}
    )
    return train(cfg, quiet=True)


def run_main(args, capfd, stdin: bytes | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    capfd.readouterr()
    code = 0
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capfd.readouterr()
    return code, out, err


POSTS = "id,text,origin,type,language,split\nen_1,I got a rash,x,t,en,test\nen_2, ,x,t,en,test\nja_3,頭痛がひどい,x,t,ja,test\n"


def test_predict_reads_stdin_and_writes_stdout_quietly(ade_run, tmp_path, capfd, monkeypatch):
    code, out, err = run_main(["predict", ade_run, "-", "-o", "-", "-q"], capfd, POSTS.encode(), monkeypatch)
    assert code == 0 and err == "", err
    sub = pd.read_csv(io.StringIO(out), dtype=str)
    assert sub.columns.tolist() == ["id", "predicted_label"]
    assert sub["id"].tolist() == ["en_1", "en_2", "ja_3"]  # one row per input, the blank post included
    # the same rows as from the file
    src = tmp_path / "posts.csv"
    src.write_text(POSTS, encoding="utf-8")
    code, _, _ = run_main(["predict", ade_run, src, "-o", tmp_path / "o.csv", "-q"], capfd)
    assert code == 0 and (tmp_path / "o.csv").read_text(encoding="utf-8") == out


def test_predict_stdin_json_lines_and_notes_go_to_stderr(ade_run, tmp_path, capfd, monkeypatch):
    lines = '{"id": "a", "text": "I got a rash"}\n{"id": "b", "text": "  "}\n'
    code, out, err = run_main(["predict", ade_run, "-", "-o", "-"], capfd, lines.encode(), monkeypatch)
    assert code == 0, err
    assert pd.read_csv(io.StringIO(out), dtype=str)["id"].tolist() == ["a", "b"]
    assert "wrote standard output (2 rows)" in err and "1 blank post(s)" in err


def test_a_bad_stdin_row_is_named_as_stdin(ade_run, capfd, monkeypatch):
    bad = "id,text\n1,fine\n1,again\n"
    code, out, err = run_main(["predict", ade_run, "-", "-o", "-", "-q"], capfd, bad.encode(), monkeypatch)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "medsift: error: <stdin>: row 2: duplicate id '1' (rows 1 and 2); ids must be unique within a file"
    ]


@pytest.mark.slow  # imports torch in the child
def test_console_script_stdin_to_stdout_one_row_per_input_nothing_on_stderr(ade_run, tmp_path):
    src = tmp_path / "posts.csv"
    src.write_text(POSTS, encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = f"cat {src} | {MEDSIFT} predict {ade_run} - -o - -q"
    proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert pd.read_csv(io.StringIO(proc.stdout), dtype=str)["id"].tolist() == ["en_1", "en_2", "ja_3"]


# --- run folders -----------------------------------------------------------------------------------


def _config(tmp_path: Path, tiny_bert: Path, train: Path, run: Path) -> Path:
    cfg = {
        "task": "ade",
        "model": {"name": str(tiny_bert), "max_length": 32},
        "data": {"train": [str(train)], "val_fraction": 0.2, "calib_fraction": 0.2},
        "training": {"num_train_epochs": 1, "use_cpu": True},
        "seeds": [1],
        "output_dir": str(run),
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def test_a_second_train_on_a_locked_run_folder_refuses_naming_the_first(tiny_bert, tmp_path, capfd):
    from medsift.runs import run_lock

    run = tmp_path / "run"
    cfg = _config(tmp_path, tiny_bert, make_ade_csv(tmp_path / "train.csv"), run)
    with run_lock(run):
        code, _, err = run_main(["train", cfg, "-q"], capfd)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "another medsift command is writing this run" in err and f"pid {os.getpid()}" in err


def test_a_failed_start_leaves_no_folder_and_the_retry_trains(tiny_bert, tmp_path, capfd):
    run = tmp_path / "run"
    bad = tmp_path / "bad.csv"
    bad.write_text("id,text,label\n1,fine,yes\n", encoding="utf-8")
    code, _, err = run_main(["train", _config(tmp_path, tiny_bert, bad, run), "-q"], capfd)
    assert code == 2 and "label is 'yes'" in err
    assert not run.exists()  # no half-made folder (a config.yaml in it would refuse the fixed retry)
    good = make_ade_csv(tmp_path / "train.csv")
    code, _, err = run_main(["train", _config(tmp_path, tiny_bert, good, run), "-q"], capfd)
    assert code == 0, err
    assert (run / "medsift_run.json").exists()


def test_overwrite_retrains_a_finished_run_but_never_empties_a_foreign_folder(tiny_bert, tmp_path, capfd):
    run = tmp_path / "run"
    cfg = _config(tmp_path, tiny_bert, make_ade_csv(tmp_path / "train.csv"), run)
    assert run_main(["train", cfg, "-q"], capfd)[0] == 0
    code, _, err = run_main(["train", cfg, "-q"], capfd)
    assert code == 2 and "already finished" in err
    (run / "seed-1" / "marker").write_text("old")
    code, _, err = run_main(["train", cfg, "-q", "--overwrite"], capfd)
    assert code == 0, err
    assert (run / "medsift_run.json").exists() and not (run / "seed-1" / "marker").exists()
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"\xff\xd8")
    code, _, err = run_main(["train", cfg, "-q", "--overwrite", "--output-dir", foreign], capfd)
    assert code == 2 and "holds no medsift run" in err
    assert (foreign / "holiday.jpg").exists()


def test_classifier_runs_report_rows_that_used_the_fallback_threshold(ade_run, tmp_path, capfd):
    import shutil

    run = tmp_path / "per-language"
    shutil.copytree(ade_run, run)
    code, _, err = run_main(["thresholds", run, "--mode", "per_language", "--min-positives", "1"], capfd)
    assert code == 0, err
    posts = tmp_path / "posts.csv"
    posts.write_text(
        "id,text,language\n1,dard daram,fa\n2,I got a rash,en\n3,sar dard,fa\n", encoding="utf-8"
    )
    code, _, err = run_main(["predict", run, posts, "-o", tmp_path / "o.csv"], capfd)
    assert code == 0, err
    assert "2 rows of group(s) fa have no tuned threshold of their own and used the fallback" in err


def test_every_finished_run_carries_a_model_card(ade_run, tmp_path, capfd):
    import shutil

    from medsift.runs import RunManifest

    card = (ade_run / "README.md").read_text(encoding="utf-8")
    manifest = RunManifest.load(ade_run)
    for path, digest in manifest.data.items():
        assert f"| `{Path(path).name}` | `{digest}` |" in card
    for heading in ("## Intended use", "## Training data", "## Scores", "## Thresholds", "## Limits"):
        assert heading in card
    assert "| all |" in card and str(ade_run.parent) not in card
    run = tmp_path / "retuned"
    shutil.copytree(ade_run, run)
    assert run_main(["thresholds", run, "--mode", "per_language", "--min-positives", "1"], capfd)[0] == 0
    assert "Mode `per_language`" in (run / "README.md").read_text(encoding="utf-8")


def test_a_tagger_reads_plain_text_posts_from_stdin(tiny_bert, tmp_path, capfd, monkeypatch):
    from test_impacts_model import POSTS, _write_csv
    from test_reliability_cli_impacts import _impacts_config

    assert (
        run_main(
            [
                "train",
                _impacts_config(tmp_path, tiny_bert, [_write_csv(tmp_path / "t.csv", POSTS * 2)]),
                "-q",
            ],
            capfd,
        )[0]
        == 0
    )
    text = "I overdosed last night\nlost my job again\n"
    code, out, err = run_main(
        ["predict", tmp_path / "run", "-", "-o", "-", "-q"], capfd, text.encode(), monkeypatch
    )
    assert code == 0 and err == "", err
    posts = tmp_path / "posts.txt"
    posts.write_text(text, encoding="utf-8")
    assert run_main(["predict", tmp_path / "run", posts, "-o", tmp_path / "o.csv", "-q"], capfd)[0] == 0
    assert (tmp_path / "o.csv").read_text(encoding="utf-8") == out
