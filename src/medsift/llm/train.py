"""``medsift train`` for ``method: llm``: LoRA instruction tuning on ``transformers.Trainer``, per seed.

Multi-GPU: every process trains and then scores the validation (and calib) rows with the saved adapter;
only the main process writes medsift's files (config, splits, adapter, probabilities, metrics, ``DONE``,
manifest, checkpoint removal), and the others wait for it at barriers, so no process reads a file before
it is complete.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medsift.config import resolve_data_path
from medsift.errors import MedsiftError
from medsift.runs import RunManifest, hash_files, save_resolved_config, write_json
from medsift.training import (
    finish_seed,
    is_main_process,
    train_resumable,
    wait_for_everyone,
)

KINDS = {"ade": "ade-llm", "impacts": "impacts-llm"}


def _read_impacts(path: Path) -> pd.DataFrame:
    from medsift.io import read_impacts

    return read_impacts(path, labelled=True)


def load_splits(config):
    """The run's rows as ``medsift.ade.data.AdeSplits`` (train, val, calib, data files).

    ADE: exactly the encoder runs' split (``medsift.ade.data.load_splits``: same keys, defaults and
    ``split_seed``), so an LLM run scores the same val and calib rows as encoder runs on the same files and
    never trains on their calib rows. Impact spans: ``data.dev`` or a random share of the posts; no calib.
    """
    from medsift.ade.data import AdeSplits

    if not config.data.train:
        raise MedsiftError("data.train lists no files")
    if config.task == "ade":
        from medsift.ade.data import load_splits as ade_splits

        return ade_splits(config)
    data = config.data
    paths = [resolve_data_path(p) for p in data.train]
    frame = pd.concat([_read_impacts(p) for p in paths], ignore_index=True)
    if data.dev:
        paths.append(resolve_data_path(data.dev))
        train, val = frame, _read_impacts(paths[-1])
    elif data.val_fraction > 0:
        shuffled = frame.sample(frac=1.0, random_state=data.seed)
        cut = max(1, round(len(shuffled) * data.val_fraction))
        train, val = shuffled.iloc[cut:], shuffled.iloc[:cut]
    else:
        train, val = frame, frame.iloc[:0]
    if data.max_train_rows:
        train = train.sample(n=min(len(train), data.max_train_rows), random_state=data.seed)
    if data.max_val_rows:
        val = val.iloc[: data.max_val_rows]
    return AdeSplits(train.reset_index(drop=True), val.reset_index(drop=True), frame.iloc[:0], paths)


def _examples(config, tokenizer, template: str, frame: pd.DataFrame) -> tuple[list[dict], int]:
    """(training examples, how many had to be cut to fit ``model.max_length``)."""
    from medsift.llm import data

    if config.task == "ade":
        from medsift.ade.data import model_texts

        return data.ade_examples(
            tokenizer,
            template,
            model_texts(frame, config.data.normalize),
            list(frame["label"].astype(int)),
            config.prompt,
            config.model.max_length,
        )
    return data.span_examples(
        tokenizer,
        template,
        list(frame["tokens"]),
        list(frame["ner_tags"]),
        config.prompt,
        config.model.max_length,
        config.decoding,
    )


def _fit(config, seed: int, seed_dir: Path, train_frame, val_frame, quiet: bool) -> dict:
    """Train one seed's adapter and save it under ``seed_dir/adapter``; returns the training summary."""
    from transformers import Trainer, set_seed

    from medsift.llm.data import AnswerOnlyCollator
    from medsift.llm.modeling import add_lora, load_base
    from medsift.llm.prompts import resolve_template

    set_seed(seed)
    model, tokenizer = load_base(config.model)
    template = resolve_template(tokenizer, config.model.chat_template)
    model = add_lora(model, config.lora, config.model.load_in_4bit or config.model.load_in_8bit)
    train_set, train_cut = _examples(config, tokenizer, template, train_frame)
    val_set, val_cut = _examples(config, tokenizer, template, val_frame) if len(val_frame) else (None, 0)
    more = dict(
        disable_tqdm=quiet, greater_is_better=False, remove_unused_columns=False, save_only_model=False
    )
    if val_set is None:
        more.update(eval_strategy="no", save_strategy="epoch", load_best_model_at_end=False)
    args = config.training.to_training_arguments(
        seed_dir / "checkpoints", seed=seed, metric_for_best_model="loss", **more
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=val_set,
        data_collator=AnswerOnlyCollator(tokenizer.pad_token_id),
    )
    if quiet:  # the library never prints: Trainer's log lines go with the progress bars
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    result = train_resumable(trainer, seed_dir / "checkpoints")
    if is_main_process():
        trainer.model.save_pretrained(str(seed_dir / "adapter"), safe_serialization=True)
    wait_for_everyone()  # the adapter is complete before any process loads it to score
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return {
        "train_loss": result.training_loss,
        "logged_losses": losses,
        "steps": trainer.state.global_step,
        # the kept checkpoint's validation loss (the report reads "best", as for encoder runs)
        "best": {"eval_loss": trainer.state.best_metric} if val_set is not None else {},
        "examples": {"train": len(train_set), "val": len(val_set or [])},
        # prompts that did not fit model.max_length even after chunking (their start was cut): should be 0
        "truncated_examples": {"train": train_cut, "val": val_cut},
    }


