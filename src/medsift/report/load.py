"""Read finished run directories into one in-memory shape the report and ``compare`` work from.

Every kind of run shares ``medsift_run.json`` and ``config.yaml``; the rest depends on the kind:

- ``ade-classifier``: ``seed-N/metrics.json`` (history, best), ``{val,calib}_probabilities.csv`` (run level,
  with ``p_ade__seed<N>`` columns; the per-seed copies also carry ``uid`` and ``source``), ``splits.csv``,
  ``thresholds.json``;
- ``ade-ensemble``: ``ensemble.json`` (which rows tuned what), combined probability files, ``thresholds.json``;
- ``impacts-tagger``: ``seed-N/metrics.json`` with strict/relaxed dev scores per type;
- LLM runs (``ade-llm``, ``impacts-llm``): whatever of the above files they write.

Missing optional files leave the matching field empty; the page then says the section has no data.

A held-out labelled file joins as split ``test``: :func:`add_test_split` (ADE: a probability file) or
:func:`add_impacts_test` (impact taggers: a submission, scored strict and relaxed per type).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from medsift.decision import ThresholdPolicy
from medsift.errors import MedsiftError
from medsift.runs import ManifestFacts, RunManifest, read_json, read_thresholds

SPLITS = ("val", "calib")


@dataclass
class ImpactTest:
    """A tagger's submission on a labelled Task 7 file, with its official strict/relaxed scores."""

    gold: pd.DataFrame  # read_impacts(labelled=True)
    pred: pd.DataFrame  # read_impacts_submission
    scores: dict[str, Any]  # ImpactScores.to_dict()


@dataclass
class RunData(ManifestFacts):
    """What one run directory says about itself, loaded once."""

    name: str
    path: Path
    manifest: RunManifest
    config: dict[str, Any] = field(default_factory=dict)
    seeds: dict[int, dict[str, Any]] = field(default_factory=dict)  # seed -> metrics.json
    probabilities: dict[str, pd.DataFrame] = field(default_factory=dict)  # split -> labelled rows
    policy: ThresholdPolicy | None = None
    splits: pd.DataFrame | None = None  # splits.csv: uid,id,source,language,label,split
    ensemble: dict[str, Any] | None = None  # ensemble.json
    texts: dict[str, dict[str, str]] = field(default_factory=dict)  # split -> row key (row_keys) -> text
    impact_test: ImpactTest | None = None  # impact taggers given --test/--pred


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    if not path.exists():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _seed_metrics(run_dir: Path) -> dict[int, dict[str, Any]]:
    out = {}
    for seed_dir in sorted(run_dir.glob("seed-*")):
        metrics = seed_dir / "metrics.json"
        suffix = seed_dir.name.removeprefix("seed-")
        if metrics.exists() and suffix.lstrip("-").isdigit():
            out[int(suffix)] = read_json(metrics)
    return dict(sorted(out.items()))


def _probabilities(run_dir: Path, split: str, seeds: list[int]) -> pd.DataFrame | None:
    """The run-level probability file of ``split``, with ``uid``/``source`` from a per-seed copy when present."""
    from medsift.io import read_probabilities

    path = run_dir / f"{split}_probabilities.csv"
    if not path.exists():
        return None
    frame = read_probabilities(path)
    if "label" not in frame.columns or frame["label"].isna().any():
        return None  # the report scores labelled rows only
    frame["label"] = frame["label"].astype(int)
    frame["id"] = frame["id"].astype(str)
    for seed in seeds:
        seed_file = run_dir / f"seed-{seed}" / f"{split}_probabilities.csv"
        if seed_file.exists():
            extra = pd.read_csv(seed_file, dtype=str, keep_default_na=False)
            # Seeds write their rows in the same order as the run file (one split frame per run).
            if {"uid", "source"} <= set(extra.columns) and extra["id"].tolist() == frame["id"].tolist():
                frame["uid"] = extra["uid"].to_numpy()
                frame["source"] = extra["source"].to_numpy()
            break
    return frame


def row_keys(frame: pd.DataFrame) -> list[str]:
    """Each row's key in :attr:`RunData.texts`: ``uid`` when the frame has one (ids may repeat across merged
    training files), else ``id``."""
    return frame["uid" if "uid" in frame.columns else "id"].astype(str).tolist()


def _texts_for(frame: pd.DataFrame, *, by_uid: bool = True) -> dict[str, str]:
    """Map each row's key (:func:`row_keys`; ``id`` when not ``by_uid``) -> post text, read from the row's
    source file (missing files are skipped). Within one source file ids are unique, so (source, id) finds
    the row's own text even when two merged files share an id."""
    from medsift.io import read_ade_any

    if "source" not in frame.columns:
        return {}
    keys = pd.Series(row_keys(frame) if by_uid else frame["id"].astype(str).tolist(), index=frame.index)
    out: dict[str, str] = {}
    for source, rows in frame.groupby("source"):
        path = Path(str(source))
        if not path.exists():
            continue
        try:
            src = read_ade_any(path, labelled=None)
        except MedsiftError:
            continue
        lookup = dict(zip(src["id"].astype(str), src["text"].astype(str), strict=True))
        for key, row_id in zip(keys[rows.index], rows["id"].astype(str), strict=True):
            if row_id in lookup:
                out[key] = lookup[row_id]
    return out


