"""Tagger ensembles: several impact-tagger runs (e.g. BIO and IO, several seeds) voting token by token.

The ensemble folder only records its members; ``medsift predict`` loads every finished seed of every member
and combines them as the first member's ``postprocess.vote`` says (:class:`medsift.impacts.predict.SpanTagger`):
a token-level majority vote, then BIO repair (see :mod:`medsift.impacts.bio`), or with ``soft`` the mean of
their probabilities (of subwords among members that share a tokenizer, of words across tokenizers).
"""

from __future__ import annotations

from pathlib import Path

from medsift.errors import MedsiftError
from medsift.runs import RunManifest, read_json, write_json

KIND = "impacts-ensemble"


def is_impacts_run(path: str | Path) -> bool:
    path = Path(path)
    if not (path / "medsift_run.json").exists():
        return False
    return RunManifest.load(path).task == "impacts"


def build_tagger_ensemble(members: list[str | Path], out_dir: str | Path) -> Path:
    """Write an ensemble run over tagger runs (or other tagger ensembles); returns its folder."""
    out_dir = Path(out_dir)
    if (out_dir / "medsift_run.json").exists():
        raise MedsiftError("a finished run is already here; choose another output folder", file=out_dir)
    resolved = []
    for member in members:
        manifest = RunManifest.load(member)
        if manifest.task != "impacts" or manifest.kind not in ("impacts-tagger", KIND):
            raise MedsiftError(
                f"a tagger ensemble takes impact-tagger runs, not '{manifest.kind}'", file=member
            )
        resolved.append(str(Path(member).resolve()))
    if len(resolved) < 2:
        raise MedsiftError("an ensemble needs at least two member runs")
    labels = {tuple(_labels(m)) for m in resolved}
    if len(labels) > 1:
        raise MedsiftError(f"members disagree on the entity types: {sorted(labels)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(
        out_dir / "ensemble.json",
        {
            "method": "the first member's postprocess.vote (hard: token vote, soft: mean probabilities)",
            "members": resolved,
        },
    )
    RunManifest(kind=KIND, task="impacts", extra={"members": resolved}).save(out_dir)
    return out_dir


def member_runs(ensemble_dir: str | Path) -> list[str]:
    return list(read_json(Path(ensemble_dir) / "ensemble.json")["members"])


def _labels(run_dir: str) -> list[str]:
    from medsift.impacts.predict import SpanTagger

    return sorted({label.split("-", 1)[-1] for label in SpanTagger.from_run(run_dir).labels if label != "O"})