def _evaluate_ade(config, seed_dir: Path, splits, quiet: bool) -> dict:
    """Score the val and calib rows with the seed's model; writes ``<split>_probabilities.csv`` (main process)."""
    from medsift.io import write_probabilities
    from medsift.llm.predict import THRESHOLD, ade_frame_probabilities
    from medsift.scoring import score_ade

    frames = {name: frame for name, frame in (("val", splits.val), ("calib", splits.calib)) if len(frame)}
    outputs = ade_frame_probabilities(config, seed_dir, frames, quiet=quiet)
    scores = {}
    for name, out in outputs.items():
        if is_main_process():
            write_probabilities(seed_dir / f"{name}_probabilities.csv", out)
        pred = pd.DataFrame({"id": out["id"], "predicted_label": (out["p_ade"] >= THRESHOLD).astype(int)})
        scores[name] = score_ade(out[["id", "language", "label"]], pred).to_dict()
    return scores


def train(config, *, run_dir: Path | None = None, quiet: bool = False) -> Path:
    """Train (or, with zero epochs, just set up) an LLM run; returns the run directory.

    ADE runs write ``val_probabilities.csv`` and ``calib_probabilities.csv`` per seed and for the run (mean
    of the seeds, ``p_ade__seed<N>`` columns), in the encoder runs' format, plus ``splits.csv``.
    """
    from medsift.llm.config import is_zero_shot, with_labels
    from medsift.llm.predict import evaluate_frame
    from medsift.trainer import start_run, train_seeds

    run_dir = Path(run_dir or config.output_dir)
    splits = load_splits(config)
    if config.task == "impacts":
        config = with_labels(config, list(splits.train["ner_tags"]))
    extra: dict = {"model": config.model.name}
    if config.task == "ade":
        extra["splits"] = {k: len(getattr(splits, k)) for k in ("train", "val", "calib")}
    if start_run(run_dir, config, finished_ok=True):
        return run_dir

    def train_seed(seed: int, seed_dir: Path) -> dict:
        train_rows = splits.train
        if config.task == "ade":
            from medsift.ade.data import training_rows

            train_rows = training_rows(splits, config.data.oversample_positives, seed)
        summary = (
            {"zero_shot": True}
            if is_zero_shot(config)
            else _fit(config, seed, seed_dir, train_rows, splits.val, quiet)
        )
        if config.task == "ade":
            summary.update(_evaluate_ade(config, seed_dir, splits, quiet))
        elif len(splits.val):
            summary["val"] = evaluate_frame(config, seed_dir, splits.val, quiet=quiet)[0]
        finish_seed(seed_dir, summary)
        return summary

    return train_seeds(
        run_dir,
        list(config.seeds),
        train_seed,
        lambda _summaries: _finish_run(run_dir, config, splits, extra),
        start=lambda: _start_run(run_dir, config, splits),
        done_summary=lambda _seed_dir: {},  # a resumed run keeps the finished seed and its probability files
    )


def _start_run(run_dir: Path, config, splits) -> None:
    """The run folder's first files (main process only): the seed folders and, for ADE, ``splits.csv``."""
    for seed in config.seeds:
        (run_dir / f"seed-{seed}").mkdir(parents=True, exist_ok=True)
    if config.task == "ade":
        from medsift.ade.train import write_splits

        write_splits(run_dir, splits)


def _finish_run(run_dir: Path, config, splits, extra: dict) -> None:
    """Run-level files (main process only): ADE seed averages and, last, the manifest."""
    if config.task == "ade":
        # the encoder runs' own averaging, so both kinds write the same run-level files
        from medsift.ade.train import average_seeds

        for split_name in ("val", "calib"):
            average_seeds(run_dir, list(config.seeds), split_name)
        from medsift.llm.predict import run_policy

        # the classifier runs' threshold file, so predict, serve, ensembles and `medsift thresholds` cut an LLM
        # run's probabilities as they cut a classifier's (per language, CADEC apart, once retuned)
        write_json(run_dir / "thresholds.json", run_policy(run_dir).to_dict())
    RunManifest(
        kind=KINDS[config.task],
        task=config.task,
        seeds=list(config.seeds),
        data=hash_files(splits.files),
        extra=extra,
    ).save(run_dir)


def zero_shot_run(
    model: str, task: str, out: str | Path, *, model_options: dict | None = None, **sections
) -> Path:
    """A run directory that uses ``model`` without an adapter (for zero-shot baselines and benchmarks).

    ``model_options`` go to the config's ``model`` section; other keyword arguments are whole sections
    (``decoding={...}``, ``prompt={...}``).
    """
    from medsift.config import parse_config

    raw = {
        "task": task,
        "method": "llm",
        "model": {**(model_options or {}), "name": model},
        "training": {"num_train_epochs": 0},
        "output_dir": str(out),
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    from medsift.llm.config import with_labels

    config = with_labels(parse_config(raw))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_resolved_config(out, config)
    for seed in config.seeds:
        (out / f"seed-{seed}").mkdir(exist_ok=True)
        write_json(out / f"seed-{seed}" / "metrics.json", {"zero_shot": True})
    RunManifest(
        kind=KINDS[task], task=task, seeds=list(config.seeds), extra={"model": model, "zero_shot": True}
    ).save(out)
    return out
