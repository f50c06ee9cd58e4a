"""One registry of run kinds: how each kind of run is trained, loaded and predicted.

A run folder says what it is in its manifest (``medsift_run.json``: ``kind``); a config says what it trains
(``task`` and ``method``). :data:`KINDS` maps each kind to

- ``trainers``: config ``method`` -> the function that fills a run folder (``(config, run_dir, quiet) -> Path``);
- ``load``: ``(Run, backend) ->`` a predictor object (an ADE kind: ``predict(texts, languages) ->
  AdePrediction``; a tagger kind: ``tag(token_lists) -> tags``);
- ``predict_file``: what ``medsift predict RUN INPUT -o OUTPUT`` calls (``(run_dir, input, output, **options)``;
  the options a kind does not take are refused by name).

Every entry imports its task package inside a small function, so importing this module stays light (``medsift
--help``) and go-to-definition still leads to the code. An ensemble run is a kind like the others: its loader
returns an object with the same ``predict`` as a single classifier.

Adding a kind: write its package (trainer, loader, file predictor, config schema registered with
:func:`medsift.config.register_schema`), then add one :class:`RunKind` entry below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsift.errors import MedsiftError
from medsift.results import PredictionResult
from medsift.runs import Run

Trainer = Callable[..., Path]  # (config, *, run_dir, quiet) -> run_dir
Loader = Callable[[Run, str], Any]  # (run, backend) -> predictor
FilePredictor = Callable[..., dict[str, Any]]  # (run_dir, input, output, **options) -> result


@dataclass(frozen=True)
class RunKind:
    name: str  # the manifest's kind
    task: str  # ade | impacts
    load: Loader
    predict_file: FilePredictor
    options: tuple[str, ...]  # the medsift predict options its file predictor takes
    trainers: dict[str, Trainer] = field(default_factory=dict)  # config method -> trainer
    doc: str = ""


# --- trainers -------------------------------------------------------------------------------------


def _train_ade_encoder(config: Any, *, run_dir: Path, quiet: bool = False) -> Path:
    from medsift.ade.train import train

    return train(config, run_dir=run_dir, quiet=quiet)


def _train_ade_ngram(config: Any, *, run_dir: Path, quiet: bool = False) -> Path:
    from medsift.ade.ngram import train

    return train(config, run_dir=run_dir, quiet=quiet)


def _train_ade_zeroshot(config: Any, *, run_dir: Path, quiet: bool = False) -> Path:
    from medsift.ade.zeroshot.run import train

    return train(config, run_dir=run_dir, quiet=quiet)


def _train_recipe(config: Any, *, run_dir: Path, quiet: bool = False) -> Path:
    from medsift.ensemble.recipe import train

    return train(config, run_dir=run_dir, quiet=quiet)


def _train_tagger(config: Any, *, run_dir: Path, quiet: bool = False) -> Path:
    from medsift.impacts.train import train

    return train(config, run_dir=run_dir, quiet=quiet)


def _train_llm(config: Any, *, run_dir: Path, quiet: bool = False) -> Path:
    from medsift.llm.train import train

    return train(config, run_dir=run_dir, quiet=quiet)


# --- loaders --------------------------------------------------------------------------------------


def _load_classifier(run: Run, backend: str) -> Any:
    from medsift.engine.backends import load_classifier

    return load_classifier(run.path, backend=backend)


def _load_ade_ensemble(run: Run, backend: str) -> Any:
    from medsift.ensemble.ade import EnsembleClassifier

    return EnsembleClassifier(run.path, backend=backend)


def _load_tagger(run: Run, backend: str) -> Any:
    from medsift.engine.backends import load_span_tagger

    return load_span_tagger(run.path, backend=backend)


def _load_llm(run: Run, backend: str) -> Any:
    from medsift.llm.predict import LlmRun

    if backend != "torch":
        raise MedsiftError(f"LLM runs run on torch only, not '{backend}'", file=run.path)
    return LlmRun.from_run(run.path)


# --- file predictors ------------------------------------------------------------------------------


def _predict_classifier_file(run_dir: Path, input_path: Path, output: Path, **options: Any) -> dict[str, Any]:
    from medsift.engine.streaming import predict_file

    return predict_file(run_dir, input_path, output, **options)


def _predict_ensemble_file(run_dir: Path, input_path: Path, output: Path, **options: Any) -> dict[str, Any]:
    from medsift.ensemble.ade import predict_file

    return predict_file(run_dir, input_path, output, **options)


def _predict_tagger_file(run_dir: Path, input_path: Path, output: Path, **options: Any) -> dict[str, Any]:
    from medsift.engine.tagger_stream import predict_file

    return predict_file(run_dir, input_path, output, **options)


def _predict_llm_file(run_dir: Path, input_path: Path, output: Path, **options: Any) -> dict[str, Any]:
    from medsift.llm.predict import predict_file

    return predict_file(run_dir, input_path, output, **options)


_TAGGER_OPTIONS = ("spans_json", "batch_size", "backend", "quiet")
_LLM_OPTIONS = ("probabilities", "spans_json", "batch_size", "decoding", "quiet")

KINDS: dict[str, RunKind] = {
    kind.name: kind
    for kind in (
        RunKind(
            "ade-classifier",
            "ade",
            _load_classifier,
            _predict_classifier_file,
            ("probabilities", "backend", "engine", "quiet"),
            {
                "encoder": _train_ade_encoder,
                "ngram": _train_ade_ngram,
                "nli": _train_ade_zeroshot,
                "gliner": _train_ade_zeroshot,
            },
            "ADE classifier: fine-tuned encoder seeds, the character n-gram member, or a zero-shot NLI/GLiNER scorer",
        ),
        RunKind(
            "ade-ensemble",
            "ade",
            _load_ade_ensemble,
            _predict_ensemble_file,
            ("probabilities", "quiet", "member_probabilities", "backend"),
            {"ensemble": _train_recipe},
            "ADE ensemble: members of any ADE kind (or probability files) voted and cut by thresholds",
        ),
        RunKind(
            "ade-llm",
            "ade",
            _load_llm,
            _predict_llm_file,
            _LLM_OPTIONS,
            {"llm": _train_llm},
            "ADE by an LLM (LoRA), read from the first answer token's logits",
        ),
        RunKind(
            "impacts-tagger",
            "impacts",
            _load_tagger,
            _predict_tagger_file,
            _TAGGER_OPTIONS,
            {"encoder": _train_tagger},
            "impact span tagger (token classification)",
        ),
        RunKind(
            "impacts-ensemble",
            "impacts",
            _load_tagger,
            _predict_tagger_file,
            _TAGGER_OPTIONS,
            {},
            "impact tagger ensemble (token vote; made by medsift ensemble)",
        ),
        RunKind(
            "impacts-llm",
            "impacts",
            _load_llm,
            _predict_llm_file,
            _LLM_OPTIONS,
            {"llm": _train_llm},
            "impact spans by an LLM (constrained decoding)",
        ),
    )
}


def kind_of(run: Run) -> RunKind:
    """The registry entry of a run, or a one-line error naming the folder."""
    entry = KINDS.get(run.kind)
    if entry is None:
        raise MedsiftError(f"unknown run kind '{run.kind}'", file=run.path)
    return entry


def trainer_for(task: str, method: str) -> Trainer:
    """The trainer of configs with ``task`` and ``method``."""
    for kind in KINDS.values():
        if kind.task == task and method in kind.trainers:
            return kind.trainers[method]
    known = ", ".join(f"task={k.task} method={m}" for k in KINDS.values() for m in k.trainers)
    raise MedsiftError(f"no trainer for task={task} method={method}; known: {known}")


def predict_file(run: Run, input_path: Path, output: Path, **options: Any) -> PredictionResult:
    """``medsift predict`` for any kind; an option (not None) the kind does not take is an error naming it."""
    kind = kind_of(run)
    given = {k: v for k, v in options.items() if v is not None}
    unsupported = [k for k in given if k not in kind.options]
    if unsupported:
        flags = ", ".join("--" + k.replace("_", "-") for k in unsupported)
        raise MedsiftError(f"{flags} does not apply to this kind of run")
    return PredictionResult.from_dict(kind.predict_file(run.path, input_path, output, **given))


def predict_run_file(run_dir: Path, input_path: Path, output: Path, **options: Any) -> dict[str, Any]:
    """:func:`predict_file` for a run folder, leaving out the options its kind does not take (Ray's shards)."""
    run = Run.load(run_dir)
    kind = kind_of(run)
    given = {k: v for k, v in options.items() if k in kind.options and v is not None}
    return kind.predict_file(run.path, input_path, output, **given)


def load(run_dir: str | Path, *, backend: str = "torch") -> Any:
    """The predictor of any finished run (classifier, n-gram, ensemble, tagger, LLM); see :data:`KINDS`."""
    run = Run.load(run_dir)
    return kind_of(run).load(run, backend)


def train_into(
    config: Any,
    *,
    run_dir: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    overwrite: bool = False,
    quiet: bool = True,
) -> Path:
    """Train ``config`` (a YAML path, a shipped name, or a parsed config) into a run folder; return the folder.

    What ``medsift train`` does: the config is validated and its data files must exist before anything is
    written; the folder is locked while training; killed and started again, it resumes.
    """
    from medsift.config import check_data_files, load_config
    from medsift.runs import locked_run_dir

    if isinstance(config, str | Path):
        source, config = str(config), load_config(str(config), list(overrides))
        check_data_files(config, source)
    elif overrides:
        raise MedsiftError("overrides apply to a config file or name, not to a parsed config")
    trainer = trainer_for(config.task, getattr(config, "method", "encoder"))
    with locked_run_dir(Path(run_dir or config.output_dir), overwrite=overwrite) as folder:
        return Path(trainer(config, run_dir=folder, quiet=quiet))


def train(config: Any, **options: Any) -> Run:
    """:func:`train_into`, then the finished run read back (``medsift.train``)."""
    return Run.load(train_into(config, **options))
