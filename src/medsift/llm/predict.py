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


def load_seed_model(config, seed_dir: Path):
    """(model, tokenizer, template) of one seed: the base model plus its adapter (none for zero-shot runs)."""
    from medsift.llm.config import is_zero_shot
    from medsift.llm.modeling import load_with_adapter
    from medsift.llm.prompts import resolve_template

    began = time.perf_counter()
    adapter = None if is_zero_shot(config) else seed_dir / "adapter"
    model, tokenizer = load_with_adapter(config.model, adapter)
    _LOAD_SECONDS[0] += time.perf_counter() - began
    return model, tokenizer, resolve_template(tokenizer, config.model.chat_template)


def ade_probabilities(
    config, seed_dir: Path, texts: list[str], *, batch_size: int = 8, quiet: bool = True, loaded=None
) -> np.ndarray:
    """P(ADE) per text from one seed's model (first-token confidence); ``loaded`` reuses a loaded model."""
    from medsift.llm.data import ade_prompt
    from medsift.llm.scoring import first_token_probabilities

    model, tokenizer, template = loaded or load_seed_model(config, seed_dir)
    prompts = [ade_prompt(tokenizer, template, t, config.prompt, config.model.max_length) for t in texts]
    with _progress(len(prompts), quiet, "ADE") as bar:
        p = first_token_probabilities(model, tokenizer, prompts, batch_size=batch_size, progress=bar)
    if len(p) != len(texts):  # every post gets exactly one probability, or the run fails
        raise MedsiftError(f"internal error: {len(p)} probabilities for {len(texts)} posts", file=seed_dir)
    return p


def ade_frame_probabilities(
    config, seed_dir: Path, frames: dict[str, pd.DataFrame], *, batch_size: int = 8, quiet: bool = True
) -> dict[str, pd.DataFrame]:
    """Probability frames (the encoder runs' columns) for labelled ADE frames; the model loads once."""
    from medsift.ade.data import model_texts
    from medsift.ade.train import probability_frame

    loaded = load_seed_model(config, seed_dir)
    out = {}
    for name, frame in frames.items():
        texts = model_texts(frame, config.data.normalize)
        p = ade_probabilities(config, seed_dir, texts, batch_size=batch_size, quiet=quiet, loaded=loaded)
        out[name] = probability_frame(frame, p)  # the encoder runs' columns
    return out


def impact_tags(
    config, seed_dir: Path, token_lists, *, constrained: bool, batch_size: int = 8, quiet: bool = True
):
    """(tags per post, RepairReport, raw answers) from one seed's model."""
    from medsift.llm.spans import tag_posts

    model, tokenizer, template = load_seed_model(config, seed_dir)
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

        outputs = ade_frame_probabilities(config, seed_dir, {"rows": frame}, quiet=quiet)["rows"]
        pred = pd.DataFrame(
            {"id": outputs["id"], "predicted_label": (outputs["p_ade"] >= THRESHOLD).astype(int)}
        )
        return score_ade(outputs[["id", "language", "label"]], pred).to_dict(), outputs
    use = config.decoding.constrained if constrained is None else constrained
    tags, report, _ = impact_tags(config, seed_dir, list(frame["tokens"]), constrained=use, quiet=quiet)
    return {**_span_scores(list(frame["ner_tags"]), tags), "repairs": report.to_dict()}, tags


def _span_scores(gold, tags) -> dict:
    """Strict and relaxed scores in the impact taggers' shape (``ImpactScores.to_dict``)."""
    from medsift.scoring.impacts import ImpactScores, relaxed_scores, strict_scores

    return ImpactScores(strict_scores(gold, tags), relaxed_scores(gold, tags), len(gold)).to_dict()


def _load_run(run_dir: Path):
    from medsift.config import parse_config, read_yaml

    manifest = RunManifest.load(run_dir)
    if manifest.kind not in ("ade-llm", "impacts-llm"):
        raise MedsiftError(f"not an LLM run (kind {manifest.kind})", file=run_dir)
    from medsift.llm.config import with_labels

    return manifest, with_labels(
        parse_config(read_yaml(run_dir / "config.yaml"), source=run_dir / "config.yaml")
    )


DECODINGS = ("constrained", "free")


def run_policy(run_dir: Path):
    """The run's thresholds (``thresholds.json``, as classifier runs keep them, and as ``medsift thresholds``
    retunes them); runs trained before LLM runs wrote one are cut at 0.5 for every language, as then."""
    from medsift.decision import ThresholdPolicy
    from medsift.runs import read_thresholds

    if (Path(run_dir) / "thresholds.json").is_file():
        return read_thresholds(run_dir)
    return ThresholdPolicy(mode="global", fallback=THRESHOLD, fallback_rule="global")


