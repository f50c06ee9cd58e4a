"""Fine-tune any ``AutoModelForSequenceClassification`` for ADE detection, one run per seed.

The loop is ``transformers.Trainer`` (mixed precision, accumulation, clipping, schedules, checkpoints,
resume, multi-GPU through accelerate/torchrun, TensorBoard/MLflow logging all come from it); medsift only
replaces the loss (focal / weighted cross-entropy) and the evaluation metric (post-level F1, so windows of
one long post count once).

Multi-GPU: every process trains, evaluates and scores the val/calib rows (each holds the model); only the
main process writes medsift's files into the run directory, and the others wait for it at a barrier after
each seed and at the end, so that no process reads a file before it is complete.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer
from transformers.trainer_callback import PrinterCallback

from medsift.ade.config import AdeConfig
from medsift.ade.data import AdeSplits, load_splits, model_texts, training_rows
from medsift.ade.encode import EncodedPosts, encode_posts
from medsift.ade.inference import pool_windows, positive_probabilities, positive_softmax
from medsift.ade.loss import classification_loss
from medsift.decision import ThresholdPolicy
from medsift.errors import MedsiftError
from medsift.io import write_probabilities
from medsift.io.atomic import atomic_write
from medsift.models import resolve_model
from medsift.runs import RunManifest, hash_files, write_json
from medsift.trainer import start_run, train_seeds
from medsift.training import (
    SequentialEvalMixin,
    epoch_history,
    export_model,
    finish_seed,
    is_main_process,
    train_resumable,
    warn_if_oversubscribed,
)

log = logging.getLogger(__name__)
LABELS = {0: "no_ade", 1: "ade"}


class AdeTrainer(SequentialEvalMixin, Trainer):
    """``Trainer`` with the configured classification loss; everything else is the library's."""

    def __init__(self, *args: Any, loss_config: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.loss_config = loss_config

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        soft = inputs.pop("soft_labels", None)  # (batch,) teacher P(ADE), only when distilling
        outputs = model(**inputs)
        cfg = self.loss_config
        loss = classification_loss(
            outputs.logits,
            labels,
            name=cfg.name,
            alpha=cfg.focal_alpha,
            gamma=cfg.focal_gamma,
            class_weights=cfg.class_weights,
            label_smoothing=self.args.label_smoothing_factor,  # Trainer's own smoother skips a custom loss
        )
        if soft is not None:
            log_q = torch.log_softmax(outputs.logits.float(), dim=-1)  # (batch, 2)
            soft_loss = -(soft * log_q[:, 1] + (1 - soft) * log_q[:, 0]).mean()
            loss = cfg.distill_weight * soft_loss + (1 - cfg.distill_weight) * loss
        return (loss, outputs) if return_outputs else loss


class _Features:
    """A list of tokenised inputs as a map-style dataset (``post`` is kept out of the model's inputs)."""

    def __init__(self, encoded: EncodedPosts):
        self.items = [{k: v for k, v in f.items() if k != "post"} for f in encoded.features]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


def freeze_for_training(model: Any, *, freeze_embeddings: bool, freeze_layers: int) -> None:
    """Fix the vocabulary matrix and/or the lowest ``freeze_layers`` transformer layers (CPU training levers).

    The layers are found where every BERT-style encoder keeps them (``base_model.encoder.layer``: BERT,
    XLM-R, e5, DeBERTa); a model without that list refuses ``freeze_layers`` rather than training everything.
    """
    if freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    if freeze_layers:
        layers = getattr(getattr(model.base_model, "encoder", None), "layer", None)
        if layers is None:
            raise MedsiftError(
                f"model.freeze_layers: {type(model).__name__} keeps no encoder.layer list to freeze; use 0"
            )
        if freeze_layers > len(layers):
            raise MedsiftError(
                f"model.freeze_layers is {freeze_layers}, but the model has {len(layers)} layers"
            )
        for layer in layers[:freeze_layers]:
            layer.requires_grad_(False)


def _post_metrics(encoded: EncodedPosts, labels: np.ndarray, threshold: float):
    """compute_metrics over posts: window probabilities are averaged per post before the cut."""

    def compute(pred) -> dict[str, float]:
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        p_post = pool_windows(encoded, positive_softmax(logits))  # (n_posts,)
        y_hat = (p_post >= threshold).astype(int)
        return {
            "f1": f1_score(labels, y_hat, pos_label=1, zero_division=0),
            "macro_f1": f1_score(labels, y_hat, average="macro", labels=[0, 1], zero_division=0),
        }

    return compute


def _encode(tokenizer, frame: pd.DataFrame, config: AdeConfig, with_labels: bool = True) -> EncodedPosts:
    m = config.model
    return encode_posts(
        tokenizer,
        model_texts(frame, config.data.normalize),
        max_length=m.max_length,
        policy=m.long_posts,
        head_fraction=m.head_fraction,
        stride=m.window_stride,
        labels=frame["label"].astype(int).tolist() if with_labels else None,
    )


def probability_frame(frame: pd.DataFrame, p: np.ndarray) -> pd.DataFrame:
    """A run's val/calib probability frame (``uid`` keys the rows: ids repeat across merged files)."""
    return pd.DataFrame(
        {
            "id": frame["id"].to_numpy(),
            "language": frame["language"].to_numpy(),
            "label": frame["label"].astype(int).to_numpy(),
            "p_ade": p,
            "uid": frame["uid"].to_numpy(),
            "source": frame["source"].to_numpy(),
        }
    )


def _distinct_too_long(encoded: EncodedPosts, rows: pd.DataFrame) -> int:
    """Long training posts counted once each (oversampled copies share their ``uid``)."""
    return len({uid for uid, long in zip(rows["uid"], encoded.too_long(), strict=True) if long})


def truncation_summary(
    too_long: dict[str, int], splits: AdeSplits, config: AdeConfig, *, log_it: bool = True
) -> dict[str, Any]:
    """``metrics.json["truncated_posts"]``: posts per split longer than the model's room, and who handled them.

    Logged as a warning when any post was too long, so that no post is cut without the user hearing of it.
    """
    summary = {
        **too_long,
        "rows": {name: len(getattr(splits, name)) for name in too_long},
        "max_length": config.model.max_length,
        "policy": config.model.long_posts,
    }
    if log_it and any(too_long.values()):
        counts = ", ".join(f"{too_long[k]} of {summary['rows'][k]} {k}" for k in too_long)
        log.warning(
            "posts longer than max_length %d: %s; handled by long_posts=%s",
            config.model.max_length,
            counts,
            config.model.long_posts,
        )
    return summary


def training_arguments(config: AdeConfig, seed_dir: Path, seed: int, *, quiet: bool = True):
    """``TrainingArguments`` of one seed: checkpoints under ``seed_dir``, the best kept by ``selection_metric``.

    ``f1`` / ``macro_f1`` are post-level scores of :func:`_post_metrics` (higher is better); ``neg_loss``
    selects the lowest validation loss.
    """
    metric = {"neg_loss": "eval_loss"}.get(config.selection_metric, f"eval_{config.selection_metric}")
    return config.training.to_training_arguments(
        seed_dir / "checkpoints",
        seed=seed,
        metric_for_best_model=metric,
        disable_tqdm=quiet,
        greater_is_better=config.selection_metric != "neg_loss",
    )


def train_seed(
    config: AdeConfig, splits: AdeSplits, seed: int, seed_dir: Path, *, quiet: bool
) -> dict[str, Any]:
    """Train one seed into ``seed_dir`` (resuming if a checkpoint is there) and export the best model."""
    from transformers import set_seed

    set_seed(seed)
    name = resolve_model(config.model.name)
    tokenizer = AutoTokenizer.from_pretrained(name)
    model = AutoModelForSequenceClassification.from_pretrained(
        name, num_labels=2, id2label=LABELS, label2id={v: k for k, v in LABELS.items()}
    )
    freeze_for_training(
        model, freeze_embeddings=config.model.freeze_embeddings, freeze_layers=config.model.freeze_layers
    )
    if not quiet:  # -q keeps stderr empty on success
        warn_if_oversubscribed(log)
    train_rows = training_rows(splits, config.data.oversample_positives, seed)
    train_enc = _encode(tokenizer, train_rows, config)
    if "p_teacher" in train_rows:  # distillation: every input (window) carries its post's teacher probability
        teacher = train_rows["p_teacher"].to_numpy(dtype=float)
        for feature in train_enc.features:
            feature["soft_labels"] = float(teacher[feature["post"]])
    selection = splits.selection_rows()  # the val rows of its languages, for a restricted run
    val_enc = _encode(tokenizer, selection, config)
    args = training_arguments(config, seed_dir, seed, quiet=quiet)
    trainer = AdeTrainer(
        model=model,
        args=args,
        train_dataset=_Features(train_enc),
        eval_dataset=_Features(val_enc),
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        loss_config=config.loss,
        compute_metrics=_post_metrics(val_enc, selection["label"].astype(int).to_numpy(), config.threshold),
    )
    if quiet:
        trainer.remove_callback(PrinterCallback)
    train_resumable(trainer, seed_dir / "checkpoints")
    export_model(trainer, seed_dir / "model")
    best = trainer.evaluate()
    main = is_main_process()
    too_long = {"train": _distinct_too_long(train_enc, train_rows), "val": val_enc.n_too_long, "calib": 0}
    for split_name, frame in (("val", splits.val), ("calib", splits.calib)):
        if len(frame):
            encoded = _encode(tokenizer, frame, config, False)
            too_long[split_name] = encoded.n_too_long
            p = positive_probabilities(trainer.model, tokenizer, encoded)
            if main:
                write_probabilities(seed_dir / f"{split_name}_probabilities.csv", probability_frame(frame, p))
    metrics = {
        "seed": seed,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best": best,
        "history": epoch_history(trainer),
        "truncated_posts": truncation_summary(too_long, splits, config, log_it=main),
    }
    finish_seed(seed_dir, metrics, {"seed": seed, "best": best})
    return metrics


def average_seeds(run_dir: Path, seeds: list[int], split_name: str) -> pd.DataFrame | None:
    """Multi-seed averaging: ``p_ade`` is the mean, ``p_ade__seed<N>`` keep each member.

    Rows are matched on ``uid`` (unique across the merged training files; ``id`` may repeat).
    """
    frames = [run_dir / f"seed-{s}" / f"{split_name}_probabilities.csv" for s in seeds]
    if not all(f.exists() for f in frames):
        return None
    from medsift.io import read_probabilities

    members = [read_probabilities(f) for f in frames]
    key = "uid" if all("uid" in m.columns for m in members) else "id"  # seeds saved before uids: by id
    out = members[0][["id", "language", "label", *(["uid"] if key == "uid" else [])]].copy()
    for seed, path, seed_rows in zip(seeds, frames, members, strict=True):
        p = seed_rows.set_index(key)["p_ade"].reindex(out[key])
        if p.isna().any():
            raise MedsiftError(
                f"seed {seed} did not score the same {split_name} rows as seed {seeds[0]}", file=path
            )
        out[f"p_ade__seed{seed}"] = p.to_numpy()
    out["p_ade"] = out[[f"p_ade__seed{s}" for s in seeds]].mean(axis=1)
    write_probabilities(run_dir / f"{split_name}_probabilities.csv", out)
    return out


class Teacher(Protocol):
    """What distillation needs of a teacher (:class:`medsift.ensemble.teacher.RunTeacher`): where it lives and
    its P(ADE) for rows with ``text`` and ``language``, in row order."""

    path: Path

    def probabilities(self, rows: pd.DataFrame, *, quiet: bool = True) -> np.ndarray: ...


def train(
    config: AdeConfig, *, run_dir: Path | None = None, quiet: bool = False, teacher: Teacher | None = None
) -> Path:
    """Train every seed of ``config`` into one run directory and return it.

    Killed and started again with the same config, it skips finished seeds and resumes the current one
    from its newest checkpoint. With ``teacher`` (an ADE run or ensemble), the model is distilled: it learns
    the teacher's probabilities on the training rows (weight ``loss.distill_weight``) as well as the gold labels.
    """
    run_dir = Path(run_dir or config.output_dir)
    start_run(run_dir, config)
    splits = load_splits(config)
    extra: dict[str, Any] = {}
    if teacher is not None:
        splits.train = splits.train.assign(p_teacher=teacher.probabilities(splits.train, quiet=quiet))
        extra["teacher"] = str(Path(teacher.path).resolve())
    return train_seeds(
        run_dir,
        list(config.seeds),
        lambda seed, seed_dir: train_seed(config, splits, seed, seed_dir, quiet=quiet),
        lambda summaries: _finish_run(run_dir, config, splits, summaries, extra),
        start=lambda: write_splits(run_dir, splits),
    )


def write_splits(run_dir: Path, splits: AdeSplits) -> None:
    """``splits.csv``: which rows went to train, val and calib (every ADE kind writes it)."""
    with atomic_write(run_dir / "splits.csv") as fh:
        splits.table().to_csv(fh, index=False)


def _finish_run(
    run_dir: Path, config: AdeConfig, splits: AdeSplits, summaries: list[dict], extra: dict[str, Any]
) -> None:
    """Run-level files (main process only): seed averages, thresholds, metrics and, last, the manifest."""
    for split_name in ("val", "calib"):
        average_seeds(run_dir, config.seeds, split_name)
    policy = ThresholdPolicy(mode="global", fallback=config.threshold, fallback_rule="global")
    write_json(run_dir / "thresholds.json", policy.to_dict())
    if getattr(config, "languages", None):  # the ensemble uses a restricted run on these languages only
        extra = {**extra, "languages": sorted(config.languages)}  # type: ignore[union-attr]
    run_metrics: dict[str, Any] = {"seeds": {str(s["seed"]): s["best"] for s in summaries}}
    if "truncated_posts" in summaries[-1]:  # the same for every seed: one tokenizer, one split
        run_metrics["truncated_posts"] = summaries[-1]["truncated_posts"]
    write_json(run_dir / "metrics.json", run_metrics)
    RunManifest(
        kind="ade-classifier",
        task="ade",
        seeds=list(config.seeds),
        data=hash_files(splits.files),
        extra={
            **extra,
            "model": config.model.name,
            "splits": {k: len(getattr(splits, k)) for k in ("train", "val", "calib")},
        },
    ).save(run_dir)
