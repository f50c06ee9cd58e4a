"""Benchmark: the ADE decision layer on a real multi-seed classifier run (from benchmarks/bench_ade.py).

For single seed, seed average, hard / soft / weighted voting of the seeds (and the seed average with temperature
calibration), each with the global 0.5 threshold and with per-language thresholds tuned on the run's calib rows
(fallback: the papers' mean rule, and the pooled optimum), prints and appends to docs/benchmarks.md the pooled
and per-language F1 on the held-out rows that bench_ade.py carved before anything else: no step (training,
checkpoint choice, weights, calibration, thresholds) ever saw them.

    .venv/bin/python benchmarks/bench_ade_decision.py --run runs/bench-ade/run \\
        --heldout runs/bench-ade/heldout_probabilities.csv

``--heldout`` is the probability file ``medsift predict --probabilities`` wrote for the held-out rows (it holds
one ``p_ade__seed<N>`` column per seed, so nothing is recomputed); give ``--heldout-csv`` (the labelled held-out
file) instead to score it with the run's models here.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import append_section, describe_machine

from medsift.decision import ThresholdPolicy, threshold_groups
from medsift.ensemble.ade import EnsembleOptions, apply_spec, build_ensemble
from medsift.ensemble.members import parse_member
from medsift.io import read_probabilities
from medsift.runs import RunManifest
from medsift.scoring import score_ade

# (label, per-seed members?, options)
SYSTEMS = [
    ("single seed ({first})", False, {"method": "soft"}),
    ("seed average (= soft vote)", True, {"method": "soft"}),
    ("hard vote of seeds", True, {"method": "hard"}),
    ("weighted vote of seeds (val F1)", True, {"method": "weighted"}),
    ("seed average + temperature", True, {"method": "soft", "calibrate": "temperature"}),
]
THRESHOLDS = [
    ("global 0.5", {"thresholds": "global"}),
    ("per language, mean fallback", {"thresholds": "per_language", "fallback": "mean"}),
    ("per language, pooled fallback", {"thresholds": "per_language", "fallback": "pooled"}),
]


def heldout_matrix(run: Path, seeds: list[int], heldout: Path | None, heldout_csv: Path | None):
    """(frame with id/label/language, (n_rows, n_seeds) raw per-seed probabilities) of the held-out rows."""
    if heldout is not None:
        frame = read_probabilities(heldout)
        columns = [f"p_ade__seed{s}" for s in seeds] if len(seeds) > 1 else ["p_ade"]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            sys.exit(f"{heldout} lacks {missing}: give --heldout-csv to score the held-out rows here")
        return frame, frame[columns].to_numpy(dtype=float)
    import torch

    from medsift.ade import AdeClassifier
    from medsift.io import read_ade_any

    torch.set_num_threads(1)
    rows = read_ade_any(heldout_csv, labelled=True)
    pred = AdeClassifier.from_run(run).predict(rows["text"].tolist(), rows["language"].tolist())
    frame = pd.DataFrame({"id": rows["id"].astype(str), "language": rows["language"], "label": rows["label"]})
    return frame, np.column_stack([pred.per_seed[f"seed{s}"] for s in seeds])


def evaluate(run: Path, seeds: list[int], frame: pd.DataFrame, matrix: np.ndarray, work: Path) -> list[dict]:
    gold = pd.DataFrame(
        {"id": frame["id"].astype(str), "label": frame["label"].astype(int), "language": frame["language"]}
    )
    results = []
    for k, (label, per_seed, system) in enumerate(SYSTEMS):
        specs = [f"{run}@seed{s}" for s in seeds] if per_seed else [f"{run}@seed{seeds[0]}"]
        columns = matrix if per_seed else matrix[:, :1]
        for j, (cut, threshold_options) in enumerate(THRESHOLDS):
            members = [m for s in specs for m in parse_member(s)]
            spec = build_ensemble(members, work / f"{k}-{j}", EnsembleOptions(**system, **threshold_options))
            p, _ = apply_spec(spec, columns)
            policy = ThresholdPolicy.from_dict(spec["policy"])
            labels = policy.apply(p, threshold_groups(frame["id"].astype(str), frame["language"].astype(str)))
            scores = score_ade(gold, pd.DataFrame({"id": gold["id"], "predicted_label": labels})).to_dict()
            results.append(
                {
                    "system": label.format(first=f"seed {seeds[0]}"),
                    "thresholds": cut,
                    "scores": scores,
                    "policy": policy,
                    "tuned_on": spec["rows_used"]["calibration_and_thresholds"],
                }
            )
    return results


def markdown(results: list[dict], languages: list[str]) -> str:
    head = "| system | thresholds | pooled F1 | " + " | ".join(f"F1 {lang}" for lang in languages) + " |"
    lines = [head, "|" + " --- |" * (3 + len(languages))]
    best = max(r["scores"]["f1"] for r in results)
    for r in results:
        s = r["scores"]
        pooled = f"**{s['f1']:.3f}**" if s["f1"] == best else f"{s['f1']:.3f}"
        per = [
            f"{s['per_language'][lang]['f1']:.3f}" if lang in s["per_language"] else "-" for lang in languages
        ]
        lines.append(f"| {r['system']} | {r['thresholds']} | {pooled} | " + " | ".join(per) + " |")
    return "\n".join(lines)


def threshold_lines(results: list[dict]) -> str:
    out = []
    for r in results:
        if r["system"].startswith("seed average (") and r["thresholds"] != "global 0.5":
            policy = r["policy"]
            tuned = ", ".join(f"{k} {v:.2f}" for k, v in sorted(policy.thresholds.items()))
            fell = ", ".join(sorted(policy.fallback_languages)) or "none"
            out.append(
                f"- seed average, {r['thresholds']}: tuned {tuned or 'none'}; fallback {policy.fallback:.2f} "
                f"({policy.fallback_rule}) for unseen languages and for {fell}"
            )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=Path("runs/bench-ade/run"))
    ap.add_argument("--heldout", type=Path, default=None, help="held-out probability file (per-seed columns)")
    ap.add_argument("--heldout-csv", type=Path, default=None, help="labelled held-out rows to score here")
    ap.add_argument("--no-docs", action="store_true", help="print only; do not touch docs/benchmarks.md")
    args = ap.parse_args()
    if args.heldout is None and args.heldout_csv is None:
        default = args.run.parent / "heldout_probabilities.csv"
        args.heldout, args.heldout_csv = (
            (default, None) if default.is_file() else (None, args.run.parent / "data" / "heldout.csv")
        )
    manifest = RunManifest.load(args.run)
    seeds = list(manifest.seeds)
    frame, matrix = heldout_matrix(args.run, seeds, args.heldout, args.heldout_csv)
    with tempfile.TemporaryDirectory() as tmp:
        results = evaluate(args.run.resolve(), seeds, frame, matrix, Path(tmp))
    languages = sorted({lang for r in results for lang in r["scores"]["per_language"]})
    tuned = results[1]["tuned_on"]
    calib = read_probabilities(args.run / "calib_probabilities.csv")
    counts = calib.groupby("language")["label"].agg(["size", "sum"])
    count_text = ", ".join(f"{lang} {int(c['size'])} ({int(c['sum'])} +)" for lang, c in counts.iterrows())
    body = f"""Machine: {describe_machine()} (no model runs here except with --heldout-csv: arithmetic on stored probabilities).
Command: `.venv/bin/python benchmarks/bench_ade_decision.py --run {args.run}`

Run `{args.run}` ({len(seeds)} seeds: {", ".join(map(str, seeds))}). Member weights come from each seed's val F1 at 0.5
(val rows chose the checkpoints); calibrators and thresholds were fit on the run's {tuned["rows"]} calib rows only
(`{tuned["split"]}`; per language: {count_text}; grid 0.20-0.80 step 0.01, at least 5 positives for a language to
get its own threshold). Scores are on {len(frame)} held-out rows that no step saw; pooled F1 is the official
overall (rows pooled, CADEC excluded), the other columns are per-language positive-class F1.

{markdown(results, languages)}

Thresholds of the seed average:
{threshold_lines(results)}
"""
    print(body)
    if not args.no_docs:
        append_section("ADE decision layer (voting, calibration, per-language thresholds)", body)


if __name__ == "__main__":
    main()
