"""Prediction with a trained (or zero-shot) LLM run: ADE probabilities and submissions, span submissions."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from medsift.errors import MedsiftError
from medsift.runs import RunManifest

THRESHOLD = 0.5
_LOAD_SECONDS: list[float] = [0.0]  # time spent loading models, kept out of the reported throughput


def _progress(total: int, quiet: bool, what: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=quiet, desc=what, unit="post")


def _model_for(config, seed_dir: Path):
    from medsift.llm.modeling import load_with_adapter
    from medsift.llm.prompts import resolve_template

    began = time.perf_counter()
    model, tokenizer = load_with_adapter(config.model, seed_dir / "adapter")
    _LOAD_SECONDS[0] += time.perf_counter() - began
    return model, tokenizer, resolve_template(tokenizer, config.model.chat_template)


def ade_probabilities(
    config, seed_dir: Path, texts: list[str], *, batch_size: int = 8, quiet: bool = True
) -> np.ndarray:
    """P(ADE) per text from one seed's model (first-token confidence)."""
    from medsift.llm.data import ade_prompt
    from medsift.llm.scoring import first_token_probabilities

    model, tokenizer, template = _model_for(config, seed_dir)
    prompts = [ade_prompt(tokenizer, template, t, config.prompt, config.model.max_length) for t in texts]
    with _progress(len(prompts), quiet, "ADE") as bar:
        return first_token_probabilities(model, tokenizer, prompts, batch_size=batch_size, progress=bar)


def impact_tags(
    config, seed_dir: Path, token_lists, *, constrained: bool, batch_size: int = 8, quiet: bool = True
):
    """(tags per post, RepairReport, raw answers) from one seed's model."""
    from medsift.llm.spans import tag_posts

    model, tokenizer, template = _model_for(config, seed_dir)
    with _progress(len(token_lists), quiet, "spans") as bar:
        return tag_posts(
            model,
            tokenizer,
            template,
            token_lists,
            config.prompt,
            config.decoding,
            max_length=config.model.max_length,
            constrained=constrained,
            batch_size=batch_size,
            progress=bar,
        )


def evaluate_frame(
    config, seed_dir: Path, frame: pd.DataFrame, *, quiet: bool = True, constrained: bool | None = None
):
    """(scores dict, outputs) on a labelled frame: ADE outputs are a probability frame, spans the tag lists."""
    if config.task == "ade":
        from medsift.scoring import score_ade

        p = ade_probabilities(config, seed_dir, list(frame["text"]), quiet=quiet)
        outputs = pd.DataFrame(
            {
                "id": frame["id"].astype(str),
                "language": frame["language"],
                "p_ade": p,
                "label": frame["label"].astype(int),
            }
        )
        pred = pd.DataFrame({"id": outputs["id"], "predicted_label": (p >= THRESHOLD).astype(int)})
        return score_ade(frame.assign(id=frame["id"].astype(str)), pred).to_dict(), outputs
    from medsift.scoring import relaxed_scores, strict_scores

    use = config.decoding.constrained if constrained is None else constrained
    tags, report, _ = impact_tags(config, seed_dir, list(frame["tokens"]), constrained=use, quiet=quiet)
    gold = list(frame["ner_tags"])
    scores = {
        "strict": strict_scores(gold, tags).overall,
        "relaxed": relaxed_scores(gold, tags).overall,
        "repairs": report.to_dict(),
    }
    return scores, tags


def _load_run(run_dir: Path):
    from medsift.config import parse_config, read_yaml

    manifest = RunManifest.load(run_dir)
    if manifest.kind not in ("ade-llm", "impacts-llm"):
        raise MedsiftError(f"not an LLM run (kind {manifest.kind})", file=run_dir)
    from medsift.llm.config import with_labels

    return manifest, with_labels(
        parse_config(read_yaml(run_dir / "config.yaml"), source=run_dir / "config.yaml")
    )


