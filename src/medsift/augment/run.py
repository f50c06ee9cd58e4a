"""``medsift augment``: translate a plan's rows in batches into a Task 1 file, resumably.

Each finished batch is appended (and flushed to disk) to ``<output>.partial.csv``, next to a fingerprint of the
plan and the model (``<output>.partial.json``). Killed and started again with the same command, the rows already
translated are kept and only the rest are translated; a different command meets the fingerprint and is refused.
The output is written last, atomically, in the plan's order, in the official Task 1 columns plus ``source_id``,
``source_language`` and ``translator``; then the partial files are removed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from medsift.errors import MedsiftError

OUTPUT_COLUMNS = [
    "id",
    "text",
    "label",
    "origin",
    "type",
    "language",
    "split",
    "source_id",
    "source_language",
    "translator",
]


def _partial_paths(output: Path) -> tuple[Path, Path]:
    return output.with_name(output.name + ".partial.csv"), output.with_name(output.name + ".partial.json")


def _fingerprint(plan: pd.DataFrame, model: str) -> str:
    digest = hashlib.sha256(model.encode())
    for key, text in zip(plan["key"], plan["text"], strict=True):
        digest.update(f"{key}\x00{text}\x01".encode())
    return digest.hexdigest()


def _done(output: Path, fingerprint: str) -> dict[str, str]:
    """Rows translated by an earlier, interrupted run of the same plan and model: key -> translation."""
    rows_path, meta_path = _partial_paths(output)
    if not rows_path.exists():
        return {}
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    if meta.get("fingerprint") != fingerprint:
        raise MedsiftError(
            "an interrupted augmentation with other settings (rows, mode or model) is here; delete "
            f"{rows_path.name} and {meta_path.name} or write elsewhere",
            file=rows_path,
        )
    done: dict[str, str] = {}
    with rows_path.open(encoding="utf-8", newline="") as fh:
        for record in csv.reader(fh):
            if len(record) == 2:  # a line cut by a kill has fewer cells: translated again
                done[record[0]] = record[1]
    return done


def translate_plan(
    plan: pd.DataFrame,
    output: str | Path,
    translate: Callable[[list[str], str, str], list[str]],
    *,
    model: str,
    batch_size: int = 16,
    quiet: bool = False,
) -> dict[str, Any]:
    """Translate every row of ``plan`` (see :func:`medsift.augment.plan.plan_augmentation`) with
    ``translate(texts, source, target)`` and write ``output``. Returns counts (rows, resumed, per language)."""
    from tqdm.auto import tqdm

    from medsift.io.atomic import atomic_write

    if batch_size < 1:
        raise MedsiftError(f"batch size must be at least 1, got {batch_size}")
    output = Path(output)
    fingerprint = _fingerprint(plan, model)
    done = _done(output, fingerprint)
    resumed = sum(k in done for k in plan["key"])
    rows_path, meta_path = _partial_paths(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps({"fingerprint": fingerprint, "model": model}), encoding="utf-8")
    todo = plan[~plan["key"].isin(list(done))]
    with (
        rows_path.open("a", encoding="utf-8", newline="") as fh,
        tqdm(total=len(plan), initial=resumed, desc="translating", unit="post", disable=quiet) as bar,
    ):
        writer = csv.writer(fh)
        for (source, target), group in todo.groupby(["source_language", "target_language"], sort=False):
            for start in range(0, len(group), batch_size):
                batch = group.iloc[start : start + batch_size]
                texts = translate(batch["text"].tolist(), str(source), str(target))
                if len(texts) != len(batch):
                    raise MedsiftError(f"internal error: {len(texts)} translations for {len(batch)} posts")
                for key, text in zip(batch["key"], texts, strict=True):
                    writer.writerow([key, text])
                    done[key] = text
                fh.flush()
                os.fsync(fh.fileno())
                bar.update(len(batch))
    frame = pd.DataFrame(
        {
            "id": [f"aug-{t}-{s}" for t, s in zip(plan["target_language"], plan["source_id"], strict=True)],
            "text": [done[k] for k in plan["key"]],
            "label": [f"{int(v)}.0" for v in plan["label"]],
            "origin": plan["origin"].to_numpy(),
            "type": plan["type"].to_numpy(),
            "language": plan["target_language"].to_numpy(),
            "split": "augmented",
            "source_id": plan["source_id"].to_numpy(),
            "source_language": plan["source_language"].to_numpy(),
            "translator": model,
        }
    )[OUTPUT_COLUMNS]
    with atomic_write(output) as out:
        frame.to_csv(out, index=False)
    rows_path.unlink()
    meta_path.unlink()
    return {
        "rows": len(frame),
        "resumed": resumed,
        "per_language": {
            str(lang): {"rows": len(g), "positives": int((g["label"] == "1.0").sum())}
            for lang, g in frame.groupby("language")
        },
    }


def augment_file(
    input_path: str | Path,
    output: str | Path,
    *,
    model: str,
    targets: list[str],
    sources: list[str] | None = None,
    mode: str = "balanced",
    negatives_per_positive: float = 1.0,
    max_rows_per_target: int | None = None,
    max_class_share: float = 0.8,
    allow_one_class: bool = False,
    seed: int = 13,
    batch_size: int = 16,
    max_length: int = 256,
    num_beams: int = 1,
    lang_codes: dict[str, str] | None = None,
    quiet: bool = False,
    translator: Any = None,
) -> dict[str, Any]:
    """Plan, guard, translate and write (see the module docstring). The guard runs before any model is loaded:
    a plan whose added rows for some language are more than ``max_class_share`` one class is refused unless
    ``allow_one_class``; the result's ``one_sided`` then names those languages (the caller warns loudly)."""
    from medsift.augment.plan import balance_findings, plan_augmentation
    from medsift.io import read_ade

    rows = read_ade(input_path, labelled=True)
    plan = plan_augmentation(
        rows,
        targets=targets,
        sources=sources,
        mode=mode,
        negatives_per_positive=negatives_per_positive,
        max_rows_per_target=max_rows_per_target,
        seed=seed,
    )
    findings = balance_findings(plan, max_share=max_class_share)
    one_sided = [f for f in findings if f.too_one_sided]
    if one_sided and not allow_one_class:
        raise MedsiftError(
            "refusing a one-sided augmentation (Clever Hans: a model learns 'this language = this class'): "
            + "; ".join(f.line() for f in one_sided)
            + f" (limit {max_class_share:.0%}). Use --mode balanced, or pass --allow-one-class to add them anyway"
        )
    if translator is None:
        from medsift.augment.translate import Translator

        translator = Translator(model, max_length=max_length, num_beams=num_beams, lang_codes=lang_codes)
    summary = translate_plan(
        plan, output, translator.translate, model=model, batch_size=batch_size, quiet=quiet
    )
    summary["findings"] = [f.__dict__ for f in findings]
    summary["one_sided"] = [f.line() for f in one_sided]
    return summary
