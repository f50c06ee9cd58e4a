"""Plumbing shared by every trainer (ADE classifier, impact tagger, LLM): seeds, resume, best-checkpoint export.

The loop itself is ``transformers.Trainer``; medsift only decides where checkpoints go and how a killed
run picks up again: starting the same command again finds the newest ``checkpoint-*`` in the seed's
``checkpoints/`` folder and resumes from it (optimizer, scheduler, RNG states and all), so the final
metrics equal those of an uninterrupted run.

Under ``accelerate launch`` / ``torchrun`` every process runs the same code; the files medsift itself writes
into a run directory (splits, probabilities, metrics, manifest, ``DONE``, checkpoint removal) are written by
the main process only (:func:`is_main_process`), and the others wait for it at :func:`wait_for_everyone`.
The Trainer gates its own checkpoint and model saving the same way.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from medsift.io.atomic import atomic_write_text

DONE_MARKER = "DONE"


def is_main_process() -> bool:
    """True on the global main process of a distributed launch (rank 0), and always in a single process.

    Once the process group is up (the Trainer starts it), its rank answers, as for
    ``Trainer.is_world_process_zero``. Before that the launcher's environment does (``RANK``, or an MPI
    launcher's rank, read by accelerate): ``PartialState()`` alone would answer True on every CPU process,
    since accelerate only sets up a CPU (gloo) launch when asked for ``cpu`` as the Trainer does later.
    """
    import torch.distributed as dist
    from accelerate.utils import get_cpu_distributed_information

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return get_cpu_distributed_information().rank == 0


def wait_for_everyone() -> None:
    """Barrier: every process waits here until all have arrived (a no-op in a single process, and in a CPU
    launch before its first Trainer has started the process group)."""
    from accelerate import PartialState

    PartialState().wait_for_everyone()


def _is_complete(checkpoint: Path) -> bool:
    """Trainer writes ``trainer_state.json`` after the weights, optimizer and RNG states: its presence
    (and parsing) marks a checkpoint that a kill did not interrupt."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def last_checkpoint(checkpoint_dir: str | Path) -> str | None:
    """The newest complete ``checkpoint-<step>`` folder, or None.

    A run killed while saving leaves a half-written newest folder; resuming from it would fail (or load
    a torn state), so it is skipped and the previous complete checkpoint is used.
    """
    path = Path(checkpoint_dir)
    if not path.is_dir():
        return None
    steps = []
    for child in path.iterdir():
        prefix, _, step = child.name.partition("-")
        if prefix == "checkpoint" and step.isdigit() and child.is_dir() and _is_complete(child):
            steps.append((int(step), child))
    return str(max(steps)[1]) if steps else None


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 autocast is emulated
    and slower than fp32 (measured: see docs/benchmarks.md, "ADE training step on a CPU")."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def resolve_bf16(value: bool | str) -> bool:
    """``training.bf16``: ``auto`` turns bf16 on for a CUDA GPU that supports it, or a CPU with native bf16."""
    if value != "auto":
        return bool(value)
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def warn_if_oversubscribed(log: Any) -> None:
    """Warn when other processes already keep the cores busy: on a small CPU, two torch jobs with several
    threads each make every training step many times slower (measured 0.6 s -> 20 s on 2 cores)."""
    import os

    import torch

    try:
        load = os.getloadavg()[0]
        cores = len(os.sched_getaffinity(0))
    except (OSError, AttributeError):
        return
    if load >= max(1.0, cores - 0.5):
        log.warning(
            "the %d CPU cores are already busy (load average %.1f) and torch will use %d threads: training steps "
            "may be many times slower; run one training at a time, or set OMP_NUM_THREADS",
            cores,
            load,
            torch.get_num_threads(),
        )


def seed_is_done(seed_dir: str | Path) -> bool:
    return (Path(seed_dir) / DONE_MARKER).exists()


def mark_seed_done(seed_dir: str | Path, summary: dict[str, Any]) -> None:
    atomic_write_text(Path(seed_dir) / DONE_MARKER, json.dumps(summary, default=float) + "\n")


