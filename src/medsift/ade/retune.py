"""``medsift thresholds``: retune a finished ADE run's ``thresholds.json`` on its calib rows (never the val rows)."""

from __future__ import annotations

from pathlib import Path

from medsift.decision import ThresholdPolicy, threshold_groups, tune_thresholds
from medsift.decision.thresholds import DEFAULT_GRID
from medsift.errors import MedsiftError
from medsift.io import read_probabilities
from medsift.runs import RunManifest, write_json

RETUNABLE = ("ade-classifier", "ade-llm")  # runs that keep their own calib rows and thresholds.json


def retune_thresholds(
    run: Path,
    *,
    mode: str = "per_language",
    fallback: str = "mean",
    grid: list[float] | None = None,
    metric: str = "f1",
    min_positives: int = 5,
    shrink: float = 0.0,
) -> tuple[ThresholdPolicy, int]:
    """Tune the run's thresholds on its calib rows (per scoring group: ``<lang>_cadec`` apart), write
    ``thresholds.json`` and the model card that shows them; returns the policy and the number of calib rows."""
    from medsift.card import write_model_card

    manifest = RunManifest.load(run)
    if manifest.kind not in RETUNABLE:
        raise MedsiftError(
            "thresholds retunes ADE classifier and LLM runs; ensembles tune at `medsift ensemble`", file=run
        )
    calib = run / "calib_probabilities.csv"
    if not calib.is_file():
        raise MedsiftError(
            "the run has no calib rows (calib_probabilities.csv); retrain with calib_fraction > 0",
            file=run,
        )
    rows = read_probabilities(calib)
    policy = tune_thresholds(
        rows["label"].astype(int).to_numpy(),
        rows["p_ade"].to_numpy(),
        threshold_groups(rows["id"].astype(str), rows["language"]),
        mode=mode,
        grid=DEFAULT_GRID if grid is None else grid,
        metric=metric,
        min_positives=min_positives,
        fallback=fallback,  # type: ignore[arg-type]
        shrink=shrink,
    )
    policy.notes.append(f"tuned on {len(rows)} calib rows of {calib}")
    write_json(run / "thresholds.json", policy.to_dict())
    write_model_card(run, manifest)  # the card shows the thresholds in use
    return policy, len(rows)
