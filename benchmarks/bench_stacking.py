"""Stacking over the ade-cpu-full members, scored on the held-out split without re-running any model.

The members' probabilities on the held-out rows are already in ``runs/cpu-full/run/heldout*_probabilities.csv``
(``p_ade__ngram``, ``p_ade__encoder``; written by ``benchmarks/bench_ade_cpu.py``). This fits ``--method
stacking`` on the members' calib rows (cross-fitted there), applies it to those stored held-out probabilities and
scores them with the official rules, beside the shipped ensemble on the same rows.

    .venv/bin/python benchmarks/bench_stacking.py [RUNS_DIR]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from medsift.decision import ThresholdPolicy, threshold_groups
from medsift.ensemble.ade import EnsembleOptions, apply_spec, build_ensemble
from medsift.ensemble.members import parse_member
from medsift.io import read_probabilities
from medsift.scoring import score_ade


def _score(frame: pd.DataFrame, p: np.ndarray, policy: ThresholdPolicy) -> dict:
    groups = threshold_groups(frame["id"].astype(str), frame["language"].astype(str))
    labels = policy.apply(p, groups)
    scores = score_ade(
        frame[["id", "label", "language"]], pd.DataFrame({"id": frame["id"], "predicted_label": labels})
    )
    return scores.to_dict()


def main(root: Path) -> None:
    run = root / "run"
    members = [m for name in ("ngram", "encoder") for m in parse_member(str(run / "members" / name))]
    for m in members:
        m.name = m.path.name
    held = pd.concat(
        [
            read_probabilities(run / "heldout_probabilities.csv"),
            read_probabilities(run / "heldout_ja_probabilities.csv"),
        ],
        ignore_index=True,
    )
    shipped = json.loads((run / "thresholds.json").read_text())
    rows = {"ensemble as shipped": _score(held, held["p_ade"].to_numpy(), ThresholdPolicy.from_dict(shipped))}
    with tempfile.TemporaryDirectory() as tmp:
        for label, options in (
            ("stacking, global 0.5", EnsembleOptions(method="stacking", thresholds="global")),
            ("stacking, pooled threshold", EnsembleOptions(method="stacking", thresholds="tuned_global")),
            (
                "stacking, per language shrunk (K=20)",
                EnsembleOptions(
                    method="stacking", thresholds="per_language", threshold_shrink=20, fallback="global"
                ),
            ),
        ):
            spec = build_ensemble(members, Path(tmp) / label.replace(" ", "_"), options)
            groups = threshold_groups(held["id"].astype(str), held["language"].astype(str))
            p, _ = apply_spec(spec, held[["p_ade__ngram", "p_ade__encoder"]].to_numpy(), groups)
            rows[label] = _score(held, p, ThresholdPolicy.from_dict(spec["policy"]))
            rows[label]["coefficients"] = spec["stacking"]["coefficients"]
            rows[label]["out_of_fold_calib_f1"] = spec["stacking"]["out_of_fold_f1"]
    print(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/cpu-full"))
