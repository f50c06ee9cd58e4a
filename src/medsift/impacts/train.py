"""Training the impact tagger (``medsift train CONFIG`` with ``task: impacts``) on ``transformers.Trainer``.

Posts longer than the encoder's window are cut into overlapping windows for training as well as for
prediction, so no labelled word is ever truncated away. The label set is read from the data (``O`` plus
``B-/I-`` per type for ``bio``, one class per type for ``io``). Model selection uses the strict (or
relaxed) F1 of the validation windows; the final ``metrics.json`` holds the post-level scores of the
exported model on the whole validation posts.

Multi-GPU: every process trains and scores the validation posts; only the main process writes medsift's
files (config, model folder, metrics, ``DONE``, manifest, checkpoint removal), and the others wait for it at
a barrier after the config, after each seed and at the end.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from medsift.errors import MedsiftError
from medsift.impacts.bio import (
    IGNORE,
    align_labels,
    entity_types,
    first_subword_positions,
    label_list,
    to_bio,
    to_scheme,
)
from medsift.impacts.config import ImpactsConfig
from medsift.impacts.model import build_model, encode_windows, progress_bars, save_tagger
from medsift.models import resolve_model
from medsift.training import is_main_process

log = logging.getLogger(__name__)


def split_rows(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded random split of ``n`` posts into (train, validation) indices, both non-empty."""
    if n < 2:
        raise MedsiftError(f"need at least 2 labelled posts to carve a validation split, got {n}")
    order = np.random.default_rng(seed).permutation(n).tolist()
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    return sorted(order[n_val:]), sorted(order[:n_val])


def encode_examples(
    tokenizer: Any,
    posts: list[list[str]],
    tags: list[list[str]],
    scheme: str,
    labels: list[str],
    max_length: int,
    stride: int,
    *,
    first_only: bool = False,
) -> list[dict]:
    """One example per window: ``input_ids`` and subword label ids (``-100`` where ignored).

    ``first_only`` labels only each word's first subword: validation examples use it, so the label ids
    alone say where the words are. The Trainer may reorder validation batches (it groups by length), so
    the metrics must not depend on example order.
    """
    label2id = {label: i for i, label in enumerate(labels)}
    windows, _ = encode_windows(tokenizer, posts, max_length, stride)
    examples = []
    for w in windows:
        word_tags = to_scheme(tags[w.post][w.window[0] : w.window[1]], scheme)  # type: ignore[arg-type]
        ids = align_labels(word_tags, w.word_ids, scheme, label2id)  # type: ignore[arg-type]
        if first_only:
            firsts = set(first_subword_positions(w.word_ids).values())
            ids = [i if pos in firsts else IGNORE for pos, i in enumerate(ids)]
        examples.append({"input_ids": w.input_ids, "labels": ids})
    return examples


def window_metrics(pred_ids: np.ndarray, label_ids: np.ndarray, labels: list[str], scheme: str) -> dict:
    """Strict and relaxed F1 over validation windows labelled with ``first_only`` (any order).

    Word tags are read where the label is not ``-100``. For ``io`` the gold is rebuilt from IO classes, so
    two adjacent gold spans of one type count as one here (model selection only; the final ``metrics.json``
    scores whole posts against the real BIO tags).
    """
    from medsift.impacts.predict import score_tags

    gold_w, pred_w = [], []
    for pred_row, gold_row in zip(pred_ids, label_ids, strict=True):
        keep = gold_row != IGNORE
        pred_w.append(to_bio([labels[int(i)] if i >= 0 else "O" for i in pred_row[keep]], scheme))  # type: ignore[arg-type]
        gold_w.append(to_bio([labels[int(i)] for i in gold_row[keep]], scheme))  # type: ignore[arg-type]
    scores = score_tags(gold_w, pred_w)
    return {"strict_f1": scores["strict"]["overall"]["f1"], "relaxed_f1": scores["relaxed"]["overall"]["f1"]}


def _read_rows(paths: list[Path]) -> tuple[list[list[str]], list[list[str]]]:
    from medsift.io import read_impacts

    tokens, tags = [], []
    for path in paths:
        frame = read_impacts(path, labelled=True)
        tokens += frame["tokens"].tolist()
        tags += frame["ner_tags"].tolist()
    return tokens, tags


