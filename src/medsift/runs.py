"""Run directories: self-describing folders that ``predict``, ``ensemble``, ``report`` and ``serve`` reload.

Layout (every kind of run shares the manifest; the rest depends on the kind)::

    RUN_DIR/
      medsift_run.json      kind, task, medsift version, created, seeds, data hashes, package versions
      config.yaml           the resolved config (all defaults filled in), re-runnable with `medsift train`
      seed-<N>/             one trained model per seed (safetensors only) + metrics.json + validation outputs
      ...

``medsift_run.json`` is written last and atomically: a folder without it is an unfinished run.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from medsift.errors import MedsiftError
from medsift.io.atomic import atomic_write_text, read_json, write_json  # noqa: F401 (part of runs API)

MANIFEST = "medsift_run.json"
_PACKAGES = (
    "medsift",
    "torch",
    "transformers",
    "tokenizers",
    "accelerate",
    "peft",
    "numpy",
    "pandas",
    "scikit-learn",
)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@dataclass
class RunManifest:
    """What a run is and how it was made."""

    kind: str  # e.g. "ade-classifier", "ade-ensemble", "impacts-tagger", "ade-llm", "impacts-llm"
    task: str  # "ade" | "impacts"
    seeds: list[int] = field(default_factory=list)
    data: dict[str, str] = field(default_factory=dict)  # path -> sha256
    packages: dict[str, str] = field(default_factory=package_versions)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    extra: dict[str, Any] = field(default_factory=dict)

    def save(self, run_dir: str | Path) -> None:
        """Write the model card (README.md), then the manifest: the manifest, written last, marks the run finished."""
        from medsift.card import write_model_card

        write_model_card(run_dir, self)
        atomic_write_text(
            Path(run_dir) / MANIFEST, json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"
        )

    @classmethod
    def load(cls, run_dir: str | Path) -> RunManifest:
        path = Path(run_dir) / MANIFEST
        if not path.exists():
            raise MedsiftError(
                f"not a finished medsift run (no {MANIFEST}); train it first or finish the interrupted run",
                file=run_dir,
            )
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, TypeError) as exc:
            raise MedsiftError(f"unreadable run manifest: {exc}", file=path) from exc


class ManifestFacts:
    """``kind`` and ``task`` read from a ``manifest`` attribute (runs and the report's view of them)."""

    manifest: RunManifest

    @property
    def kind(self) -> str:
        return self.manifest.kind

    @property
    def task(self) -> str:
        return self.manifest.task


@dataclass(frozen=True)
class Run(ManifestFacts):
    """A finished run folder, read once: its path, manifest and saved config. Loaders take this object, so a
    request does not read the same files again on its way down (:func:`medsift.kinds.load`)."""

    path: Path
    manifest: RunManifest
    config: dict[str, Any]  # config.yaml as saved (every default filled in); {} for runs without one

    @property
    def method(self) -> str | None:
        return self.config.get("method")

    @classmethod
    def load(cls, run_dir: str | Path) -> Run:
        path = Path(run_dir)
        manifest = RunManifest.load(path)
        saved = path / "config.yaml"
        config = (yaml.safe_load(saved.read_text(encoding="utf-8")) or {}) if saved.is_file() else {}
        return cls(path, manifest, config)


def read_thresholds(path: str | Path):
    """The :class:`medsift.decision.ThresholdPolicy` of a run folder (its ``thresholds.json``) or of that file."""
    from medsift.decision import ThresholdPolicy

    path = Path(path)
    file = path / "thresholds.json" if path.is_dir() else path
    if not file.is_file():
        raise MedsiftError("no thresholds.json here", file=path)
    return ThresholdPolicy.from_dict(read_json(file))


def hash_files(paths: list[str | Path]) -> dict[str, str]:
    return {str(p): file_sha256(p) for p in paths}


def save_resolved_config(run_dir: str | Path, config: Any) -> None:
    """Write the validated config with every default filled in, so the run can be repeated exactly."""
    data = config.model_dump(mode="json")
    atomic_write_text(
        Path(run_dir) / "config.yaml", yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    )


LOCK = ".medsift.lock"


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold ``RUN_DIR/.medsift.lock`` while a command writes the run: a second one refuses, naming the first.

    The lock is an ``flock`` on that file, so the kernel drops it when its process ends, even on SIGKILL: a
    killed run never leaves a stale lock. The file says who holds it (pid, host, command, start time).
    """
    import fcntl

    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise MedsiftError("exists and is not a folder; choose another output_dir", file=run_dir)
    path = run_dir / LOCK
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise MedsiftError(f"cannot create the run folder: {exc.strerror or exc}", file=run_dir) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            raise MedsiftError(
                f"another medsift command is writing this run ({holder}); wait for it to finish or choose "
                "another output_dir",
                file=run_dir,
            ) from None
        started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        note = f"pid {os.getpid()} on host {socket.gethostname()}, started {started}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, note.encode("utf-8"), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def clear_run(run_dir: str | Path) -> None:
    """Empty a run folder for ``train --overwrite``, keeping only the lock the caller holds.

    Only a folder medsift made is cleared: it must hold a run manifest, a resolved config or nothing else.
    """
    run_dir = Path(run_dir)
    entries = [p for p in run_dir.iterdir() if p.name != LOCK]
    if entries and not ((run_dir / MANIFEST).exists() or (run_dir / "config.yaml").exists()):
        raise MedsiftError(
            "--overwrite empties medsift run folders only, and this folder holds no medsift run "
            f"({len(entries)} other entries); choose another output_dir",
            file=run_dir,
        )
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def has_progress(run_dir: str | Path) -> bool:
    """Whether a run folder holds work worth resuming: a finished seed or a checkpoint."""
    run_dir = Path(run_dir)
    return any(run_dir.glob("seed-*/DONE")) or any(run_dir.glob("seed-*/checkpoint-*"))


@contextlib.contextmanager
def locked_run_dir(run_dir: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Hold the run folder's lock while training writes it (one writer at a time, named to a second one).

    ``overwrite`` empties it first. A start that fails before any seed finished or checkpointed removes the
    folder it created, so the retry (with a fixed config or data file) is not refused as a different run.
    Under ``torchrun`` / ``accelerate launch`` only the main process locks.
    """
    from medsift.training import is_main_process

    if not is_main_process():
        yield run_dir
        return
    existed = run_dir.exists()
    with run_lock(run_dir):
        if overwrite:
            clear_run(run_dir)
        try:
            yield run_dir
        except BaseException:
            if not existed and not has_progress(run_dir):
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
