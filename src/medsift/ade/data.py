"""Training data for the ADE classifier: merge, carve leakage-free splits, normalise, oversample.

Three disjoint groups of rows, decided once per run (``split_seed``) and saved in ``splits.csv``:

- ``train``: the only rows the model learns from (positives oversampled here and nowhere else);
- ``val``: checkpoint selection (best epoch) — never used to tune thresholds;
- ``calib``: thresholds and probability calibration (the decision layer) — never trained or selected on.

The published system that tuned thresholds and picked checkpoints on the same dev set scored 0.75 on dev and
0.60 on test; keeping ``val`` and ``calib`` apart is what prevents that optimism.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from medsift.ade.config import AdeConfig
from medsift.config import resolve_data_path
from medsift.errors import MedsiftError
from medsift.io import read_ade_any, read_ade_files
from medsift.preprocess import normalize_text, oversample_positives, stratified_split


@dataclass
class AdeSplits:
    train: pd.DataFrame  # before oversampling
    val: pd.DataFrame
    calib: pd.DataFrame  # may be empty when calib_fraction is 0 and no calib file is given
    files: list[Path]
    languages: list[str] | None = None  # a run restricted to these languages (config key ``languages``)

    def selection_rows(self) -> pd.DataFrame:
        """The val rows that choose the checkpoint: those of the run's languages when it is restricted."""
        if not self.languages:
            return self.val
        return self.val[self.val["language"].astype(str).isin(self.languages)]

    def table(self) -> pd.DataFrame:
        """One row per input row: where it went (for ``splits.csv``: the report says which rows tuned what)."""
        parts = []
        for name, frame in (("train", self.train), ("val", self.val), ("calib", self.calib)):
            parts.append(frame[["uid", "id", "source", "language", "label"]].assign(split=name))
        return pd.concat(parts, ignore_index=True)


def _subsample(frame: pd.DataFrame, rows: int | None, seed: int) -> pd.DataFrame:
    if rows is None or rows >= len(frame):
        return frame
    keep = stratified_split(frame, {"keep": rows / len(frame), "drop": 1 - rows / len(frame)}, seed=seed)
    return keep["keep"]


def load_splits(config: AdeConfig) -> AdeSplits:
    """Read the configured files and carve the val/calib groups that the config does not provide."""
    data = config.data
    files = [resolve_data_path(p) for p in data.train]
    pool = _subsample(read_ade_files(files, labelled=True), data.max_train_rows, data.split_seed)
    pool, augmented = split_augmented(pool)  # rows of `medsift augment` train only, never val or calib
    fractions = {"train": 1.0}
    for name, given, share in (
        ("val", data.dev, data.val_fraction),
        ("calib", data.calib, data.calib_fraction),
    ):
        if given is None and share > 0:
            fractions[name] = share
            fractions["train"] -= share
    parts = stratified_split(pool, fractions, seed=data.split_seed) if len(fractions) > 1 else {"train": pool}
    empty = pool.iloc[0:0]

    def given(path: str | None, name: str) -> pd.DataFrame:
        if path is None:
            return parts.get(name, empty)
        files.append(resolve_data_path(path))
        frame = read_ade_any(files[-1], labelled=True)
        return frame.assign(uid=[f"{name}:{u}" for u in frame["uid"]])

    splits = AdeSplits(parts["train"], given(data.dev, "val"), given(data.calib, "calib"), files)
    if len(augmented):  # ... and never a translation of a val or calib post (that would leak it)
        added = without_held_out_sources(augmented, pd.concat([splits.val, splits.calib]))
        splits.train = pd.concat([splits.train, added])
    if splits.val.empty:
        raise MedsiftError(
            "no validation rows: give data.dev or a val_fraction > 0 (checkpoints are chosen on them)"
        )
    languages = getattr(config, "languages", None)
    if languages:
        restrict_languages(splits, languages)
    if (splits.train["label"] == 1).sum() == 0:
        raise MedsiftError("the training rows contain no positive (label 1) example", file=files[0])
    return splits


def restrict_languages(splits: AdeSplits, languages: list[str]) -> None:
    """Keep the training rows of ``languages`` only; the val and calib rows stay whole.

    The splits are carved first, from every row, so that a restricted member scores the same val and calib rows
    as the other members of its ensemble (which ignores it on posts of other languages); its checkpoint is
    chosen on the val rows of its languages (:meth:`AdeSplits.selection_rows`).
    """
    wanted = sorted(set(languages))
    splits.languages = wanted
    splits.train = splits.train[splits.train["language"].astype(str).isin(wanted)]
    found = sorted(set(splits.train["language"].astype(str)) | set(splits.val["language"].astype(str)))
    if splits.train.empty:
        raise MedsiftError(
            f"languages {wanted}: no training row is in these languages (the files have {', '.join(found)})",
            file=splits.files[0],
        )
    if splits.selection_rows().empty:
        raise MedsiftError(
            f"languages {wanted}: no val row is in these languages to choose the checkpoint on; raise "
            "data.val_fraction or give data.dev",
            file=splits.files[0],
        )


def split_augmented(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(original rows, rows written by ``medsift augment``): the latter have a ``source_id``."""
    if "source_id" not in rows.columns:
        return rows, rows.iloc[0:0]
    added = rows["source_id"].notna() & (rows["source_id"].astype(str).str.strip() != "")
    return rows[~added], rows[added]


def without_held_out_sources(augmented: pd.DataFrame, held_out: pd.DataFrame) -> pd.DataFrame:
    """Augmented rows whose source post is not among ``held_out`` (val/calib rows, matched on id and language).

    A translation of a val or calib post in the training rows would leak that post into training; such rows are
    dropped (a source id that merely collides with a held-out id from another file is dropped too: safe).
    """
    held = set(zip(held_out["id"].astype(str), held_out["language"].astype(str), strict=True))
    keep = [
        (str(s), str(lang)) not in held
        for s, lang in zip(augmented["source_id"], augmented["source_language"], strict=True)
    ]
    return augmented[keep]


def model_texts(frame: pd.DataFrame, normalize: bool) -> list[str]:
    texts = frame["text"].astype(str).tolist()
    return [normalize_text(t) for t in texts] if normalize else texts


def training_rows(splits: AdeSplits, factor: float, seed: int) -> pd.DataFrame:
    """The rows a seed trains on: positives oversampled (training rows only, never val or calib)."""
    return oversample_positives(splits.train.reset_index(drop=True), factor, seed=seed)
