"""Task 7 levers compared by cross-validation: table rows from ``medsift cv`` folders, and levers that need
no retraining evaluated on their out-of-fold predictions.

    python benchmarks/cv_impacts.py table runs/cv19/base-bio runs/cv19/io ...
    python benchmarks/cv_impacts.py vote runs/cv19/io runs/cv19/io-s43 runs/cv19/io-s44 --merge-gap 0 1 2
    python benchmarks/cv_impacts.py repredict runs/cv19/io --word-strategy first vote --o-bias 0 1 2 --merge-gap 0 1
    python benchmarks/cv_impacts.py repredict runs/cv19/io runs/cv19/io-s43 runs/cv19/io-s44 --vote hard soft
    python benchmarks/cv_impacts.py repredict runs/cv19/io --type-bias none SocialImpacts=1

``table`` prints one Markdown row per cv folder: mean ± sd over folds of strict and relaxed F1 (overall and
per type), pooled out-of-fold F1, and the median training minutes per fold (a resumed fold counts only its last start). ``vote`` combines the
out-of-fold predictions of several cv folders made with the same folds (e.g. one seed each) by the
tagger's own token vote and BIO repair (:func:`medsift.impacts.bio.vote_tags`, what a multi-seed run
does), then applies ``postprocess.merge_gap`` (:func:`medsift.impacts.bio.merge_close_spans`), and scores
each fold and the pool exactly as ``medsift cv`` does. A single folder with ``--merge-gap`` measures the
span post-processing alone. ``repredict`` tags each fold's held-out posts again with the fold's kept models
under other prediction-time settings (``word_strategy``, ``o_bias``, ``type_bias``, ``extend``, ``merge_gap``, and with several
folders of one seed each, ``vote`` hard or soft: no retraining).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from medsift.cv import summarise
from medsift.impacts.bio import merge_close_spans, vote_tags
from medsift.io import read_impacts, read_impacts_submission
from medsift.scoring.impacts import relaxed_scores, strict_scores

C, S = "ClinicalImpacts", "SocialImpacts"
COLUMNS = [f"strict.{k}f1" for k in ("", f"{C}.", f"{S}.")] + [
    f"relaxed.{k}f1" for k in ("", f"{C}.", f"{S}.")
]
HEADER = (
    "| lever | strict F1 | strict Clinical | strict Social | relaxed F1 | relaxed Clinical | relaxed Social "
    "| pooled OOF strict / relaxed | train min per fold (median) |\n| --- |" + " ---: |" * 8
)


def flat_scores(gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    flat = {}
    for block in (strict_scores(gold, pred), relaxed_scores(gold, pred)):
        flat[f"{block.mode}.f1"] = float(block.overall["f1"])
        for kind, values in block.per_type.items():
            flat[f"{block.mode}.{kind}.f1"] = float(values["f1"])
    return flat


def row(name: str, summary: dict, pooled: dict, minutes: float | None) -> str:
    cells = [f"{summary[c]['mean']:.3f} ± {summary[c]['sd']:.3f}" if c in summary else "" for c in COLUMNS]
    pooled_cell = f"{pooled['strict.f1']:.3f} / {pooled['relaxed.f1']:.3f}"
    time_cell = "" if minutes is None else f"{minutes:.1f}"
    return f"| {name} | " + " | ".join(cells) + f" | {pooled_cell} | {time_cell} |"


def table(folders: list[Path]) -> None:
    print(HEADER)
    for folder in folders:
        cv = json.loads((folder / "cv.json").read_text())
        minutes = float(np.median(cv["train_seconds"])) / 60
        print(row(folder.name, cv["summary"], cv["pooled"], minutes))


def vote(folders: list[Path], gaps: list[int], name: str | None) -> None:
    plans = [json.loads((f / "plan.json").read_text()) for f in folders]
    if any(p["assignment"] != plans[0]["assignment"] for p in plans):
        raise SystemExit("the cv folders were made with different folds; a vote needs the same folds")
    gold_frame = pd.concat([read_impacts(p, labelled=True) for p in plans[0]["data"]], ignore_index=True)
    gold = gold_frame["ner_tags"].tolist()
    runs = [
        read_impacts_submission(f / "oof_predictions.csv")["predicted_ner_tags"].tolist() for f in folders
    ]
    voted = runs[0] if len(runs) == 1 else [vote_tags(list(col)) for col in zip(*runs, strict=True)]
    folds = np.array(plans[0]["assignment"])
    label = name or "+".join(f.name for f in folders)
    print(HEADER)
    for gap in gaps:
        pred = [merge_close_spans(t, gap) for t in voted] if gap > 0 else voted
        per_fold = []
        for k in range(int(folds.max()) + 1):
            rows = np.flatnonzero(folds == k)
            per_fold.append(flat_scores([gold[i] for i in rows], [pred[i] for i in rows]))
        print(row(f"{label}, merge_gap {gap}", summarise(per_fold), flat_scores(gold, pred), None))


def repredict(
    folders: list[Path],
    strategies: list[str],
    biases: list[float],
    gaps: list[int],
    out: Path | None,
    votes: Sequence[str] = ("hard",),
    type_biases: Sequence[str] = ("none",),
    extends: Sequence[float] = (0.0,),
) -> None:
    """Tag every fold's held-out posts again with the fold's kept models under prediction-time settings
    (``model.word_strategy``, ``postprocess.o_bias``, ``postprocess.merge_gap``, ``postprocess.vote``: no
    retraining) and print a row for each combination; ``out`` (one combination only) is written as a cv
    folder for ``vote``. Several folders made with the same folds (one seed each) tag as one multi-seed
    tagger per fold, as a run with several seeds does."""
    import itertools
    import shutil

    from medsift.impacts.predict import SpanTagger
    from medsift.io import write_impacts_submission

    plans = [json.loads((f / "plan.json").read_text()) for f in folders]
    if any(p["assignment"] != plans[0]["assignment"] for p in plans):
        raise SystemExit("the cv folders were made with different folds; one tagger per fold needs the same")
    folder, plan = folders[0], plans[0]
    folds = np.array(plan["assignment"])
    data = pd.concat([read_impacts(p, labelled=True) for p in plan["data"]], ignore_index=True)
    gold = data["ner_tags"].tolist()
    taggers = [
        SpanTagger.from_runs([f / f"fold-{k}" / "run" for f in folders]) for k in range(int(folds.max()) + 1)
    ]
    minutes = sum(
        float(np.median(json.loads((f / "cv.json").read_text())["train_seconds"])) / 60 for f in folders
    )
    label = "+".join(f.name for f in folders)
    print(HEADER)
    settings = itertools.product(strategies, biases, votes, type_biases, extends)
    for strategy, bias, how, type_bias, extend in settings:
        tagged: list = [None] * len(data)
        for k, tagger in enumerate(taggers):
            for _, _, meta in tagger.members:
                meta.update(
                    word_strategy=strategy,
                    o_bias=bias,
                    merge_gap=0,
                    vote=how,
                    type_bias=parse_bias(type_bias),
                    extend=extend,
                )
            rows = np.flatnonzero(folds == k)
            for i, t in zip(rows, tagger.tag([data["tokens"][i] for i in rows]), strict=True):
                tagged[i] = t
        for gap in gaps:
            pred = [merge_close_spans(t, gap) for t in tagged] if gap > 0 else tagged
            per_fold = [
                flat_scores([gold[i] for i in rows], [pred[i] for i in rows])
                for rows in (np.flatnonzero(folds == k) for k in range(len(taggers)))
            ]
            summary, pooled = summarise(per_fold), flat_scores(gold, pred)
            name = f"{label}, {strategy}, o_bias {bias}, merge_gap {gap}"
            if type_bias != "none":
                name += f", type_bias {type_bias}"
            if extend:
                name += f", extend {extend}"
            if len(folders) > 1:
                name += f", {how} vote"
            print(row(name, summary, pooled, minutes), flush=True)
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                shutil.copy(folder / "plan.json", out / "plan.json")
                write_impacts_submission(out / "oof_predictions.csv", data["ID"].tolist(), pred)
                cv = {
                    "per_fold": per_fold,
                    "summary": summary,
                    "pooled": pooled,
                    "train_seconds": [minutes * 60],
                }
                (out / "cv.json").write_text(json.dumps(cv))


def parse_bias(text: str) -> dict[str, float]:
    """``none`` or ``TYPE=VALUE[,TYPE=VALUE]`` (a ``postprocess.type_bias`` setting)."""
    if text == "none":
        return {}
    return {k: float(v) for k, v in (part.split("=") for part in text.split(","))}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("table")
    t.add_argument("folders", nargs="+", type=Path)
    v = sub.add_parser("vote")
    v.add_argument("folders", nargs="+", type=Path)
    v.add_argument("--merge-gap", nargs="+", type=int, default=[0])
    v.add_argument("--name")
    r = sub.add_parser("repredict")
    r.add_argument("folders", nargs="+", type=Path)
    r.add_argument("--word-strategy", nargs="+", choices=["first", "vote"], default=["first"])
    r.add_argument("--o-bias", nargs="+", type=float, default=[0.0])
    r.add_argument("--merge-gap", nargs="+", type=int, default=[0])
    r.add_argument("--vote", nargs="+", choices=["hard", "soft"], default=["hard"])
    r.add_argument("--type-bias", nargs="+", default=["none"], help="none or TYPE=VALUE[,TYPE=VALUE]")
    r.add_argument("--extend", nargs="+", type=float, default=[0.0])
    r.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.command == "repredict":
        repredict(
            args.folders,
            args.word_strategy,
            args.o_bias,
            args.merge_gap,
            args.out,
            args.vote,
            args.type_bias,
            args.extend,
        )
    elif args.command == "table":
        table(args.folders)
    else:
        vote(args.folders, args.merge_gap, args.name)


if __name__ == "__main__":
    main()
