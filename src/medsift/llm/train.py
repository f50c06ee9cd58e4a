"""``medsift train`` for ``method: llm``: LoRA instruction tuning on ``transformers.Trainer``, per seed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medsift.config import resolve_data_path
from medsift.errors import MedsiftError
from medsift.runs import RunManifest, hash_files, save_resolved_config, write_json
from medsift.training import mark_seed_done, remove_checkpoints, seed_is_done, train_resumable

KINDS = {"ade": "ade-llm", "impacts": "impacts-llm"}


def _read(task: str, path: Path) -> pd.DataFrame:
    if task == "ade":
        from medsift.io import read_ade_any

        return read_ade_any(path, labelled=True)
    from medsift.io import read_impacts

    return read_impacts(path, labelled=True)


def load_splits(config) -> tuple[pd.DataFrame, pd.DataFrame, list[Path]]:
    """(train, validation, data files): validation is ``data.dev`` or a stratified share of the train files."""
    from medsift.preprocess import normalize_text, stratified_split

    paths = [resolve_data_path(p) for p in config.data.train]
    if not paths:
        raise MedsiftError("data.train lists no files")
    frame = pd.concat([_read(config.task, p) for p in paths], ignore_index=True)
    if config.data.dev:
        dev_path = resolve_data_path(config.data.dev)
        train, val = frame, _read(config.task, dev_path)
        paths.append(dev_path)
    elif config.data.val_fraction > 0:
        if config.task == "ade":
            parts = stratified_split(
                frame,
                {"train": 1 - config.data.val_fraction, "val": config.data.val_fraction},
                seed=config.data.seed,
            )
            train, val = parts["train"], parts["val"]
        else:
            shuffled = frame.sample(frac=1.0, random_state=config.data.seed)
            cut = max(1, round(len(shuffled) * config.data.val_fraction))
            train, val = shuffled.iloc[cut:], shuffled.iloc[:cut]
    else:
        train, val = frame, frame.iloc[:0]
    if config.data.max_train_rows:
        train = train.sample(n=min(len(train), config.data.max_train_rows), random_state=config.data.seed)
    if config.data.max_val_rows:
        val = val.iloc[: config.data.max_val_rows]
    if config.task == "ade" and config.data.normalize:
        train = train.assign(text=train["text"].map(normalize_text))
        val = val.assign(text=val["text"].map(normalize_text))
    return train.reset_index(drop=True), val.reset_index(drop=True), paths


def _examples(config, tokenizer, template: str, frame: pd.DataFrame) -> list[dict]:
    from medsift.llm import data

    if config.task == "ade":
        return data.ade_examples(
            tokenizer,
            template,
            list(frame["text"]),
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
        config.decoding.chunk_tokens,
    )


def _is_zero_shot(config) -> bool:
    return config.training.num_train_epochs == 0 and config.training.max_steps <= 0


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
    train_set = _examples(config, tokenizer, template, train_frame)
    val_set = _examples(config, tokenizer, template, val_frame) if len(val_frame) else None
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
    result = train_resumable(trainer, seed_dir / "checkpoints")
    trainer.model.save_pretrained(str(seed_dir / "adapter"))
    remove_checkpoints(seed_dir / "checkpoints")
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return {"train_loss": result.training_loss, "logged_losses": losses, "steps": trainer.state.global_step}


def train(config, *, run_dir: Path | None = None, quiet: bool = False) -> Path:
    """Train (or, with zero epochs, just set up) an LLM run; returns the run directory."""
    from medsift.llm.config import with_labels
    from medsift.llm.predict import evaluate_frame

    run_dir = Path(run_dir or config.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    train_frame, val_frame, paths = load_splits(config)
    if config.task == "impacts":
        config = with_labels(config, list(train_frame["ner_tags"]))
    save_resolved_config(run_dir, config)
    members = []
    for seed in config.seeds:
        seed_dir = run_dir / f"seed-{seed}"
        seed_dir.mkdir(exist_ok=True)
        if seed_is_done(seed_dir):  # resumed run: keep the finished seed's validation outputs
            if (seed_dir / "val_probabilities.csv").exists():
                from medsift.io import read_probabilities

                members.append((seed, read_probabilities(seed_dir / "val_probabilities.csv")))
            continue
        summary = (
            {"zero_shot": True}
            if _is_zero_shot(config)
            else _fit(config, seed, seed_dir, train_frame, val_frame, quiet)
        )
        if len(val_frame):
            metrics, outputs = evaluate_frame(config, seed_dir, val_frame, quiet=quiet)
            summary["val"] = metrics
            if config.task == "ade":
                from medsift.io import write_probabilities

                write_probabilities(seed_dir / "val_probabilities.csv", outputs)
                members.append((seed, outputs))
        write_json(seed_dir / "metrics.json", summary)
        mark_seed_done(seed_dir, summary)
    if members:
        _write_val_ensemble(run_dir, members)
    RunManifest(
        kind=KINDS[config.task],
        task=config.task,
        seeds=list(config.seeds),
        data=hash_files(paths),
        extra={"model": config.model.name},
    ).save(run_dir)
    return run_dir


def _write_val_ensemble(run_dir: Path, members: list[tuple[int, pd.DataFrame]]) -> None:
    from medsift.io import write_probabilities

    frame = members[0][1][["id", "language", "label"]].copy()
    for seed, outputs in members:
        frame[f"p_ade__seed{seed}"] = outputs["p_ade"].to_numpy()
    frame["p_ade"] = frame[[f"p_ade__seed{s}" for s, _ in members]].mean(axis=1)
    write_probabilities(run_dir / "val_probabilities.csv", frame)


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
