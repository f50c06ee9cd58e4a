"""Cross-validation of any kind of run: ``medsift cv CONFIG --folds K``.

The training files of a config are split into K folds (stratified: ADE by label x language, impacts by the
entity types a post holds; or one fold per language with ``group_by="language"``). For each fold, the other
folds' rows are written to ``fold-<k>/train.csv`` in the official format, the config's own trainer
(:func:`medsift.kinds.trainer_for`) trains on that file alone, and the run kind's own predictor
(:func:`medsift.kinds.predict_file`) predicts the held-out rows. Nothing here knows how a kind trains or
predicts, so every kind (encoders, LLMs, new ones) is cross-validated the same way.

Layout of the cv folder::

    plan.json               config, K, grouping, seed, data hashes and every row's fold (checked on resume)
    folds.csv               row, id, fold
    fold-<k>/train.csv      the fold's training rows (official format)
    fold-<k>/test.csv       its held-out rows (official format, labelled)
    fold-<k>/run/           the trained run
    fold-<k>/predictions.csv (and probabilities.csv for ADE)
    fold-<k>/scores.json    the fold's official scores; written last, so a fold with it is finished
    oof_predictions.csv     every row predicted exactly once, out of fold, in input order (+ oof_probabilities.csv)
    cv.json                 per fold, mean and sd over folds, and pooled out-of-fold scores of every metric

Rows are keyed by their position in the merged training files, never by id (Task 7 train repeats IDs).
Killed and started again, finished folds are skipped and an unfinished one resumes through its trainer.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from medsift.errors import MedsiftError
from medsift.io.atomic import atomic_write
from medsift.runs import hash_files, read_json, write_json

SCORES_FILE = "scores.json"
GROUPINGS = ("language",)


# --- folds (pure) ---------------------------------------------------------------------------------


def stratified_folds(keys: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """Fold index (``0..folds-1``) of every row, stratified by ``keys`` (scikit-learn ``StratifiedKFold``).

    A stratum with fewer rows than folds cannot be spread over every fold; its rows are pooled into one
    "rare" stratum first (scikit-learn would only warn and spread them unevenly).
    """
    from sklearn.model_selection import StratifiedKFold

    n = len(keys)
    if folds < 2:
        raise MedsiftError(f"--folds must be at least 2, got {folds}")
    if n < folds:
        raise MedsiftError(f"{n} rows cannot fill {folds} folds")
    keys = [str(k) for k in keys]
    counts = pd.Series(keys).value_counts()
    rare = set(counts[counts < folds].index)
    pooled = np.array(["\x00rare" if k in rare else k for k in keys])
    if pd.Series(pooled).value_counts().min() < folds:  # the pooled rare rows are still too few
        pooled = np.where(pooled == "\x00rare", pd.Series(pooled).value_counts().index[0], pooled)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    assignment = np.empty(n, dtype=int)
    for k, (_, test) in enumerate(splitter.split(np.zeros(n), pooled)):
        assignment[test] = k
    return assignment


def group_folds(groups: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Leave one group out: fold ``k`` holds the rows of the k-th group in sorted order."""
    names = sorted({str(g) for g in groups})
    if len(names) < 2:
        raise MedsiftError(f"leave-one-group-out needs at least 2 groups, found {names}")
    index = {g: k for k, g in enumerate(names)}
    return np.array([index[str(g)] for g in groups], dtype=int), names