class LlmRun:
    """A loaded LLM run behind the predictor protocol: ``predict`` (ADE runs: every seed's first-token
    P(ADE), averaged and cut with the run's thresholds, as classifier runs are) or ``tag`` (impact runs)."""

    def __init__(self, run_dir: Path, config, seeds: list[int]):
        self.run_dir, self.config, self.seeds = Path(run_dir), config, seeds
        self.policy = run_policy(run_dir) if config.task == "ade" else None
        self._loaded: dict[int, tuple] = {}

    @classmethod
    def from_run(cls, run_dir: str | Path) -> LlmRun:
        manifest, config = _load_run(Path(run_dir))
        return cls(Path(run_dir), config, list(manifest.seeds))

    def _model(self, seed: int):
        if seed not in self._loaded:
            self._loaded[seed] = load_seed_model(self.config, self.run_dir / f"seed-{seed}")
        return self._loaded[seed]

    def predict(self, texts, languages=None, *, ids=None, batch_size: int = 8, progress: bool = False):
        """:class:`medsift.ade.predict.AdePrediction` for ``texts`` (ADE runs)."""
        from medsift.ade.classifier import decide
        from medsift.preprocess import normalize_text

        if self.config.task != "ade":
            raise MedsiftError("an impact-span LLM run tags tokens: use tag()", file=self.run_dir)
        texts = [normalize_text(t) for t in texts] if self.config.data.normalize else list(texts)
        per_seed = {
            f"seed{s}": ade_probabilities(
                self.config,
                self.run_dir / f"seed-{s}",
                texts,
                batch_size=batch_size,
                quiet=not progress,
                loaded=self._model(s),
            )
            for s in self.seeds
        }
        return decide(per_seed, self.policy, len(texts), languages, ids, 0)

    def tag(self, tokens_list, batch_size: int = 8, *, constrained: bool | None = None) -> list[list[str]]:
        """BIO tags per post (impact runs; the first seed's model, as ``medsift predict`` uses)."""
        if self.config.task != "impacts":
            raise MedsiftError("an ADE LLM run scores posts: use predict()", file=self.run_dir)
        use = self.config.decoding.constrained if constrained is None else constrained
        tags, _report, _raw = impact_tags(
            self.config,
            self.run_dir / f"seed-{self.seeds[0]}",
            list(tokens_list),
            constrained=use,
            batch_size=batch_size,
        )
        return tags


def predict_file(
    run_dir: Path,
    input_path: Path,
    output: Path,
    *,
    probabilities: Path | None = None,
    spans_json: Path | None = None,
    batch_size: int = 8,
    decoding: str | None = None,
    quiet: bool = False,
) -> dict:
    """Predict ``input_path`` with an LLM run; writes the submission (and optional extras), returns a summary.

    ``decoding`` (impact runs): ``"constrained"`` or ``"free"`` overrides the run's ``decoding.constrained``,
    so one trained run gives both the constrained result and the free-decoding baseline.
    """
    run_dir, input_path, output = Path(run_dir), Path(input_path), Path(output)
    manifest, config = _load_run(run_dir)
    if decoding is not None and decoding not in DECODINGS:
        raise MedsiftError(f"unknown decoding {decoding!r}; choose constrained or free")
    if batch_size < 1:
        raise MedsiftError(f"batch size must be at least 1, got {batch_size}")
    seed_dirs = [run_dir / f"seed-{s}" for s in manifest.seeds]
    started = time.perf_counter()
    _LOAD_SECONDS[0] = 0.0
    if config.task == "ade":
        if decoding is not None:
            raise MedsiftError("--decoding applies to impact-span LLM runs; ADE runs read the first token")
        policy = run_policy(run_dir)
        return _predict_ade(
            config, seed_dirs, input_path, output, probabilities, batch_size, quiet, started, policy
        )
    if probabilities is not None:
        raise MedsiftError("--probabilities applies to ADE runs; impact runs can write --spans-json")
    constrained = config.decoding.constrained if decoding is None else decoding == "constrained"
    return _predict_impacts(
        config, seed_dirs[0], input_path, output, spans_json, batch_size, constrained, quiet, started
    )


def _predict_ade(
    config, seed_dirs, input_path, output, probabilities, batch_size, quiet, started, policy
) -> dict:
    from medsift.ade.classifier import decide
    from medsift.ade.data import model_texts
    from medsift.io import read_ade_any, write_ade_submission, write_probabilities

    frame = read_ade_any(input_path)
    texts = model_texts(frame, config.data.normalize)
    members = {
        d.name.replace("-", ""): ade_probabilities(config, d, texts, batch_size=batch_size, quiet=quiet)
        for d in seed_dirs
    }
    ids = frame["id"].astype(str)
    # the classifier runs' decision: the seeds' mean cut per scoring group (CADEC rows apart) by thresholds.json
    decided = decide(members, policy, len(texts), frame["language"].astype(str).tolist(), ids.tolist(), 0)
    p, labels = decided.p_ade, decided.labels
    if len(labels) != len(frame) or ids.nunique() != len(frame):  # checked before anything is written
        raise MedsiftError(
            f"internal error: {len(labels)} predictions for {len(frame)} rows ({ids.nunique()} distinct ids)",
            file=input_path,
        )
    write_ade_submission(output, list(frame["id"]), labels)
    out = pd.DataFrame({"id": ids, "language": frame["language"], "p_ade": p})
    labelled = frame["label"].notna().all()
    if labelled:
        out["label"] = frame["label"].astype(int)
    for name, values in members.items():  # per-seed columns, as in the run's own probability files
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
    tags, report, raw = impact_tags(
        config, seed_dir, list(frame["tokens"]), constrained=constrained, batch_size=batch_size, quiet=quiet
    )
    _check_one_per_row(frame, tags, input_path)
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
        "constrained": constrained,
        "repairs": report.to_dict(),
        "posts_per_second": len(frame) / max(time.perf_counter() - started - _LOAD_SECONDS[0], 1e-9),
        "load_seconds": _LOAD_SECONDS[0],
    }
    if frame["ner_tags"].notna().all():
        summary["scores"] = _span_scores(list(frame["ner_tags"]), tags)
    return summary


def _check_one_per_row(frame: pd.DataFrame, tags: list[list[str]], input_path: Path) -> None:
    """Exactly one tag list per input row and one tag per input token, checked before anything is written."""
    if len(tags) != len(frame):
        raise MedsiftError(f"internal error: {len(tags)} tag lists for {len(frame)} rows", file=input_path)
    for row, (tokens, row_tags) in enumerate(zip(frame["tokens"], tags, strict=True), start=1):
        if len(tokens) != len(row_tags):
            raise MedsiftError(
                f"internal error: {len(row_tags)} tags for {len(tokens)} tokens", file=input_path, row=row
            )
