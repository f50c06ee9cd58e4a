"""The model card (``README.md``) every finished run folder carries: what the model is for, what it was trained
on (file names and SHA-256), how well it did on which rows, its thresholds, and where it should not be trusted.

It is written by :meth:`medsift.runs.RunManifest.save`, just before the manifest, from the files already in
the run folder; a section whose source is missing says so instead of failing the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

CARD = "README.md"

_USE = {
    "ade": (
        "Flags social-media posts that may report an **adverse drug event** (ADE), so that people doing "
        "pharmacovigilance can read the flagged posts first. The output is a probability and a 0/1 label per "
        "post (#SMM4H-HeaRD 2026 Task 1)."
    ),
    "impacts": (
        "Marks the spans of a Reddit post that describe **clinical or social impacts of opioid use**, for "
        "research on what people report (#SMM4H-HeaRD 2026 Task 7). The output is one BIO tag per token."
    ),
}
_NOT_FOR = (
    "Not for: diagnosing or treating anyone, decisions about an individual, or replacing the review of a "
    "report by a person. A flag means 'read this post', not 'this happened'."
)
_LIMITS = [
    "Scores below come from rows carved out of the training files (`val` chose the checkpoint, `calib` tuned "
    "the thresholds), not from an independent test set: expect lower scores on new data, other platforms, "
    "other years and other drugs.",
    "Languages with few or no training rows get the fallback threshold (`medsift predict` says how many rows "
    "did); a language absent from training is scored by transfer only.",
    "Posts longer than the model's `max_length` are handled by its long-post policy (see config.yaml), and "
    "`medsift predict` counts them.",
    "Social-media text carries the biases of who posts and how annotators read it; sarcasm, negation and "
    "misspelled drug names are common error sources (see `medsift report RUN` for the worst errors).",
]


def write_model_card(run_dir: str | Path, manifest: Any) -> Path:
    """Write ``RUN_DIR/README.md`` (atomically) and return its path."""
    from medsift.io.atomic import atomic_write_text

    run_dir = Path(run_dir)
    path = run_dir / CARD
    atomic_write_text(path, model_card(run_dir, manifest))
    return path


def model_card(run_dir: Path, manifest: Any) -> str:
    """The card's Markdown text."""
    out = [f"# Model card: {run_dir.name}", ""]
    out += [
        f"A medsift `{manifest.kind}` run (task `{manifest.task}`), made {manifest.created} with medsift "
        f"{manifest.packages.get('medsift', '?')}, torch {manifest.packages.get('torch', '?')} and transformers "
        f"{manifest.packages.get('transformers', '?')}. Seeds: {', '.join(map(str, manifest.seeds)) or '-'}.",
        "",
        "## Intended use",
        "",
        _USE.get(manifest.task, "See the medsift README."),
        "",
        _NOT_FOR,
        "",
        "## Model",
        "",
        *_model_lines(run_dir, manifest),
        "",
        "## Training data",
        "",
        *_data_lines(manifest),
        "",
        "## Scores",
        "",
        *_section(_score_lines, run_dir, manifest),
        "",
        "## Thresholds",
        "",
        *_section(_threshold_lines, run_dir, manifest),
        "",
        "## Limits",
        "",
        *[f"- {line}" for line in _LIMITS],
        "",
        "## Use and repeat",
        "",
        "```bash",
        f"medsift predict {run_dir.name} posts.csv -o submission.csv",
        f"medsift serve {run_dir.name}",
        f"medsift train {run_dir.name}/config.yaml   # repeats the run (same data files, hashes above)",
        "```",
        "",
    ]
    return "\n".join(out)


def _section(build, run_dir: Path, manifest: Any) -> list[str]:
    try:
        return build(run_dir, manifest) or ["Not recorded for this kind of run."]
    except Exception as exc:  # a card never fails a finished run; it says what it could not read
        return [f"Not available: {type(exc).__name__}: {exc}"]


