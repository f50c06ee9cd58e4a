"""The trainer skeleton every kind shares: what happens around each kind's own training of one seed.

1. :func:`start_run`: a run folder holds one config. A finished run is refused; a run of the same config is
   resumed; a run of a *different* config is refused; the main process saves the
   resolved config (every default filled in) before anything else.
2. :func:`train_seeds`: the kind's own files first (``start``, main process only), a barrier, then each seed in
   turn: a seed with a ``DONE`` marker is read back, the others are trained by the kind's ``train_seed``; then
   the run-level files (``finish``, main process only; it writes the manifest last) and a final barrier, so the
   run is complete for every process of a distributed launch when training returns.

A kind keeps only what is its own: its data, its ``train_seed`` and its run-level files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from medsift.errors import MedsiftError
from medsift.io.atomic import read_json
from medsift.runs import MANIFEST, save_resolved_config
from medsift.training import is_main_process, seed_is_done, wait_for_everyone


def start_run(run_dir: Path, config: Any, *, write: bool | None = None, finished_ok: bool = False) -> bool:
    """Refuse a finished run and a run of a different config; save ``config`` (main process). Returns whether
    the run is already finished (only with ``finished_ok``: the tagger and LLM trainers hand back a finished
    run of the same config unchanged, as they always have; the ADE classifier and ensemble trainers refuse it).

    Every process checks; only the main one (``write``, default: this is the main process) saves the config.
    """
    import yaml

    finished = (run_dir / MANIFEST).exists()
    if finished and not finished_ok:
        raise MedsiftError(
            "this run is already finished; choose another output_dir (or delete it)", file=run_dir
        )
    saved = run_dir / "config.yaml"
    if saved.exists():
        previous = yaml.safe_load(saved.read_text(encoding="utf-8"))
        if previous != config.model_dump(mode="json"):
            raise MedsiftError(
                "an unfinished run of a DIFFERENT config is here; resume it with its own config.yaml or choose "
                "another output_dir",
                file=run_dir,
            )
    if finished:
        return True
    if is_main_process() if write is None else write:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_resolved_config(run_dir, config)
    return False


def _metrics(seed_dir: Path) -> dict[str, Any]:
    return read_json(seed_dir / "metrics.json")


def train_seeds(
    run_dir: Path,
    seeds: list[int],
    train_seed: Callable[[int, Path], dict[str, Any]],
    finish: Callable[[list[dict[str, Any]]], None],
    *,
    start: Callable[[], None] | None = None,
    done_summary: Callable[[Path], dict[str, Any]] = _metrics,
) -> Path:
    """Train every seed of a run started with :func:`start_run`; returns ``run_dir``.

    ``train_seed(seed, seed_dir)`` trains one unfinished seed and returns its summary; a finished one (``DONE``)
    gives ``done_summary(seed_dir)`` (default: its ``metrics.json``). ``finish(summaries)`` writes the run-level
    files, the manifest last.
    """
    main = is_main_process()
    if main and start is not None:
        start()
    wait_for_everyone()
    summaries = []
    for seed in seeds:
        seed_dir = run_dir / f"seed-{seed}"
        summaries.append(done_summary(seed_dir) if seed_is_done(seed_dir) else train_seed(seed, seed_dir))
    if main:
        finish(summaries)
    wait_for_everyone()  # the run is complete for every process when training returns
    return run_dir