def oversample_posts(tags: list[list[str]], factors: dict[str, float], seed: int) -> list[int]:
    """Indices of the training posts with repeats: a post with a span of type X appears ``factors[X]`` times
    (the largest factor among its types; posts without such spans once). For a fractional factor, a
    seeded share of those posts gets one copy more. Copies follow their original (the Trainer shuffles)."""
    if not factors:
        return list(range(len(tags)))
    rng = np.random.default_rng(seed)
    factor = [max([factors.get(t, 1.0) for t in entity_types([post])], default=1.0) for post in tags]
    copies = np.array([int(f) for f in factor])
    fraction = np.array(factor) - copies
    for value in sorted({f for f in fraction.tolist() if f > 0}):
        eligible = np.flatnonzero(np.isclose(fraction, value))
        copies[rng.choice(eligible, size=round(value * len(eligible)), replace=False)] += 1
    return [i for i, n in enumerate(copies.tolist()) for _ in range(n)]


def split_seed(config: ImpactsConfig, seed: int | None) -> int:
    """The seed of the validation split: ``data.seed``, combined with the training seed under
    ``data.val_split: per_seed``."""
    if config.data.val_split == "per_seed" and seed is not None:
        return int(np.random.SeedSequence([config.data.seed, seed]).generate_state(1)[0])
    return config.data.seed


def read_files(config: ImpactsConfig) -> dict:
    """The posts of ``data.train`` (and ``data.dev``), as read from disk, before any split."""
    from medsift.config import resolve_data_path

    train_paths = [resolve_data_path(p) for p in config.data.train]
    read = {"train": _read_rows(train_paths), "dev": None, "paths": list(train_paths)}
    if config.data.dev:
        dev_path = resolve_data_path(config.data.dev)
        read["dev"] = _read_rows([dev_path])
        read["paths"].append(dev_path)
    return read


def load_data(config: ImpactsConfig, seed: int | None = None, read: dict | None = None) -> dict:
    """Training and validation posts (pre-split words and BIO tags) and the files they came from; ``seed``
    (the training seed) picks the validation split under ``data.val_split: per_seed``; ``read``: the files
    as :func:`read_files` returned them (read again when absent)."""
    read = read if read is not None else read_files(config)
    tokens, tags = read["train"]
    if read["dev"] is not None:
        dev_tokens, dev_tags = read["dev"]
    else:
        tr, va = split_rows(len(tokens), config.data.val_fraction, split_seed(config, seed))
        dev_tokens, dev_tags = [tokens[i] for i in va], [tags[i] for i in va]
        tokens, tags = [tokens[i] for i in tr], [tags[i] for i in tr]
    if config.data.max_train_rows is not None and len(tokens) > config.data.max_train_rows:
        keep = sorted(
            np.random.default_rng(config.data.seed).permutation(len(tokens))[: config.data.max_train_rows]
        )
        tokens, tags = [tokens[i] for i in keep], [tags[i] for i in keep]
    order = oversample_posts(tags, config.data.oversample_types, config.data.seed)
    tokens, tags = [tokens[i] for i in order], [tags[i] for i in order]
    return {"train": (tokens, tags), "dev": (dev_tokens, dev_tags), "paths": read["paths"]}


def train(config: ImpactsConfig, *, run_dir: Path | None = None, quiet: bool = False) -> Path:
    """Train one tagger per seed into ``run_dir`` (default ``config.output_dir``); return the run dir.

    Re-running the same command resumes: finished seeds (``DONE``) are skipped and an interrupted seed
    continues from its newest checkpoint. The manifest is written last.
    """
    from transformers import AutoTokenizer

    from medsift.runs import RunManifest, hash_files, read_json
    from medsift.trainer import start_run, train_seeds

    run_dir = Path(run_dir if run_dir is not None else config.output_dir)
    read = read_files(config)
    data = load_data(config, read=read)
    types = entity_types(data["train"][1] + data["dev"][1])
    if not types:
        raise MedsiftError(
            "the training data has no impact spans at all (every tag is O)", file=data["paths"][0]
        )
    for key, named in (
        ("data.oversample_types", config.data.oversample_types),
        ("postprocess.type_bias", config.postprocess.type_bias),
    ):
        if unknown := sorted(set(named) - set(types)):  # a misspelt type does nothing: say so
            log.warning(
                "%s: %s are not entity types of the training data (%s): no effect", key, unknown, types
            )
    labels = label_list(types, config.scheme)
    if start_run(run_dir, config, finished_ok=True):
        return run_dir
    tokenizer = AutoTokenizer.from_pretrained(str(resolve_model(config.model.name)))

    def finish(summaries: list[dict]) -> None:
        RunManifest(
            kind="impacts-tagger",
            task="impacts",
            seeds=list(config.seeds),
            data=hash_files(data["paths"]),
            extra={
                "model": config.model.name,
                "scheme": config.scheme,
                "labels": labels,
                "dev": {str(s): summary for s, summary in zip(config.seeds, summaries, strict=True)},
            },
        ).save(run_dir)

    def seed_data(seed: int) -> dict:
        return (
            load_data(config, seed, read)
            if config.data.val_split == "per_seed" and not config.data.dev
            else data
        )

    return train_seeds(
        run_dir,
        list(config.seeds),
        lambda seed, seed_dir: train_seed(
            config, seed, seed_dir, tokenizer, labels, seed_data(seed), quiet=quiet
        ),
        finish,
        done_summary=lambda seed_dir: read_json(seed_dir / "metrics.json")["summary"],
    )