def finish_seed(seed_dir: str | Path, metrics: dict[str, Any], done: dict[str, Any] | None = None) -> None:
    """End one seed in every process: the main one writes ``metrics.json`` and the DONE marker (``done``,
    default ``metrics``); after a barrier (nobody still reads a checkpoint, every process sees DONE) it
    removes the intermediate checkpoints."""
    from medsift.io.atomic import write_json

    seed_dir = Path(seed_dir)
    main = is_main_process()
    if main:
        write_json(seed_dir / "metrics.json", metrics)
        mark_seed_done(seed_dir, metrics if done is None else done)
    wait_for_everyone()
    if main:
        remove_checkpoints(seed_dir / "checkpoints")


def train_resumable(trainer: Any, checkpoint_dir: str | Path) -> Any:
    """Run ``trainer.train``, resuming from the newest checkpoint under ``checkpoint_dir`` if there is one.

    The Trainer's progress bar stays, but its raw log dicts (``{'loss': ...}`` lines between the bar's
    redraws) and its nested evaluation bars do not: the latest loss shows in the bar, and every log entry goes
    to ``train_log.jsonl`` in the seed folder (beside ``checkpoints/``).
    """
    _tidy_progress(trainer, Path(checkpoint_dir).parent / "train_log.jsonl")
    resume = last_checkpoint(checkpoint_dir)
    return trainer.train(resume_from_checkpoint=resume)


def _tidy_progress(trainer: Any, log_file: Path) -> None:
    from transformers.trainer_callback import ProgressCallback

    class TidyProgress(ProgressCallback):
        def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
            pass  # no second bar nested under the training bar for every evaluation

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            with open(log_file, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": state.global_step, **logs}, default=str) + "\n")
            shown = {k: f"{logs[k]:.4g}" for k in ("loss", "eval_loss") if isinstance(logs.get(k), float)}
            if shown and self.training_bar is not None:
                self.training_bar.set_postfix(shown, refresh=False)

    if trainer.pop_callback(ProgressCallback) is not None:  # only when the bar is on (not --quiet)
        trainer.add_callback(TidyProgress())


def epoch_history(trainer: Any) -> list[dict[str, Any]]:
    """Per-evaluation records (epoch, step, eval metrics, the latest training loss) from the trainer's log."""
    history: list[dict[str, Any]] = []
    last_loss = None
    for entry in trainer.state.log_history:
        if "loss" in entry:
            last_loss = entry["loss"]
        if any(k.startswith("eval_") for k in entry):
            record = {k: v for k, v in entry.items() if k.startswith("eval_") or k in ("epoch", "step")}
            record["train_loss"] = last_loss
            history.append(record)
    return history


def remove_checkpoints(checkpoint_dir: str | Path) -> None:
    """Drop intermediate checkpoints once the best model is exported (they hold optimizer states: large)."""
    shutil.rmtree(checkpoint_dir, ignore_errors=True)


def export_model(trainer: Any, folder: str | Path) -> None:
    """Save the trainer's (best) model as safetensors + tokenizer, without the pickled ``training_args.bin``.

    Run folders must load without unpickling anything; the resolved config.yaml records the arguments.
    """
    folder = Path(folder)
    trainer.save_model(str(folder))  # the Trainer saves on the main process only
    if trainer.is_world_process_zero():
        (folder / "training_args.bin").unlink(missing_ok=True)


class SequentialEvalMixin:
    """Keep evaluation and prediction in dataset order.

    transformers 5 applies ``train_sampling_strategy="group_by_length"`` to the EVAL sampler too, which
    permutes ``trainer.predict``/``compute_metrics`` outputs relative to the dataset. medsift maps outputs back
    to posts and tokens by position, so evaluation must stay sequential (training still groups by length).
    Put this mixin before ``Trainer`` in the bases.
    """

    def _get_eval_sampler(self, eval_dataset):
        import torch

        if eval_dataset is None:
            return None
        if self.args.world_size <= 1:
            return torch.utils.data.SequentialSampler(eval_dataset)
        return None