def summarise(per_fold: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean, sample sd (ddof 1; 0 for one value) and count over the folds where each metric exists."""
    names = sorted({k for fold in per_fold for k in fold})
    out = {}
    for name in names:
        values = [fold[name] for fold in per_fold if name in fold]
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        out[name] = {"mean": float(np.mean(values)), "sd": sd, "n": len(values)}
    return out


# --- the two tasks' rows ------------------------------------------------------------------------------


class _AdeRows:
    """Task 1 rows: read, stratify, write in the official format, score."""

    task = "ade"

    def __init__(self, paths: list[Path]):
        from medsift.io import read_ade_files
        from medsift.scoring.ade import scoring_language

        self.frame = read_ade_files(paths, labelled=True)
        self.frame["score_language"] = [
            scoring_language(i, lang)
            for i, lang in zip(self.frame["id"], self.frame["language"], strict=True)
        ]

    def __len__(self) -> int:
        return len(self.frame)

    def strata(self) -> list[str]:
        return [
            f"{lab}|{lang}" for lab, lang in zip(self.frame["label"], self.frame["language"], strict=True)
        ]

    def groups(self, by: str) -> list[str]:
        if by != "language":
            raise MedsiftError(f"--group-by {by!r}: choose one of {', '.join(GROUPINGS)}")
        return self.frame["language"].astype(str).tolist()

    def write(self, path: Path, rows: np.ndarray) -> None:
        """Official columns; ``id`` is the row's ``uid`` (unique across the merged files, = id when unique)."""
        part = self.frame.iloc[rows]
        out = pd.DataFrame(
            {
                "id": part["uid"],
                "text": part["text"],
                "label": part["label"].astype(int),
                "origin": part["origin"],
                "type": part["type"],
                "language": part["language"],
                "split": part["split"],
            }
        )
        with atomic_write(path) as fh:
            out.to_csv(fh, index=False, lineterminator="\n")

    def read_predictions(self, fold_dir: Path, rows: np.ndarray) -> dict[str, list]:
        from medsift.io import read_ade_submission

        uids = self.frame["uid"].iloc[rows].tolist()
        sub = read_ade_submission(fold_dir / "predictions.csv", expected_ids=uids).set_index("id")
        out: dict[str, list] = {"predicted_label": sub.loc[uids, "predicted_label"].astype(int).tolist()}
        prob_path = fold_dir / "probabilities.csv"
        if prob_path.exists():
            probs = pd.read_csv(prob_path, dtype={"id": str}, keep_default_na=False).set_index("id")
            for column in [c for c in probs.columns if c.startswith("p_ade")]:
                out[column] = probs.loc[uids, column].astype(float).tolist()
        return out

    def score(self, rows: np.ndarray, pred: dict[str, list]) -> tuple[dict[str, float], dict]:
        """Flat metrics (pooled F1/P/R, two-class macro F1, F1 per language) and the full score dict.

        Rows are named by position and carry their scoring language already, so an id can neither repeat
        nor be mistaken for a CADEC row.
        """
        from medsift.scoring.ade import score_ade

        part = self.frame.iloc[rows]
        names = [f"r{i}" for i in rows]
        gold = pd.DataFrame(
            {"id": names, "label": part["label"].astype(int), "language": part["score_language"]}
        )
        scores = score_ade(gold, pd.DataFrame({"id": names, "predicted_label": pred["predicted_label"]}))
        flat = {
            "f1": scores.f1,
            "precision": scores.precision,
            "recall": scores.recall,
            "macro_f1_two_class": scores.macro_f1_two_class,
        }
        flat.update({f"f1.{lang}": s.f1 for lang, s in scores.per_language.items()})
        return flat, scores.to_dict()

    def write_oof(self, out_dir: Path, pred: dict[str, list], fold: np.ndarray) -> None:
        from medsift.io import write_ade_submission, write_probabilities

        f = self.frame
        unique = f["id"].is_unique
        ids = f["id"] if unique else f["uid"]  # a submission needs unique ids
        write_ade_submission(out_dir / "oof_predictions.csv", ids.tolist(), pred["predicted_label"])
        if "p_ade" in pred:
            probs = pd.DataFrame({"id": f["id"], "language": f["language"], "p_ade": pred["p_ade"]})
            probs["label"] = f["label"].astype(int)
            probs["uid"] = f["uid"]
            for column in [c for c in pred if c.startswith("p_ade__")]:
                probs[column] = pred[column]
            write_probabilities(out_dir / "oof_probabilities.csv", probs)

    def ids(self) -> list[str]:
        return self.frame["id"].astype(str).tolist()


class _ImpactRows:
    """Task 7 rows: read (repeated IDs kept), stratify by the entity types of each post, write, score."""

    task = "impacts"

    def __init__(self, paths: list[Path]):
        from medsift.io import read_impacts

        frames = [read_impacts(p, labelled=True) for p in paths]
        self.frame = pd.concat(frames, ignore_index=True)

    def __len__(self) -> int:
        return len(self.frame)

    def strata(self) -> list[str]:
        from medsift.impacts.bio import entity_types

        return ["+".join(entity_types([tags])) or "none" for tags in self.frame["ner_tags"]]

    def groups(self, by: str) -> list[str]:
        raise MedsiftError(f"--group-by {by!r} applies to task ade only (impact posts have no language)")

    def write(self, path: Path, rows: np.ndarray) -> None:
        from medsift.impacts.bio import tag_class
        from medsift.io import format_list

        part = self.frame.iloc[rows]
        out = pd.DataFrame(
            {
                "tokens": [format_list(t) for t in part["tokens"]],
                "labels": [
                    format_list([c if c != "O" else "_" for c in map(tag_class, t)]) for t in part["ner_tags"]
                ],
                "ID": part["ID"],
                "ner_tags": [format_list(t) for t in part["ner_tags"]],
            }
        )
        with atomic_write(path) as fh:
            out.to_csv(fh, index=False, lineterminator="\n")

    def read_predictions(self, fold_dir: Path, rows: np.ndarray) -> dict[str, list]:
        from medsift.io import read_impacts_submission

        sub = read_impacts_submission(fold_dir / "predictions.csv")
        ids = self.frame["ID"].iloc[rows].tolist()
        if sub["ID"].tolist() != ids:  # the predictor keeps input order, one row per input row
            raise MedsiftError("predictions do not list the held-out IDs in input order", file=fold_dir)
        return {"predicted_ner_tags": sub["predicted_ner_tags"].tolist()}

    def score(self, rows: np.ndarray, pred: dict[str, list]) -> tuple[dict[str, float], dict]:
        """Flat metrics: strict and relaxed F1/P/R overall and per type; and the full score dict."""
        from medsift.scoring.impacts import ImpactScores, relaxed_scores, strict_scores

        gold = self.frame["ner_tags"].iloc[rows].tolist()
        predicted = pred["predicted_ner_tags"]
        scores = ImpactScores(strict_scores(gold, predicted), relaxed_scores(gold, predicted), len(gold))
        flat: dict[str, float] = {}
        for block in (scores.strict, scores.relaxed):
            for key in ("f1", "precision", "recall"):
                flat[f"{block.mode}.{key}"] = float(block.overall[key])
            for kind, values in block.per_type.items():
                for key in ("f1", "precision", "recall"):
                    flat[f"{block.mode}.{kind}.{key}"] = float(values[key])
        return flat, scores.to_dict()

    def write_oof(self, out_dir: Path, pred: dict[str, list], fold: np.ndarray) -> None:
        from medsift.io import write_impacts_submission

        write_impacts_submission(
            out_dir / "oof_predictions.csv",
            self.frame["ID"].tolist(),
            pred["predicted_ner_tags"],
            token_lists=self.frame["tokens"].tolist(),
        )

    def ids(self) -> list[str]:
        return self.frame["ID"].astype(str).tolist()


def _rows_for(config: Any) -> _AdeRows | _ImpactRows:
    from medsift.config import resolve_data_path

    paths = [resolve_data_path(p) for p in config.data.train]
    if config.task == "ade":
        return _AdeRows(paths)
    if config.task == "impacts":
        return _ImpactRows(paths)
    raise MedsiftError(f"cross-validation does not know task '{config.task}'")


# --- the folds' runs ----------------------------------------------------------------------------------


def _fold_config(config: Any, train_file: Path, run_dir: Path) -> Any:
    from medsift.config import parse_config

    raw = config.model_dump(mode="json")
    raw["data"]["train"] = [str(train_file)]
    raw["output_dir"] = str(run_dir)
    return parse_config(raw)


def _predict(run_dir: Path, test: Path, fold_dir: Path, quiet: bool) -> None:
    from medsift.kinds import kind_of, predict_file
    from medsift.runs import Run

    run = Run.load(run_dir)
    options: dict[str, Any] = {"quiet": quiet}
    if "probabilities" in kind_of(run).options:
        options["probabilities"] = fold_dir / "probabilities.csv"
    predict_file(run, test, fold_dir / "predictions.csv", **options)


def run_fold(
    config: Any,
    data: _AdeRows | _ImpactRows,
    fold_dir: Path,
    test_rows: np.ndarray,
    train_rows: np.ndarray,
    *,
    trainer: Callable[..., Path],
    keep_models: bool,
    quiet: bool,
) -> dict:
    """Train on ``train_rows``, predict ``test_rows``, score; a finished fold is read back, not redone."""
    if (fold_dir / SCORES_FILE).exists():
        return read_json(fold_dir / SCORES_FILE)
    fold_dir.mkdir(parents=True, exist_ok=True)
    train_file, test_file, run_dir = fold_dir / "train.csv", fold_dir / "test.csv", fold_dir / "run"
    data.write(train_file, train_rows)
    data.write(test_file, test_rows)
    start = time.monotonic()
    run_dir = Path(trainer(_fold_config(config, train_file, run_dir), run_dir=run_dir, quiet=quiet))
    train_s = time.monotonic() - start
    start = time.monotonic()
    _predict(run_dir, test_file, fold_dir, quiet)
    predict_s = time.monotonic() - start
    metrics, scores = data.score(test_rows, data.read_predictions(fold_dir, test_rows))
    if not keep_models:
        for seed_dir in run_dir.glob("seed-*"):
            shutil.rmtree(seed_dir / "model", ignore_errors=True)
    record = {
        "rows": len(test_rows),
        "train_rows": len(train_rows),
        "train_seconds": round(train_s, 1),  # of the last start only, when the fold was resumed
        "predict_seconds": round(predict_s, 1),
        "metrics": metrics,
        "scores": scores,
    }
    write_json(fold_dir / SCORES_FILE, record)
    return record


def _check_plan(out_dir: Path, plan: dict) -> None:
    path = out_dir / "plan.json"
    if path.exists():
        old = read_json(path)
        if old != plan:
            changed = [k for k in plan if old.get(k) != plan.get(k)]
            raise MedsiftError(
                f"this folder holds a cross-validation with another {', '.join(changed)}; "
                "rerun with the same config and options to resume, or choose another --output-dir",
                file=out_dir,
            )
        return
    write_json(path, plan)


def cross_validate(
    config: Any,
    out_dir: str | Path,
    *,
    folds: int = 5,
    group_by: str | None = None,
    seed: int = 13,
    keep_models: bool = True,
    quiet: bool = False,
) -> dict:
    """K-fold cross-validation of ``config`` into ``out_dir``; returns what ``cv.json`` holds.

    ``group_by="language"`` (ADE) makes one fold per language (leave one language out) instead of ``folds``
    stratified folds. ``keep_models=False`` deletes each fold's model weights once its rows are predicted.
    """
    from medsift.config import resolve_data_path
    from medsift.kinds import trainer_for

    out_dir = Path(out_dir)
    trainer = trainer_for(config.task, config.method)
    data = _rows_for(config)
    names: list[str] | None = None
    if group_by is not None:
        assignment, names = group_folds(data.groups(group_by))
        folds = len(names)
    else:
        assignment = stratified_folds(data.strata(), folds, seed)
    plan = {
        "task": config.task,
        "config": config.model_dump(mode="json"),
        "folds": folds,
        "group_by": group_by,
        "fold_names": names,
        "seed": seed,
        "data": hash_files([resolve_data_path(p) for p in config.data.train]),
        "assignment": assignment.tolist(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_plan(out_dir, plan)
    with atomic_write(out_dir / "folds.csv") as fh:
        pd.DataFrame({"row": np.arange(1, len(data) + 1), "id": data.ids(), "fold": assignment}).to_csv(
            fh, index=False, lineterminator="\n"
        )
    records = []
    positions = np.arange(len(data))
    for k in tqdm(range(folds), desc="cv folds", unit="fold", disable=quiet):
        test_rows, train_rows = positions[assignment == k], positions[assignment != k]
        records.append(
            run_fold(
                config,
                data,
                out_dir / f"fold-{k}",
                test_rows,
                train_rows,
                trainer=trainer,
                keep_models=keep_models,
                quiet=quiet,
            )
        )
    result = _gather(data, out_dir, assignment, records, names)
    result.update({"task": config.task, "folds": folds, "group_by": group_by, "seed": seed})
    write_json(out_dir / "cv.json", result)
    return result


def _gather(data, out_dir: Path, assignment: np.ndarray, records: list[dict], names) -> dict:
    """Out-of-fold predictions in input order (each row exactly once), pooled scores, mean and sd."""
    pooled: dict[str, list] = {}
    seen = np.zeros(len(data), dtype=int)
    positions = np.arange(len(data))
    for k in range(len(records)):
        rows = positions[assignment == k]
        pred = data.read_predictions(out_dir / f"fold-{k}", rows)
        for column, values in pred.items():
            if column not in pooled:
                pooled[column] = [None] * len(data)
            for row, value in zip(rows, values, strict=True):
                pooled[column][row] = value
        seen[rows] += 1
    if not (seen == 1).all():  # a broken invariant of the fold assignment, not a user error
        raise RuntimeError(f"rows predicted {sorted(set(seen.tolist()))} times out of fold, expected once")
    pooled = {c: v for c, v in pooled.items() if all(x is not None for x in v)}
    data.write_oof(out_dir, pooled, assignment)
    metrics, scores = data.score(positions, pooled)
    per_fold = [r["metrics"] for r in records]
    return {
        "rows": len(data),
        "fold_names": names,
        "fold_rows": [r["rows"] for r in records],
        "train_seconds": [r["train_seconds"] for r in records],
        "per_fold": per_fold,
        "summary": summarise(per_fold),
        "pooled": metrics,
        "pooled_scores": scores,
    }


def format_mean_sd(entry: dict[str, float]) -> str:
    sd = entry["sd"]
    return f"{entry['mean']:.3f} ± {sd:.3f}" if not math.isnan(sd) else f"{entry['mean']:.3f}"