def train_seed(
    config: ImpactsConfig,
    seed: int,
    seed_dir: Path,
    tokenizer: Any,
    labels: list[str],
    data: dict,
    *,
    quiet: bool = False,
) -> dict:
    """Train, export and score one seed; a finished seed (``DONE``) is returned from its metrics.

    Every process trains and scores; only the main one saves the model and writes the seed's files.
    """
    from transformers import DataCollatorForTokenClassification, Trainer, set_seed

    from medsift.impacts.predict import SpanTagger, score_tags
    from medsift.runs import read_json
    from medsift.training import (
        epoch_history,
        finish_seed,
        seed_is_done,
        train_resumable,
    )

    if seed_is_done(seed_dir):
        return read_json(seed_dir / "metrics.json")["summary"]
    m = config.model
    train_ex = encode_examples(tokenizer, *data["train"], config.scheme, labels, m.max_length, m.stride)
    dev_ex = encode_examples(
        tokenizer, *data["dev"], config.scheme, labels, m.max_length, m.stride, first_only=True
    )
    set_seed(seed)
    model = build_model(m.name, labels, m.crf)
    more: dict[str, Any] = {"label_smoothing_factor": 0.0} if m.crf else {}  # the CRF loss is its own NLL
    args = config.training.to_training_arguments(
        seed_dir / "checkpoints",
        seed=seed,
        metric_for_best_model=config.selection_metric,
        disable_tqdm=quiet,
        **more,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ex,
        eval_dataset=dev_ex,
        data_collator=DataCollatorForTokenClassification(tokenizer),
        processing_class=tokenizer,
        compute_metrics=lambda ev: window_metrics(ev.predictions, ev.label_ids, labels, config.scheme),
        preprocess_logits_for_metrics=lambda logits, _labels: logits.argmax(-1),
    )
    if quiet:  # with tqdm off, the Trainer prints its logs instead; quiet means neither
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    with progress_bars(not quiet):
        train_resumable(trainer, seed_dir / "checkpoints")
    meta = {
        "labels": labels,
        "scheme": config.scheme,
        "max_length": m.max_length,
        "stride": m.stride,
        "word_strategy": m.word_strategy,
        "crf": m.crf,
        "base_model": m.name,
        "merge_gap": config.postprocess.merge_gap,
        "o_bias": config.postprocess.o_bias,
        "type_bias": dict(config.postprocess.type_bias),
        "extend": config.postprocess.extend,
        "vote": config.postprocess.vote,
    }
    trained = trainer.model.eval()
    main = is_main_process()
    if main:
        with progress_bars(not quiet):
            save_tagger(trained, tokenizer, seed_dir / "model", meta)
    dev_pred = SpanTagger([(trained, tokenizer, meta)]).tag(
        data["dev"][0], config.training.per_device_eval_batch_size
    )
    scores = score_tags(data["dev"][1], dev_pred)
    summary = {
        "strict_f1": scores["strict"]["overall"]["f1"],
        "relaxed_f1": scores["relaxed"]["overall"]["f1"],
    }
    metrics = {
        "seed": seed,
        "summary": summary,
        "dev": scores,
        "history": epoch_history(trainer),
        "train_windows": len(train_ex),
        "dev_posts": len(data["dev"][0]),
    }
    finish_seed(seed_dir, metrics, summary)
    return summary
