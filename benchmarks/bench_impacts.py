"""Benchmark the impact tagger offline: BIO vs IO on the official Task 7 train file, CPU only.

Trains the shipped ``impacts-minilm-cpu`` config on ``../shared/data/task7/train.csv`` with a held-out split
carved from it, scores strict/relaxed F1 on the held-out posts, tags the unlabelled official test file
(asserting exactly one tag per input token on every row), measures tokens/second, and appends a section to
``docs/benchmarks.md``.

    .venv/bin/python benchmarks/bench_impacts.py [--epochs 2] [--max-train-rows N] [--schemes bio io]

Long: run it in the background (``nohup ... &``); it uses one thread by default because the machine is shared.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import append_section  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "task7"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(x.split()[1])
            for x in Path("/proc/meminfo").read_text().splitlines()
            if x.startswith("MemTotal")
        )
        ram = f"{mem_kb / 1024**2:.1f} GiB RAM"
    except (OSError, StopIteration):
        ram = "unknown RAM"
    return f"{os.cpu_count()} cores (nproc), {cpu}, {ram}, Python {platform.python_version()}"


def run_scheme(scheme: str, args: argparse.Namespace) -> dict:
    from medsift.config import load_config
    from medsift.engine.tagger_stream import predict_file
    from medsift.impacts.train import train
    from medsift.io import read_impacts, read_impacts_submission
    from medsift.runs import read_json

    overrides = [
        f"scheme={scheme}",
        f"data.train=[{DATA / 'train.csv'}]",
        f"data.val_fraction={args.val_fraction}",
    ]
    if args.epochs is not None:
        overrides.append(f"training.num_train_epochs={args.epochs}")
    if args.max_train_rows:
        overrides.append(f"data.max_train_rows={args.max_train_rows}")
    config = load_config("impacts-minilm-cpu", overrides)
    run_dir = Path(args.out) / scheme
    t0 = time.perf_counter()
    train(config, run_dir=run_dir, quiet=True)
    train_s = time.perf_counter() - t0
    seed_dir = run_dir / f"seed-{config.seeds[0]}"
    metrics = read_json(seed_dir / "metrics.json")

    test = read_impacts(DATA / "test_unlabeled.csv", labelled=False)
    n_tokens = sum(len(t) for t in test["tokens"])
    t0 = time.perf_counter()
    predict_file(
        run_dir, DATA / "test_unlabeled.csv", run_dir / "test_submission.csv", batch_size=32, quiet=True
    )
    predict_s = time.perf_counter() - t0
    sub = read_impacts_submission(run_dir / "test_submission.csv")
    assert len(sub) == len(test) == 578, (len(sub), len(test))
    assert list(sub["ID"]) == list(test["ID"])
    lengths = [len(t) for t in sub["predicted_ner_tags"]]
    assert lengths == [len(t) for t in test["tokens"]], "a test row lost or gained a tag"
    return {
        "scheme": scheme,
        "strict": metrics["dev"]["strict"]["overall"],
        "relaxed": metrics["dev"]["relaxed"]["overall"],
        "dev_posts": metrics["dev_posts"],
        "train_windows": metrics["train_windows"],
        "train_s": train_s,
        "predict_s": predict_s,
        "test_tokens": n_tokens,
        "test_rows": len(sub),
        "max_len": max(lengths),
        "config": config,
    }


def report(results: list[dict], args: argparse.Namespace, total_s: float) -> str:
    c = results[0]["config"]
    lines = [
        f"Measured {dt.date.today().isoformat()}.",
        "",
        f"- Machine: {machine()}; torch threads for training: {args.threads}; prediction: one worker per core.",
        f"- Model `{c.model.name}` (all-MiniLM-L6-v2), max_length {c.model.max_length}, stride {c.model.stride}, "
        f"{c.training.num_train_epochs:g} epoch(s), lr {c.training.learning_rate}, batch {c.training.per_device_train_batch_size}, "
        f"label smoothing {c.training.label_smoothing_factor}, seed {c.seeds[0]}.",
        f"- Data: `../shared/data/task7/train.csv` (842 posts); held-out split {args.val_fraction:.0%} "
        f"(seed {c.data.seed}) = {results[0]['dev_posts']} posts, never trained on"
        + (f"; training capped at {args.max_train_rows} posts" if args.max_train_rows else "")
        + ". Scores are post-level on the held-out posts (windows merged), as the official scorer computes them.",
        f"- Test: `test_unlabeled.csv`, {results[0]['test_rows']} rows, {results[0]['test_tokens']:,} tokens "
        f"(longest {results[0]['max_len']:,}): every row got exactly one tag per input token.",
        "",
        "| scheme | strict P | strict R | strict F1 | relaxed P | relaxed R | relaxed F1 | train s | test tokens/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        s, x = r["strict"], r["relaxed"]
        lines.append(
            f"| {r['scheme']} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {x['precision']:.3f} | "
            f"{x['recall']:.3f} | {x['f1']:.3f} | {r['train_s']:.0f} | {r['test_tokens'] / r['predict_s']:,.0f} |"
        )
    lines += [
        "",
        "The held-out split is small, so differences of a few points are within noise; train s includes the "
        "per-epoch validation; test tokens/s is the whole prediction path (windowing included). "
        f"Total wall time {total_s / 60:.1f} min. Reference (different data split, GPU, DeBERTa-large): strict "
        "0.488 / relaxed 0.617 (BIO, dev). Reproduce: `.venv/bin/python benchmarks/bench_impacts.py`.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=None, help="default: the shipped config's")
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--max-train-rows", type=int, default=None)
    parser.add_argument("--schemes", nargs="+", default=["bio", "io"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench-impacts"))
    parser.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    results = [run_scheme(s, args) for s in args.schemes]
    text = report(results, args, time.perf_counter() - t0)
    # Replaces its own section of the file; the other benchmarks keep theirs.
    append_section("Task 7 impact tagger: BIO vs IO, offline MiniLM on CPU", text, args.doc)
    print(text)


if __name__ == "__main__":
    main()