def _model_lines(run_dir: Path, manifest: Any) -> list[str]:
    from medsift.config import read_yaml

    lines = []
    if (run_dir / "config.yaml").is_file():
        model = read_yaml(run_dir / "config.yaml").get("model") or {}
        name = str(model.get("name") or "")
        if name:  # a local folder is shown by its name: a card travels with the run, the path does not
            lines.append(f"- base model: `{Path(name).name if Path(name).is_absolute() else name}`")
        for key in ("max_length", "long_posts"):
            if key in model:
                lines.append(f"- {key}: `{model[key]}`")
    members = manifest.extra.get("members") if isinstance(manifest.extra, dict) else None
    if members:
        lines.append(f"- members: {len(members)}")
    return lines or ["- see config.yaml"]


def _data_lines(manifest: Any) -> list[str]:
    if not manifest.data:
        return ["No data files recorded (an ensemble or a zero-shot run: see its members)."]
    rows = ["| file | SHA-256 |", "| --- | --- |"]
    rows += [f"| `{Path(path).name}` | `{digest}` |" for path, digest in manifest.data.items()]
    return rows


def _score_lines(run_dir: Path, manifest: Any) -> list[str]:
    if manifest.task == "ade":
        lines = []
        for split, note in (
            ("val", "val rows (they also chose the checkpoint)"),
            ("calib", "calib rows (they also tuned the thresholds)"),
        ):
            path = run_dir / f"{split}_probabilities.csv"
            if path.is_file():
                lines += [f"On the {note}, at the run's thresholds:", "", *_ade_table(run_dir, path), ""]
        return lines
    return _seed_metric_lines(run_dir)


def _ade_table(run_dir: Path, path: Path) -> list[str]:
    from medsift.decision import threshold_groups
    from medsift.io import read_probabilities

    frame = read_probabilities(path)
    if "label" not in frame.columns or frame["label"].isna().any():
        return ["(no labels)"]
    groups = threshold_groups(frame["id"].astype(str), frame["language"].astype(str))
    policy = _policy(run_dir)
    thresholds = policy.thresholds_for(list(groups)) if policy is not None else 0.5
    predicted = (frame["p_ade"].to_numpy() >= thresholds).astype(int)
    gold = frame["label"].astype(int).to_numpy()
    rows = [
        "| group | rows | positives | precision | recall | F1 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in [*sorted(set(groups)), "all"]:
        mask = np.ones(len(gold), bool) if name == "all" else groups == name
        y, p = gold[mask], predicted[mask]
        tp, fp, fn = int((y & p).sum()), int(((1 - y) & p).sum()), int((y & (1 - p)).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(
            f"| {name} | {int(mask.sum())} | {int(y.sum())} | {precision:.3f} | {recall:.3f} | {f1:.3f} |"
        )
    return rows


def _seed_metric_lines(run_dir: Path) -> list[str]:
    from medsift.io.atomic import read_json

    lines = []
    for path in sorted(run_dir.glob("seed-*/metrics.json")):
        metrics = read_json(path)
        summary = metrics.get("summary") or metrics.get("best") or {}
        scores = {k: v for k, v in summary.items() if isinstance(v, int | float) and "f1" in k}
        if scores:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(scores.items()))
            lines.append(f"- {path.parent.name} (dev rows): {shown}")
    return lines


def _policy(run_dir: Path):
    """The run's threshold policy (``thresholds.json``, or an ensemble's ``ensemble.json``), or None."""
    from medsift.decision import ThresholdPolicy
    from medsift.io.atomic import read_json

    if (run_dir / "thresholds.json").is_file():
        return ThresholdPolicy.from_dict(read_json(run_dir / "thresholds.json"))
    if (run_dir / "ensemble.json").is_file():
        spec = read_json(run_dir / "ensemble.json").get("policy")
        return ThresholdPolicy.from_dict(spec) if spec else None
    return None


def _threshold_lines(run_dir: Path, manifest: Any) -> list[str]:
    policy = _policy(run_dir)
    if policy is None:
        return ["None: impact taggers decide by their tags." if manifest.task == "impacts" else ""]
    lines = [
        f"Mode `{policy.mode}`; the fallback for groups without their own is {policy.fallback:.2f} "
        f"(`{policy.fallback_rule}`).",
        "",
    ]
    if policy.thresholds:
        lines += ["| group | threshold |", "| --- | ---: |"]
        lines += [f"| {group} | {value:.2f} |" for group, value in sorted(policy.thresholds.items())]
    return lines
