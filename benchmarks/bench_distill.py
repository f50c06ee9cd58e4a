"""Benchmark: one distilled student against the 3-seed ensemble it learned from (F1 gap and cost ratio).

The teacher is the multi-seed run written by bench_ade.py (its seed average is the soft-voting ensemble of
the seeds). The student is one e5-small trained with the same recipe on the same training rows, but on the
teacher's probabilities (loss.distill_weight) as well as the gold labels. Both score the held-out rows.

    .venv/bin/python benchmarks/bench_distill.py --bench-dir runs/bench-ade
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import append_section, describe_machine

from medsift.config import load_config, parse_config, read_yaml


def _score(run_dir: Path, heldout: Path, out: Path) -> tuple[dict, float]:
    from medsift.engine.streaming import predict_file

    start = time.perf_counter()
    result = predict_file(run_dir, heldout, out, quiet=True)
    return result["scores"], time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench-dir", type=Path, default=Path("runs/bench-ade"))
    ap.add_argument("--distill-weight", type=float, default=0.8)
    args = ap.parse_args()
    teacher = args.bench_dir / "run"
    heldout = args.bench_dir / "data" / "heldout.csv"
    teacher_cfg = parse_config(read_yaml(teacher / "config.yaml"))
    student_dir = args.bench_dir / "student"
    config = load_config(
        teacher / "config.yaml",
        [
            f"seeds=[{teacher_cfg.seeds[0]}]",
            f"output_dir={student_dir}",
            f"loss.distill_weight={args.distill_weight}",
        ],
    )
    from medsift.ade.train import train

    start = time.perf_counter()
    if not (student_dir / "medsift_run.json").exists():
        train(config, quiet=True, teacher=teacher)
    train_s = time.perf_counter() - start
    t_scores, t_time = _score(teacher, heldout, args.bench_dir / "teacher_sub.csv")
    s_scores, s_time = _score(student_dir, heldout, args.bench_dir / "student_sub.csv")
    single = json.loads((teacher / "metrics.json").read_text())
    langs = sorted(set(t_scores["per_language"]) | set(s_scores["per_language"]))
    rows = "\n".join(
        f"| {lang} | {t_scores['per_language'][lang]['f1']:.3f} | {s_scores['per_language'][lang]['f1']:.3f} |"
        for lang in langs
    )
    body = f"""Machine: {describe_machine()}.
Command: `.venv/bin/python benchmarks/bench_distill.py --bench-dir {args.bench_dir}` (after bench_ade.py).

Teacher: the {len(teacher_cfg.seeds)}-seed e5-small run of the ADE benchmark (seed average = soft vote). Student: one
e5-small, same recipe and training rows, distilled with `loss.distill_weight={args.distill_weight}` (trained in
{train_s / 60:.1f} min). Both on the same held-out rows, threshold 0.5.

| language | F1 teacher ({len(teacher_cfg.seeds)} models) | F1 distilled student (1 model) |
| --- | --- | --- |
{rows}
| **pooled (without *_cadec)** | **{t_scores["f1"]:.3f}** | **{s_scores["f1"]:.3f}** |

F1 gap (student - teacher): {s_scores["f1"] - t_scores["f1"]:+.3f}. Scoring the {t_scores["support"] + sum(v["support"] for k, v in t_scores["per_language"].items() if k.endswith("_cadec"))} held-out rows took
{t_time:.1f} s for the teacher and {s_time:.1f} s for the student: cost ratio {t_time / s_time:.2f}x (model loading included).
Seeds' own validation F1: {", ".join(f"{k}: {v.get('eval_f1', float('nan')):.3f}" for k, v in single["seeds"].items())}.
"""
    append_section("Distillation: one student vs the 3-seed ensemble (offline e5-small)", body)
    print(body)


if __name__ == "__main__":
    main()