def predict_file(
    run_dir: Path,
    input_path: Path,
    output: Path,
    *,
    probabilities: Path | None = None,
    spans_json: Path | None = None,
    batch_size: int = 8,
    constrained: bool | None = None,
    quiet: bool = False,
) -> dict:
    """Predict ``input_path`` with an LLM run; writes the submission (and optional extras), returns a summary."""
    run_dir, input_path, output = Path(run_dir), Path(input_path), Path(output)
    manifest, config = _load_run(run_dir)
    seed_dirs = [run_dir / f"seed-{s}" for s in manifest.seeds]
    started = time.perf_counter()
    _LOAD_SECONDS[0] = 0.0
    if config.task == "ade":
        return _predict_ade(config, seed_dirs, input_path, output, probabilities, batch_size, quiet, started)
    return _predict_impacts(
        config, seed_dirs[0], input_path, output, spans_json, batch_size, constrained, quiet, started
    )


def _predict_ade(config, seed_dirs, input_path, output, probabilities, batch_size, quiet, started) -> dict:
    from medsift.io import read_ade_any, write_ade_submission, write_probabilities
    from medsift.preprocess import normalize_text

    frame = read_ade_any(input_path)
    texts = [normalize_text(t) for t in frame["text"]] if config.data.normalize else list(frame["text"])
    members = {
        d.name.replace("-", ""): ade_probabilities(config, d, texts, batch_size=batch_size, quiet=quiet)
        for d in seed_dirs
    }
    p = np.mean(list(members.values()), axis=0)
    labels = (p >= THRESHOLD).astype(int)
    write_ade_submission(output, list(frame["id"]), labels)
    out = pd.DataFrame({"id": frame["id"].astype(str), "language": frame["language"], "p_ade": p})
    labelled = frame["label"].notna().all()
    if labelled:
        out["label"] = frame["label"].astype(int)
    if len(members) > 1:
        for name, values in members.items():
            out[f"p_ade__{name}"] = values
    if probabilities is not None:
        write_probabilities(probabilities, out)
    summary = {
        "task": "ade",
        "rows": len(frame),
        "posts_per_second": len(frame) / max(time.perf_counter() - started - _LOAD_SECONDS[0], 1e-9),
        "load_seconds": _LOAD_SECONDS[0],
    }
    if labelled:
        from medsift.scoring import score_ade

        pred = pd.DataFrame({"id": out["id"], "predicted_label": labels})
        summary["scores"] = score_ade(frame.assign(id=frame["id"].astype(str)), pred).to_dict()
    return summary


def _predict_impacts(
    config, seed_dir, input_path, output, spans_json, batch_size, constrained, quiet, started
) -> dict:
    from medsift.io import read_impacts, write_impacts_submission

    frame = read_impacts(input_path)
    use = config.decoding.constrained if constrained is None else constrained
    tags, report, raw = impact_tags(
        config, seed_dir, list(frame["tokens"]), constrained=use, batch_size=batch_size, quiet=quiet
    )
    write_impacts_submission(output, list(frame["ID"]), tags, token_lists=list(frame["tokens"]))
    if spans_json is not None:
        from medsift.io.atomic import atomic_write_text

        rows = [
            {"ID": str(i), "answers": a, "tags": t} for i, a, t in zip(frame["ID"], raw, tags, strict=True)
        ]
        atomic_write_text(
            spans_json,
            json.dumps({"repairs": report.to_dict(), "rows": rows}, ensure_ascii=False, indent=1) + "\n",
        )
    summary = {
        "task": "impacts",
        "rows": len(frame),
        "constrained": use,
        "repairs": report.to_dict(),
        "posts_per_second": len(frame) / max(time.perf_counter() - started - _LOAD_SECONDS[0], 1e-9),
        "load_seconds": _LOAD_SECONDS[0],
    }
    if frame["ner_tags"].notna().all():
        from medsift.scoring import relaxed_scores, strict_scores

        gold = list(frame["ner_tags"])
        summary["scores"] = {
            "strict": strict_scores(gold, tags).overall,
            "relaxed": relaxed_scores(gold, tags).overall,
        }
    return summary
