"""Kill-and-resume with a real SIGKILL: the restarted command reaches the same final metrics.

``medsift train cfg.yaml`` runs in a subprocess; once a checkpoint folder appears it is killed with SIGKILL
(no clean-up code runs), then the same command is started again and must finish with metrics and validation
probabilities equal to an uninterrupted run's (CPU, fixed seeds).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from medsift.training import last_checkpoint

MEDSIFT = Path(sys.executable).parent / "medsift"
SEEDS = [7, 8]
# Keys of an evaluation record that measure time, not the model.
TIMING = ("runtime", "per_second")


def _config(folder: Path, model: Path, train_csv: Path) -> Path:
    cfg = {
        "task": "ade",
        "model": {"name": str(model), "max_length": 32},
        "data": {"train": [str(train_csv)], "val_fraction": 0.25, "calib_fraction": 0.2},
        "loss": {"name": "ce"},
        "training": {
            "learning_rate": 1e-2,
            "per_device_train_batch_size": 8,
            "num_train_epochs": 4,
            "logging_steps": 1,
            "use_cpu": True,
            "save_total_limit": None,
        },
        "seeds": SEEDS,
        "output_dir": str(folder / "run"),
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_VERBOSITY": "error",
        "OMP_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
    }


def _train(cfg: Path) -> float:
    start = time.monotonic()
    proc = subprocess.run(
        [str(MEDSIFT), "train", str(cfg), "-q"], capture_output=True, text=True, env=_env(), timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return time.monotonic() - start


def _train_and_kill(cfg: Path, ready) -> float:
    """Start training, SIGKILL it as soon as ``ready()`` is true; return the seconds it ran."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [str(MEDSIFT), "train", str(cfg), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    try:
        while proc.poll() is None and not ready():
            time.sleep(0.02)
        assert proc.poll() is None, (
            "training finished before the kill point: " + proc.stderr.read().decode()[-2000:]
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return time.monotonic() - start


def _checkpoints(run: Path, seed: int) -> list[Path]:
    return list((run / f"seed-{seed}" / "checkpoints").glob("checkpoint-*"))


def _model_metrics(record: dict) -> dict:
    return {k: v for k, v in record.items() if not any(t in k for t in TIMING)}


def _assert_same_results(run: Path, reference: Path) -> None:
    for seed in SEEDS:
        got = json.loads((run / f"seed-{seed}" / "metrics.json").read_text())
        want = json.loads((reference / f"seed-{seed}" / "metrics.json").read_text())
        a, b = _model_metrics(got["best"]), _model_metrics(want["best"])
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], abs=1e-6), key
        assert [h["step"] for h in got["history"]] == [h["step"] for h in want["history"]]
        for h_got, h_want in zip(got["history"], want["history"], strict=True):
            assert h_got["eval_loss"] == pytest.approx(h_want["eval_loss"], abs=1e-6)
        assert Path(got["best_checkpoint"]).name == Path(want["best_checkpoint"]).name
    import pandas as pd

    for name in ("val_probabilities.csv", "calib_probabilities.csv"):
        got, want = pd.read_csv(run / name), pd.read_csv(reference / name)
        assert got["id"].tolist() == want["id"].tolist()
        for column in [c for c in want.columns if c.startswith("p_ade")]:
            np.testing.assert_allclose(got[column].to_numpy(), want[column].to_numpy(), atol=1e-6)


@pytest.fixture(scope="module")
def train_csv(tmp_path_factory) -> Path:
    from test_ade import make_ade_csv

    return make_ade_csv(tmp_path_factory.mktemp("data") / "train.csv", n=48)


@pytest.fixture(scope="module")
def reference(tiny_bert: Path, train_csv: Path, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("uninterrupted")
    seconds = _train(_config(folder, tiny_bert, train_csv))
    print(f"\n[timing] uninterrupted 2-seed run: {seconds:.1f} s")
    return folder / "run"


def test_newest_incomplete_checkpoint_is_skipped(tmp_path: Path):
    """A kill while a checkpoint is written leaves a folder without trainer_state.json: resume skips it."""
    for step, complete in ((3, True), (6, True), (9, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-12").mkdir()
    (tmp_path / "checkpoint-12" / "trainer_state.json").write_text('{"global_st')  # torn write
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-6")
    assert last_checkpoint(tmp_path / "missing") is None


@pytest.mark.slow
@pytest.mark.skipif(not MEDSIFT.exists(), reason="the medsift console script is not installed")
def test_kill_at_first_checkpoint_then_resume(tiny_bert: Path, train_csv: Path, reference: Path, tmp_path):
    cfg = _config(tmp_path, tiny_bert, train_csv)
    run = tmp_path / "run"
    killed_after = _train_and_kill(cfg, lambda: bool(_checkpoints(run, SEEDS[0])))
    assert not (run / "medsift_run.json").exists() and not (run / f"seed-{SEEDS[0]}" / "DONE").exists()
    resumed = _train(cfg)
    print(
        f"\n[timing] killed after {killed_after:.1f} s (first checkpoint of seed {SEEDS[0]}); resumed in {resumed:.1f} s"
    )
    _assert_same_results(run, reference)


@pytest.mark.slow
@pytest.mark.skipif(not MEDSIFT.exists(), reason="the medsift console script is not installed")
def test_kill_during_second_seed_then_resume(tiny_bert: Path, train_csv: Path, reference: Path, tmp_path):
    cfg = _config(tmp_path, tiny_bert, train_csv)
    run = tmp_path / "run"
    first, second = SEEDS

    def ready() -> bool:  # seed 1 finished, seed 2 has at least two checkpoints
        return (run / f"seed-{first}" / "DONE").exists() and len(_checkpoints(run, second)) >= 2

    killed_after = _train_and_kill(cfg, ready)
    done_before = (run / f"seed-{first}" / "metrics.json").stat().st_mtime_ns
    resumed = _train(cfg)
    print(
        f"\n[timing] killed after {killed_after:.1f} s (seed {second}, 2nd checkpoint); resumed in {resumed:.1f} s"
    )
    # the finished seed was not trained again
    assert (run / f"seed-{first}" / "metrics.json").stat().st_mtime_ns == done_before
    _assert_same_results(run, reference)
