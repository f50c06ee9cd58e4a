"""The real ``medsift`` executable, given every kind of command-line and OS mistake: one line, exit code 2.

Every case runs the installed console script in a subprocess, as a user would, and asserts: exit code 2,
exactly one stderr line ``medsift: error: ...`` naming the problem (and the file, when there is one), no
traceback, nothing on stdout. None of these cases imports torch: each is refused before a model is loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MEDSIFT = Path(sys.executable).parent / "medsift"
pytestmark = pytest.mark.skipif(not MEDSIFT.exists(), reason="the medsift console script is not installed")


def medsift(*args, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run(
        [str(MEDSIFT), *map(str, args)], input=stdin, capture_output=True, timeout=120, env=env, cwd=cwd
    )


def assert_one_line(proc: subprocess.CompletedProcess, *words: str) -> str:
    err = proc.stderr.decode()
    assert "Traceback" not in err, err
    assert proc.returncode == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("medsift: error: "), err
    for word in words:
        assert word in lines[0], (word, err)
    assert proc.stdout == b""
    return lines[0]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A fake finished ADE run (manifest only: every case is refused before it is loaded), posts, gold."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "medsift_run.json").write_text(json.dumps({"kind": "ade-classifier", "task": "ade"}))
    posts = tmp_path / "posts.csv"
    posts.write_text("id,text,label,origin,type,language,split\nen_1,I felt dizzy,1,x,t,en,dev\n")
    sub = tmp_path / "sub.csv"
    sub.write_text("id,predicted_label\nen_1,1\n")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    return {"run": run, "posts": posts, "sub": sub, "file": a_file, "dir": tmp_path / "a_dir"}


USAGE = {
    "missing argument": (["predict"], ["Missing argument", "medsift predict --help"]),
    "missing option": (["predict", "RUN", "IN"], ["Missing option", "--output"]),
    "option without its value": (["score", "a", "b", "--task"], ["--task", "requires an argument"]),
    "bad choice": (["score", "--task", "nope", "a", "b"], ["--task", "nope"]),
    "not a number": (["predict", "R", "I", "-o", "o.csv", "--batch-size", "x"], ["--batch-size"]),
    "batch size 0": (["predict", "R", "I", "-o", "o.csv", "--batch-size", "0"], ["--batch-size"]),
    "min positives -1": (["thresholds", "R", "--min-positives", "-1"], ["--min-positives"]),
    "zero bins": (["histograms", "R", "--bins", "0"], ["--bins"]),
    "port out of range": (["serve", "R", "--port", "99999"], ["--port"]),
    "max batch 0": (["serve", "R", "--max-batch", "0"], ["--max-batch"]),
    "unknown option": (["predict", "--nope"], ["No such option: --nope"]),
    "unknown command": (["trian"], ["No such command", "train"]),
    "extra argument": (["configs", "extra"], ["unexpected extra argument"]),
    "negative drift": (["threshold-shift", "a", "b", "--drift", "-1"], ["--drift"]),
}


@pytest.mark.parametrize("case", sorted(USAGE))
def test_usage_errors_are_one_line_with_exit_code_2(case):
    args, words = USAGE[case]
    assert_one_line(medsift(*args), *words)


def test_version_help_and_bare_command_succeed():
    from medsift import __version__

    version = medsift("--version")
    assert version.returncode == 0 and version.stdout.decode().strip() == f"medsift {__version__}"
    assert version.stderr == b""
    for args in ([], ["--help"], ["predict", "--help"]):
        proc = medsift(*args)
        assert proc.returncode == 0 and b"Usage" in proc.stdout and proc.stderr == b"", args


def _os_cases(f: dict[str, Path], tmp_path: Path) -> dict[str, tuple[list, list[str]]]:
    run, posts, sub = f["run"], f["posts"], f["sub"]
    f["dir"].mkdir()
    return {
        "-o is a folder": (["predict", run, posts, "-o", f["dir"]], [str(f["dir"]), "folder"]),
        "-o under a file": (["predict", run, posts, "-o", f["file"] / "o.csv"], ["is a file"]),
        "-o in an unwritable place": (["predict", run, posts, "-o", "/proc/medsift/o.csv"], ["/proc"]),
        "-o is the input": (["predict", run, posts, "-o", posts], ["input file"]),
        "--probabilities is a folder": (
            ["predict", run, posts, "-o", tmp_path / "o.csv", "--probabilities", f["dir"]],
            ["folder"],
        ),
        "--probabilities is -o": (
            ["predict", run, posts, "-o", tmp_path / "o.csv", "--probabilities", tmp_path / "o.csv"],
            ["same file"],
        ),
        "score --output is a folder": (
            ["score", "--task", "ade", posts, sub, "--output", f["dir"]],
            ["folder"],
        ),
        "score --output under a file": (
            ["score", "--task", "ade", posts, sub, "--output", f["file"] / "s.json"],
            ["is a file"],
        ),
        "score --output is the gold file": (
            ["score", "--task", "ade", posts, sub, "--output", posts],
            ["input file"],
        ),
        "input is a folder": (["score", "--task", "ade", f["dir"], sub], [str(f["dir"])]),
        "input missing": (["score", "--task", "ade", tmp_path / "nope.csv", sub], ["nope.csv"]),
        "config is a folder": (["train", f["dir"]], [str(f["dir"]), "folder"]),
        "config missing": (["train", tmp_path / "nope.yaml"], ["nope.yaml"]),
        "run is not a run": (["predict", f["dir"], posts, "-o", tmp_path / "o.csv"], ["not a finished"]),
        "ensemble -o unwritable": (
            ["ensemble", run, "-o", "/proc/medsift/ens"],
            [],
        ),
    }


def test_os_errors_are_one_line_with_exit_code_2(files, tmp_path):
    for case, (args, words) in _os_cases(files, tmp_path).items():
        proc = medsift(*args)
        try:
            assert_one_line(proc, *words)
        except AssertionError as exc:
            raise AssertionError(f"{case}: {exc}") from None
    assert not list(tmp_path.glob("o.csv")) and not list(tmp_path.glob(".o.csv*"))


def test_tag_refuses_an_empty_post_and_an_empty_stdin_as_the_service_does(files):
    assert_one_line(medsift("tag", files["run"], "fine", " "), "post 2 is empty")
    assert_one_line(medsift("tag", files["run"], "-", stdin=b"\n  \n"), "<stdin>", "no posts")
    assert_one_line(medsift("tag", files["run"], "--file", "-", stdin=b""), "<stdin>")


def test_train_output_dir_that_cannot_be_made_is_one_line(files, tmp_path):
    config = tmp_path / "cfg.yaml"
    config.write_text(f"task: ade\ndata: {{train: [{files['posts']}]}}\nmodel: {{name: x}}\n")
    for output_dir in (files["file"] / "run", Path("/proc/medsift/run")):
        assert_one_line(medsift("train", config, "--output-dir", output_dir, "-q"), str(output_dir))


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        (
            "training.per_device_train_batch_size=0",
            ["per_device_train_batch_size", "greater than or equal to 1"],
        ),
        ("training.per_device_eval_batch_size=-3", ["per_device_eval_batch_size"]),
        ("training.learning_rate=-1", ["learning_rate", "greater than 0"]),
        ("training.learning_rate=0", ["learning_rate"]),
        ("training.num_train_epochs=-2", ["num_train_epochs"]),
        ("training.gradient_accumulation_steps=0", ["gradient_accumulation_steps"]),
        ("training.max_steps=-5", ["max_steps"]),
    ],
)
def test_bad_training_values_are_refused_before_a_run_folder_is_made(setting, words, files, tmp_path):
    config = tmp_path / "cfg.yaml"
    run = tmp_path / "new-run"
    config.write_text(f"task: ade\ndata: {{train: [{files['posts']}]}}\noutput_dir: {run}\n")
    assert_one_line(medsift("train", config, "--set", setting, "-q"), "cfg.yaml", *words)
    assert not run.exists()


def test_deeply_nested_json_is_one_line_naming_file_and_line(tmp_path):
    """A RecursionError in the JSON parser (100,000 nested brackets) is a user error, not a crash."""
    from medsift.errors import MedsiftError
    from medsift.io import read_texts
    from medsift.io.chunks import read_chunks

    deep = "[" * 100_000 + "]" * 100_000
    lines = tmp_path / "deep.jsonl"
    lines.write_text('{"text": "fine"}\n{"text": ' + deep + "}\n")
    array = tmp_path / "deep.json"
    array.write_text(deep)
    for path, row in ((lines, 2), (array, None)):
        with pytest.raises(MedsiftError, match="nested too deeply") as info:
            read_texts(path)
        assert info.value.row == row and info.value.file == str(path)
    with pytest.raises(MedsiftError, match="nested too deeply") as info:
        list(read_chunks(lines))
    assert info.value.row == 2


def test_deeply_nested_yaml_config_is_one_line(tmp_path):
    config = tmp_path / "deep.yaml"
    config.write_text("task: ade\nx: " + "[" * 50_000 + "]" * 50_000 + "\n")
    assert_one_line(medsift("train", config), "deep.yaml")


def test_a_shipped_config_run_from_elsewhere_names_the_missing_file_and_the_fix(tmp_path):
    """The papers' configs name ../shared/data/...: from another folder that is one line saying what to --set."""
    line = assert_one_line(
        medsift("train", "ade-xlmr-large-ce", cwd=tmp_path), "train_en.csv", "--set 'data.train="
    )
    assert "shipped config 'ade-xlmr-large-ce'" in line
    assert list(tmp_path.iterdir()) == []  # no run folder made
