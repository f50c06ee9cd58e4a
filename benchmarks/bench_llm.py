"""Benchmark the LLM path on the offline SmolLM2-135M-Instruct alias (CPU).

ADE: first-token confidence on a held-out stratified sample of ``../shared/data/task1/``.
Spans: free against constrained decoding on held-out posts of ``../shared/data/task7/train.csv``:
strict/relaxed F1, the share of outputs that needed repair, posts per second.
Each is run zero-shot and after a few LoRA steps on a disjoint training sample. Writes (replaces) its
section of ``docs/benchmarks.md`` with the exact command that reproduces it. Data stays outside the
repository (temporary files only).

    .venv/bin/python benchmarks/bench_llm.py --ade-n 150 --impacts-n 24 --steps 30
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
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


def _run(task: str, train_path: Path, steps: int, out: Path, decoding: dict, oversample: float = 1.0) -> Path:
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
            # ADE runs keep the encoders' split (val rows choose the checkpoint); no calib rows needed here
            "data": {
                "train": [str(train_path)],
                "val_fraction": 0.1,
                "calib_fraction": 0.0,
                "oversample_positives": oversample,
            }
            if task == "ade"
            else {"train": [str(train_path)], "val_fraction": 0.0},
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


TITLE = "LLM path: SmolLM2-135M-Instruct (`offline:smollm2`)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ade-n", type=int, default=150, help="held-out ADE posts scored")
    parser.add_argument("--impacts-n", type=int, default=24, help="held-out Task 7 posts tagged")
    parser.add_argument("--train-n", type=int, default=160, help="rows of the disjoint LoRA training sample")
    parser.add_argument("--max-tokens", type=int, default=80, help="only task 7 posts up to this many tokens")
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 30], help="LoRA steps (0 = zero-shot)")
    parser.add_argument(
        "--ade-oversample", type=float, default=3.0, help="each ADE training positive seen this many times"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    parser.add_argument("--note", default="", help="a paragraph written under the table (what to read in it)")
    return parser


def command_line(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The exact command that repeats this run: every flag whose value differs from its default.

    ``--note`` is left out: it is prose for the page, not something that changes the numbers.
    """
    parts = [".venv/bin/python", "benchmarks/bench_llm.py"]
    if "BENCH_THREADS" in os.environ:
        parts.insert(0, f"BENCH_THREADS={os.environ['BENCH_THREADS']}")
    for action in parser._actions:
        if not action.option_strings or action.dest in ("help", "note"):
            continue
        value = getattr(args, action.dest)
        if value == action.default:
            continue
        values = value if isinstance(value, list) else [value]
        shown = []
        for v in values:
            if isinstance(v, Path):
                v = v.resolve().relative_to(ROOT) if v.resolve().is_relative_to(ROOT) else v
            shown.append(shlex.quote(str(v)))
        parts += [action.option_strings[0], *shown]
    return " ".join(parts)


def main() -> None:
    parser = _parser()
    args = parser.parse_args()
    command = command_line(parser, args)
    print(f"command: {command}", flush=True)
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    from medsift.llm.predict import predict_file

    tmp = Path(tempfile.mkdtemp(prefix="bench-llm-"))
    ade_eval, ade_train = _ade_data(args.ade_n, args.train_n, args.seed, tmp)
    imp_eval, imp_train = _impacts_data(args.impacts_n, args.train_n, args.max_tokens, args.seed, tmp)
    decoding = {"max_new_tokens": 192, "chunk_tokens": 24}
    rows = []
    for steps in args.steps:
        run = _run("ade", ade_train, steps, tmp / f"ade-{steps}", decoding, args.ade_oversample)
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
        for mode in ("free", "constrained"):  # one run, both decodings (medsift predict --decoding)
            s = predict_file(run, imp_eval, tmp / "imp_pred.csv", decoding=mode, quiet=True)
            rows.append(
                {
                    "task": "impacts",
                    "lora_steps": steps,
                    "decoding": mode,
                    "strict_f1": s["scores"]["strict"]["overall"]["f1"],
                    "relaxed_f1": s["scores"]["relaxed"]["overall"]["f1"],
                    "repair_share": s["repairs"]["repair_share"],
                    "repairs": s["repairs"]["counts"],
                    "posts_per_s": s["posts_per_second"],
                }
            )
        print(json.dumps(rows[-3:], default=float))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=float))
    _write_section(args, command, rows)


def _write_section(args, command: str, rows: list[dict]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _machine import append_section, describe_machine

    machine = f"{describe_machine()}; {torch.get_num_threads()} torch threads, cores shared with other jobs"
    lines = [
        f"\nRun {dt.date.today()}. Machine: {machine}. Command: `{command}`.",
        f"ADE: {args.ade_n} held-out posts, a stratified sample of `../shared/data/task1/` (en, de, ru, de/fr CADEC), threshold 0.5. "
        f"Spans: {args.impacts_n} held-out posts of `../shared/data/task7/train.csv` with at most {args.max_tokens} tokens, "
        f"chunks of 24 tokens, up to 192 new tokens per chunk. LoRA: r 8, alpha 32, dropout 0.1, lr 2e-4, batch 4, "
        f"trained on a disjoint sample of {args.train_n} rows (ADE positives {args.ade_oversample:g}x); "
        "0 steps = zero-shot.\n",
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
    if args.note:
        lines += ["", args.note]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    append_section(TITLE, "\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
