"""Benchmark: the offline ADE classifier (multilingual-e5-small) on real Task 1 data, on this machine.

Carves a held-out test split (stratified by label and language) from ../shared/data/task1, trains the
shipped CPU config with this benchmark's overrides (focal alpha 0.75, 3x positive oversampling, --max-length,
--epochs, val 15 % / calib 20 %; the printed text lists them) on a subset of the rest (3 seeds by default, val
and calib carved by the trainer), predicts the held-out rows and prints per-language and pooled F1. The run directory and the held-out file are kept so
that the decision-layer and throughput benchmarks can reuse them.

    .venv/bin/python benchmarks/bench_ade.py --out runs/bench-ade        # ~30 min on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import append_section, describe_machine

from medsift.config import load_config
from medsift.io import read_ade_files
from medsift.preprocess import stratified_split

FILES = ["train_en.csv", "train_ru.csv", "train_de.csv", "train_cadec_translated.csv"]


def build_files(
    data_dir: Path, out: Path, per_file: int, test_fraction: float, seed: int
) -> tuple[Path, Path]:
    frame = read_ade_files([data_dir / f for f in FILES], labelled=True)
    parts = stratified_split(frame, {"pool": 1 - test_fraction, "test": test_fraction}, seed=seed)
    pool = (
        parts["pool"]
        .groupby("source", group_keys=False)
        .apply(lambda g: g.sample(n=min(per_file, len(g)), random_state=seed))
    )
    test = (
        parts["test"]
        .groupby("source", group_keys=False)
        .apply(
            lambda g: g.sample(
                n=min(int(per_file * test_fraction / (1 - test_fraction)), len(g)), random_state=seed
            )
        )
    )
    out.mkdir(parents=True, exist_ok=True)
    cols = ["id", "text", "label", "origin", "type", "language", "split"]
    # ids repeat across the official files: the merged files use the unique uid as their id
    for name, part in (("pool.csv", pool), ("heldout.csv", test)):
        part.assign(id=part["uid"], label=part["label"].astype(int))[cols].to_csv(out / name, index=False)
    return out / "pool.csv", out / "heldout.csv"


def _shipped(key: str) -> object:
    """The value of a dotted key in the shipped ``ade-e5-small-cpu`` config."""
    node = load_config("ade-e5-small-cpu")
    for part in key.split("."):
        node = getattr(node, part)
    return node


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data/task1"))
    ap.add_argument("--out", type=Path, default=Path("runs/bench-ade"))
    ap.add_argument("--per-file", type=int, default=700, help="training-pool rows per official file")
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 123, 456])
    ap.add_argument("--epochs", type=float, default=2)
    ap.add_argument("--max-length", type=int, default=96)
    args = ap.parse_args()

    pool, heldout = build_files(args.data_dir, args.out / "data", args.per_file, 0.2, seed=2026)
    # This benchmark's changes to the shipped CPU config (sized for the balanced bundled sample) for the real,
    # imbalanced data; the printed text lists them next to the shipped values.
    recipe = {
        "training.num_train_epochs": args.epochs,
        "model.max_length": args.max_length,
        "data.oversample_positives": 3.0,
        "loss.focal_alpha": 0.75,
        "data.val_fraction": 0.15,
        "data.calib_fraction": 0.2,
    }
    config = load_config(
        "ade-e5-small-cpu",
        [
            f"data.train=[{pool}]",
            f"seeds={args.seeds}",
            *(f"{key}={value}" for key, value in recipe.items()),
            f"output_dir={args.out / 'run'}",
        ],
    )
    changed = ", ".join(f"`{key}` {value} (shipped {_shipped(key)})" for key, value in recipe.items())
    from medsift.ade.train import train
    from medsift.engine.streaming import predict_file

    start = time.perf_counter()
    run_dir = train(config, quiet=True)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    result = predict_file(
        run_dir,
        heldout,
        args.out / "heldout_submission.csv",
        probabilities=args.out / "heldout_probabilities.csv",
        quiet=True,
    )
    predict_s = time.perf_counter() - start
    scores = result["scores"]
    print(json.dumps(scores, indent=2))
    rows = [
        f"| {lang} | {s['support']} | {s['positives']} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} |"
        for lang, s in scores["per_language"].items()
    ]
    splits = json.loads((run_dir / "medsift_run.json").read_text())["extra"]["splits"]
    body = f"""Machine: {describe_machine()}.
Command: `.venv/bin/python benchmarks/bench_ade.py --per-file {args.per_file} --epochs {args.epochs} --seeds {" ".join(map(str, args.seeds))}`

`offline:e5-small` fine-tuned from the shipped `ade-e5-small-cpu` config (focal loss gamma 2, cosine schedule with
10 % warmup, best epoch on the val split) with this benchmark's overrides: {changed}; {len(args.seeds)} seeds averaged,
threshold 0.5.
Training pool: up to {args.per_file} rows from each of {", ".join(FILES)} (train {splits["train"]} / val {splits["val"]} /
calib {splits["calib"]} rows); held-out test: {result["rows"]} rows carved before anything else and never used for any
choice. Training took {train_s / 60:.1f} min, predicting the held-out rows {predict_s:.1f} s.

| language | rows | positives | precision | recall | F1 (positive class) |
| --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}
| **overall (pooled, without *_cadec)** | {scores["support"]} | {scores["positives"]} | {scores["precision"]:.3f} | {scores["recall"]:.3f} | **{scores["f1"]:.3f}** |

Two-class macro F1 (pooled): {scores["macro_f1_two_class"]:.3f}. For orientation, the papers report pooled F1 0.60 on the
official test with XLM-R-large on a GPU; this is a 118M-parameter model trained for minutes on a few thousand rows.
"""
    append_section("ADE classifier (offline e5-small, real Task 1 data)", body)
    print(body)


if __name__ == "__main__":
    main()
