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

import datetime as _dt
import hashlib
import json
import platform
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from medsift.errors import MedsiftError
from medsift.io.atomic import atomic_write_text

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


def hash_files(paths: list[str | Path]) -> dict[str, str]:
    return {str(p): file_sha256(p) for p in paths}


def save_resolved_config(run_dir: str | Path, config: Any) -> None:
    """Write the validated config with every default filled in, so the run can be repeated exactly."""
    data = config.model_dump(mode="json")
    atomic_write_text(
        Path(run_dir) / "config.yaml", yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    )


def write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=float) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
