"""Benchmark the LLM path on the offline SmolLM2-135M-Instruct alias (CPU).

ADE: first-token confidence on a held-out stratified sample of ``../shared/data/task1/``.
Spans: free against constrained decoding on held-out posts of ``../shared/data/task7/train.csv``:
strict/relaxed F1, the share of outputs that needed repair, posts per second.
Each is run zero-shot and after a few LoRA steps on a disjoint training sample. Appends a section to
``docs/benchmarks.md``. Data stays outside the repository (temporary files only).

    .venv/bin/python benchmarks/bench_llm.py --ade-n 150 --impacts-n 24 --steps 30
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _ade_data(n_eval: int, n_train: int, seed: int, tmp: Path) -> tuple[Path, Path]:
    from medsift.io import read_ade_files
    from medsift.preprocess import stratified_split

    files = sorted((SHARED / "task1").glob("train_*.csv"))
    frame = read_ade_files(files, labelled=True)
    total = len(frame)
    parts = stratified_split(
        frame, {"a": n_eval / total, "b": n_train / total, "rest": 1 - (n_eval + n_train) / total}, seed=seed
    )
    paths = []
    for name in ("a", "b"):
        path = tmp / f"ade_{name}.csv"
        part = parts[name].assign(id=parts[name]["uid"], label=parts[name]["label"].astype(float))
        part[["id", "text", "label", "origin", "type", "language", "split"]].to_csv(path, index=False)
        paths.append(path)
    return paths[0], paths[1]


def _impacts_data(n_eval: int, n_train: int, max_tokens: int, seed: int, tmp: Path) -> tuple[Path, Path]:
    from medsift.io import read_impacts

    frame = read_impacts(SHARED / "task7" / "train.csv", labelled=True)
    frame = frame[frame["tokens"].map(len) <= max_tokens].sample(frac=1.0, random_state=seed)
    paths = []
    for name, part in (("a", frame.iloc[:n_eval]), ("b", frame.iloc[n_eval : n_eval + n_train])):
        path = tmp / f"impacts_{name}.csv"
        pd.DataFrame(
            {
                "tokens": part["tokens"].map(str),
                "labels": part["tokens"].map(lambda t: str(["_"] * len(t))),
                "ID": part["uid"],
                "ner_tags": part["ner_tags"].map(str),
            }
        ).to_csv(path, index=False)
        paths.append(path)
    return paths[0], paths[1]


def _run(task: str, train_path: Path, steps: int, out: Path, decoding: dict) -> Path:
    from medsift.config import parse_config
    from medsift.llm import zero_shot_run
    from medsift.llm.train import train

    model = {"name": "offline:smollm2", "max_length": 256 if task == "ade" else 640}
    if steps == 0:
        return zero_shot_run("offline:smollm2", task, out, model_options=model, decoding=decoding)
    config = parse_config(
        {
            "task": task,
            "method": "llm",
            "model": model,
            "decoding": decoding,
            "data": {"train": [str(train_path)], "val_fraction": 0.0},
            "training": {
                "max_steps": steps,
                "per_device_train_batch_size": 4,
                "learning_rate": 2e-4,
                "logging_steps": 5,
                "use_cpu": True,
            },
        }
    )
    return train(config, run_dir=out, quiet=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ade-n", type=int, default=150)
    parser.add_argument("--impacts-n", type=int, default=24)
    parser.add_argument("--train-n", type=int, default=160)
    parser.add_argument("--max-tokens", type=int, default=80, help="only task 7 posts up to this many tokens")
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 30])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    from medsift.llm.predict import predict_file

    tmp = Path(tempfile.mkdtemp(prefix="bench-llm-"))
    ade_eval, ade_train = _ade_data(args.ade_n, args.train_n, args.seed, tmp)
    imp_eval, imp_train = _impacts_data(args.impacts_n, args.train_n, args.max_tokens, args.seed, tmp)
    decoding = {"max_new_tokens": 192, "chunk_tokens": 24}
    rows = []
    for steps in args.steps:
        run = _run("ade", ade_train, steps, tmp / f"ade-{steps}", decoding)
        s = predict_file(run, ade_eval, tmp / "ade_pred.csv", quiet=True)
        rows.append(
            {
                "task": "ade",
                "lora_steps": steps,
                "decoding": "first-token",
                "f1": s["scores"]["f1"],
                "macro_f1": s["scores"]["macro_f1_two_class"],
                "posts_per_s": s["posts_per_second"],
            }
        )
        run = _run("impacts", imp_train, steps, tmp / f"imp-{steps}", decoding)
        for constrained in (False, True):
            s = predict_file(run, imp_eval, tmp / "imp_pred.csv", constrained=constrained, quiet=True)
            rows.append(
                {
                    "task": "impacts",
                    "lora_steps": steps,
                    "decoding": "constrained" if constrained else "free",
                    "strict_f1": s["scores"]["strict"]["f1"],
                    "relaxed_f1": s["scores"]["relaxed"]["f1"],
                    "repair_share": s["repairs"]["repair_share"],
                    "repairs": s["repairs"]["counts"],
                    "posts_per_s": s["posts_per_second"],
                }
            )
        print(json.dumps(rows[-3:], default=float))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=float))
    _append(args, rows)


def _append(args, rows: list[dict]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _machine import describe_machine

    machine = f"{describe_machine()}; {torch.get_num_threads()} torch threads, cores shared with other jobs"
    lines = [
        f"\n## LLM path: SmolLM2-135M-Instruct (`offline:smollm2`), {dt.date.today()}\n",
        f"Machine: {machine}. Command: `.venv/bin/python benchmarks/bench_llm.py --ade-n {args.ade_n} "
        f"--impacts-n {args.impacts_n} --train-n {args.train_n} --steps {' '.join(map(str, args.steps))}`.",
        f"ADE: {args.ade_n} held-out posts, a stratified sample of `../shared/data/task1/` (en, de, ru, de/fr CADEC), threshold 0.5. "
        f"Spans: {args.impacts_n} held-out posts of `../shared/data/task7/train.csv` with at most {args.max_tokens} tokens, "
        f"chunks of 24 tokens, up to 192 new tokens per chunk. LoRA: r 8, alpha 32, dropout 0.1, lr 2e-4, batch 4, "
        f"trained on a disjoint sample of {args.train_n} rows; 0 steps = zero-shot.\n",
        "| task | LoRA steps | decoding | F1 (ADE pooled) / strict F1 | two-class macro F1 / relaxed F1 | outputs repaired | posts/s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if r["task"] == "ade":
            lines.append(
                f"| ade | {r['lora_steps']} | first-token | {r['f1']:.3f} | {r['macro_f1']:.3f} | — | {r['posts_per_s']:.2f} |"
            )
        else:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(r["repairs"].items())) or "none"
            lines.append(
                f"| impacts | {r['lora_steps']} | {r['decoding']} | {r['strict_f1']:.3f} | {r['relaxed_f1']:.3f} | "
                f"{r['repair_share']:.0%} ({kinds}) | {r['posts_per_s']:.2f} |"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
