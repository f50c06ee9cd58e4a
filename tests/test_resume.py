"""Kill-and-resume with a real SIGKILL: the restarted command reaches the same final metrics.

``medsift train cfg.yaml`` runs in a subprocess; once a checkpoint folder appears it is killed with SIGKILL
(no clean-up code runs), then the same command is started again and must finish with metrics and validation
probabilities equal to an uninterrupted run's (CPU, fixed seeds).

Equal results alone would not show that the run resumed (retraining from scratch gives them too), so before
the restart every logged training loss in the newest complete checkpoint's ``trainer_state.json`` is
overwritten with a sentinel. Trainer restores its log history from the checkpoint it resumes from: the
sentinel must come back in the resumed run's ``metrics.json`` history for exactly the evaluations up to that
checkpoint's global step, and nowhere after it.
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
# A training loss no real run logs (see the module docstring).
SENTINEL = 1234.5


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


def _mark_last_checkpoint(run: Path, seed: int) -> int | None:
    """Overwrite the logged training losses of the newest complete checkpoint with SENTINEL; its step."""
    last = last_checkpoint(run / f"seed-{seed}" / "checkpoints")
    if last is None:
        return None
    path = Path(last) / "trainer_state.json"
    state = json.loads(path.read_text(encoding="utf-8"))
    for entry in state["log_history"]:
        if "loss" in entry:
            entry["loss"] = SENTINEL
    path.write_text(json.dumps(state), encoding="utf-8")
    return int(state["global_step"])


def _assert_resumed_from(run: Path, seed: int, step: int | None) -> None:
    """The seed's history was restored from the checkpoint at ``step`` (None: retrained from scratch)."""
    history = json.loads((run / f"seed-{seed}" / "metrics.json").read_text())["history"]
    restored = [h["step"] for h in history if h["train_loss"] == SENTINEL]
    if step is None:  # no checkpoint was complete at the kill: starting over is the right thing
        assert restored == []
        return
    assert restored, f"seed {seed} was retrained from scratch instead of resuming from step {step}"
    assert restored == [h["step"] for h in history if h["step"] <= step]
    assert len(restored) < len(history)  # later epochs were trained after the resume


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


def test_resume_evidence_tells_resumed_from_retrained(tmp_path: Path):
    """The sentinel check itself: restored entries up to the step pass, a fresh history fails."""
    seed_dir = tmp_path / "run" / "seed-1"
    seed_dir.mkdir(parents=True)

    def history(losses):
        records = [
            {"step": s, "eval_loss": 0.5, "train_loss": v} for s, v in zip((3, 6, 9), losses, strict=True)
        ]
        (seed_dir / "metrics.json").write_text(json.dumps({"history": records}))

    history([SENTINEL, SENTINEL, 0.4])
    _assert_resumed_from(tmp_path / "run", 1, 6)
    history([0.6, 0.5, 0.4])
    with pytest.raises(AssertionError, match="retrained from scratch"):
        _assert_resumed_from(tmp_path / "run", 1, 6)
    _assert_resumed_from(tmp_path / "run", 1, None)


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
    # the kill may catch the first checkpoint half-written: then there is nothing to resume from yet
    step = _mark_last_checkpoint(run, SEEDS[0])
    resumed = _train(cfg)
    print(
        f"\n[timing] killed after {killed_after:.1f} s (first checkpoint of seed {SEEDS[0]}, complete: "
        f"{step is not None}); resumed in {resumed:.1f} s"
    )
    _assert_same_results(run, reference)
    _assert_resumed_from(run, SEEDS[0], step)


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
    step = _mark_last_checkpoint(run, second)
    assert step is not None  # of two checkpoint folders at least the older one is complete
    resumed = _train(cfg)
    print(
        f"\n[timing] killed after {killed_after:.1f} s (seed {second}, 2nd checkpoint); resumed from step "
        f"{step} in {resumed:.1f} s"
    )
    # the finished seed was not trained again
    assert (run / f"seed-{first}" / "metrics.json").stat().st_mtime_ns == done_before
    _assert_same_results(run, reference)
    _assert_resumed_from(run, second, step)