def _with_sources(frame: pd.DataFrame, splits: pd.DataFrame | None, split: str) -> pd.DataFrame:
    """Add the ``source`` file of each row from ``splits.csv``, matched on ``uid`` when both have it.

    A run written before uids existed is matched on ``id`` (a repeated id then takes its first source).
    """
    if "source" in frame.columns or splits is None or not {"id", "source", "split"} <= set(splits.columns):
        return frame
    rows = splits[splits["split"] == split]
    key = "uid" if "uid" in frame.columns and "uid" in splits.columns else "id"
    rows = rows.drop_duplicates(key)
    sources = dict(zip(rows[key].astype(str), rows["source"], strict=True))
    return frame.assign(source=[sources.get(k, "") for k in frame[key].astype(str)])


def _member_texts(ensemble: dict[str, Any], split: str, *, by_uid: bool) -> dict[str, str]:
    """Ensemble rows have no source column: borrow the texts of the first member run that has them.

    ``by_uid``: the ensemble's rows carry ``uid`` (its members were matched on it), so texts are keyed by it.
    """
    for member in ensemble.get("members", []):
        path = Path(member.get("path", ""))
        if (path / "medsift_run.json").exists():
            try:
                seeds = sorted(_seed_metrics(path))
                frame = _probabilities(path, split, seeds)
                splits = pd.read_csv(path / "splits.csv", dtype=str, keep_default_na=False)
            except (MedsiftError, OSError):
                continue
            if frame is not None:
                texts = _texts_for(_with_sources(frame, splits, split), by_uid=by_uid)
                if texts:
                    return texts
    return {}


def load_run(path: str | Path, name: str | None = None) -> RunData:
    """Load a finished run directory (any kind); raises :class:`MedsiftError` for an unfinished one."""
    path = Path(path)
    manifest = RunManifest.load(path)
    run = RunData(name=name or path.name, path=path, manifest=manifest)
    run.config = _read_yaml(path / "config.yaml")
    run.seeds = _seed_metrics(path)
    if (path / "thresholds.json").exists():
        run.policy = read_thresholds(path)
    if (path / "splits.csv").exists():
        run.splits = pd.read_csv(path / "splits.csv", dtype=str, keep_default_na=False)
    if (path / "ensemble.json").exists():
        from medsift.ensemble.ade import read_spec

        run.ensemble = read_spec(path)
    if manifest.task == "ade":
        seeds = list(manifest.seeds) or sorted(run.seeds)
        for split in SPLITS:
            frame = _probabilities(path, split, seeds)
            if frame is not None:
                run.probabilities[split] = frame
                texts = _texts_for(_with_sources(frame, run.splits, split))
                if not texts and run.ensemble is not None:
                    texts = _member_texts(run.ensemble, split, by_uid="uid" in frame.columns)
                run.texts[split] = texts
    return run


def add_test_split(run: RunData, gold_path: str | Path, prob_path: str | Path) -> None:
    """Attach a held-out labelled file and its ``medsift predict --probabilities`` output as split ``test``."""
    from medsift.io import read_ade, read_probabilities

    gold = read_ade(gold_path, labelled=True)
    probs = read_probabilities(prob_path)
    gold_ids, prob_ids = gold["id"].astype(str), probs["id"].astype(str)
    missing = sorted(set(gold_ids) - set(prob_ids))
    if missing:
        raise MedsiftError(
            f"the probability file lacks {len(missing)} id(s) of the test file", file=prob_path
        )
    p = probs.assign(id=prob_ids).set_index("id").loc[gold_ids.tolist()]
    frame = pd.DataFrame(
        {
            "id": gold_ids.to_numpy(),
            "language": gold["language"].astype(str).to_numpy(),
            "label": gold["label"].astype(int).to_numpy(),
            "p_ade": p["p_ade"].to_numpy(dtype=float),
        }
    )
    for column in p.columns:
        if column.startswith("p_ade__"):
            frame[column] = p[column].to_numpy(dtype=float)
    run.probabilities["test"] = frame
    run.texts["test"] = dict(zip(gold_ids, gold["text"].astype(str), strict=True))


def add_impacts_test(run: RunData, gold_path: str | Path, pred_path: str | Path) -> None:
    """Attach a labelled Task 7 file and the run's submission on it: per-type strict and relaxed scores."""
    from medsift.io import read_impacts, read_impacts_submission
    from medsift.scoring import score_impacts

    gold = read_impacts(gold_path, labelled=True)
    pred = read_impacts_submission(pred_path)
    try:
        scores = score_impacts(gold, pred).to_dict()
    except MedsiftError as exc:  # the scorer names ids and lengths; the file is the submission
        raise MedsiftError(exc.problem, file=exc.file or pred_path, row=exc.row) from exc
    run.impact_test = ImpactTest(gold, pred, scores)


def labelled_probabilities(path: str | Path) -> tuple[Path, pd.DataFrame]:
    """Labelled probability rows of a run (its calib rows when it has them, else val) or of a probability file;
    returns the file read and its rows."""
    from medsift.io import read_probabilities

    path = Path(path)
    if path.is_dir():
        calib = path / "calib_probabilities.csv"
        path = calib if calib.is_file() else path / "val_probabilities.csv"
    frame = read_probabilities(path)
    if "label" not in frame.columns or frame["label"].isna().any():
        raise MedsiftError("every row needs a label (histograms compare positives with negatives)", file=path)
    return path, frame
