"""How batch size and workers shape CPU throughput: token budget x workers, torch and ONNX int8.

The engine's CPU defaults (``medsift.batching``: 512 tokens a batch, one single-threaded worker per
core) come from this sweep. One fine-tuned ADE run (its first seed), the same real posts for every setting,
settings interleaved over several rounds so that load from other tenants of the host falls on all of them.
Reports wall-clock posts/s and writes a section into docs/benchmarks.md.

    .venv/bin/python benchmarks/bench_batching.py --run runs/bench-ade/run --n 1000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import append_section, describe_machine
from bench_throughput import load_posts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=Path("runs/bench-ade/run"))
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data/task1"))
    ap.add_argument("--exclude", type=Path, default=Path("runs/bench-ade/data/pool.csv"))
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--budgets", type=int, nargs="+", default=[256, 512, 1024, 2048, 16384])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()

    import torch

    from medsift.ade.encode import encode_posts
    from medsift.ade.inference import positive_probabilities
    from medsift.ade.predict import AdeClassifier
    from medsift.batching import available_cores
    from medsift.engine.onnx import INT8, export_onnx, onnx_positive_probabilities, session
    from medsift.runs import RunManifest

    cores = available_cores()
    seed = RunManifest.load(args.run).seeds[0]
    if not (args.run / f"seed-{seed}" / "onnx" / INT8).exists():
        export_onnx(args.run, quantize=True, quiet=True)
    clf = AdeClassifier.from_run(args.run, device="cpu")
    model, tok = clf.models[f"seed{seed}"], clf.tokenizer
    texts = load_posts(args.data_dir, args.n, 0, args.exclude)["text"].tolist()
    m = clf.config.model
    encoded = encode_posts(tok, texts, max_length=m.max_length, policy=m.long_posts)
    int8_path = args.run / f"seed-{seed}" / "onnx" / INT8
    one_thread, all_threads = session(int8_path, threads=1), session(int8_path, threads=cores)
    pad = tok.pad_token_id or 0

    def torch_run(budget: int, workers: int):
        if workers == 1:
            torch.set_num_threads(cores)  # one worker: every core inside each operator
        positive_probabilities(model, tok, encoded, batch_tokens=budget, workers=workers)

    def onnx_run(budget: int, workers: int):
        sess = one_thread if workers > 1 else all_threads
        onnx_positive_probabilities(sess, pad, encoded, batch_tokens=budget, workers=workers)

    settings = [
        (backend, budget, workers)
        for backend in ("torch", "onnx int8")
        for budget in args.budgets
        for workers in sorted({1, cores})
    ]
    seconds = dict.fromkeys(settings, 0.0)
    for k in range(args.rounds):
        for setting in settings[k % len(settings) :] + settings[: k % len(settings)]:
            backend, budget, workers = setting
            start = time.perf_counter()
            (torch_run if backend == "torch" else onnx_run)(budget, workers)
            seconds[setting] += time.perf_counter() - start
    rows = [
        f"| {backend} | {budget:,} | {workers} x {1 if workers > 1 else cores} thread(s) | "
        f"{args.rounds * len(texts) / secs:.1f} |"
        for (backend, budget, workers), secs in seconds.items()
    ]
    body = "\n".join(
        [
            f"Machine: {describe_machine()}; {cores} cores for every setting.",
            f"Run: `{args.run}` (seed {seed}, max_length {m.max_length}); {len(texts)} held-out real posts, "
            f"{args.rounds} interleaved rounds.",
            "",
            "| backend | tokens per batch | workers x threads | posts/s |",
            "| --- | ---: | --- | ---: |",
            *rows,
            "",
            f"Reproduce: `.venv/bin/python benchmarks/bench_batching.py --run {args.run} --n {args.n}`",
        ]
    )
    print(body)
    if not args.no_docs:
        append_section("CPU batching: token budget and workers", body)


if __name__ == "__main__":
    main()
