"""``medsift score``: official-compatible scores of a submission against a gold file."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated

import typer


class Task(enum.StrEnum):
    ade = "ade"
    impacts = "impacts"


def _score(task: Task, gold: Path, pred: Path) -> dict:
    """Read both files with medsift.io's validating readers and score them; returns ``to_dict()``."""
    from medsift import io as mio
    from medsift.errors import MedsiftError
    from medsift.scoring import score_ade, score_impacts

    if task is Task.ade:
        gold_rows, pred_rows = mio.read_ade(gold, labelled=True), mio.read_ade_submission(pred)
    else:
        gold_rows, pred_rows = mio.read_impacts(gold, labelled=True), mio.read_impacts_submission(pred)
    try:
        return (score_ade if task is Task.ade else score_impacts)(gold_rows, pred_rows).to_dict()
    except MedsiftError as exc:  # scoring compares the two files (ids, lengths): name the submission
        if exc.file is not None:
            raise
        raise MedsiftError(exc.problem, file=pred, row=exc.row) from None


def _ade_table(scores: dict):
    from rich import box
    from rich.table import Table

    excluded = ", ".join(scores["overall_excludes"])
    table = Table(
        box=box.SIMPLE_HEAVY,
        title="Task 1 (ade): positive-class scores per language",
        caption="overall = pooled over rows" + (f", without {excluded}" if excluded else ""),
    )
    table.add_column("language", no_wrap=True)
    for name in ("rows", "gold +", "pred +", "P", "R"):
        table.add_column(name, justify="right")
    table.add_column("F1 (positive class)", justify="right", style="bold")
    table.add_column("macro F1 (two-class)", justify="right", min_width=11)

    def row(name: str, s: dict, **kw) -> None:
        cells = (s["support"], s["positives"], s["predicted_positives"])
        scores_ = (s["precision"], s["recall"], s["f1"], s["macro_f1_two_class"])
        table.add_row(name, *map(str, cells), *(f"{v:.4f}" for v in scores_), **kw)

    for lang, s in scores["per_language"].items():
        row(lang, s)
    row("overall", scores, style="bold")
    return table


def _span_table(title: str, block: dict, counts: tuple[str, ...], digits: int):
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAVY)
    table.add_column("type", no_wrap=True)
    for name in (*counts, "P", "R", "F1"):
        table.add_column(name.replace("_tokens", " tok"), justify="right")
    for kind, s in [*block["per_type"].items(), ("overall (micro)", block["overall"])]:
        table.add_row(
            kind, *(str(s[c]) for c in counts), *(f"{s[k]:.{digits}f}" for k in ("precision", "recall", "f1"))
        )
    return table


def register(app: typer.Typer) -> None:
    """Add ``medsift score``."""

    @app.command("score")
    def score(
        gold: Annotated[Path, typer.Argument(help="Gold file with labels (official format).")],
        pred: Annotated[
            Path, typer.Argument(help="Submission (ade: id,predicted_label; impacts: ID,predicted_ner_tags).")
        ],
        task: Annotated[Task, typer.Option("--task", help="Which task's files and scores.")],
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the scores as JSON instead of a table.")
        ] = False,
        output: Annotated[
            Path | None, typer.Option("--output", help="Also write the scores as JSON to this file.")
        ] = None,
    ) -> None:
        """Score a submission exactly as the official scorer does (refusing bad submissions)."""
        if output is not None:
            from medsift.cli._streams import refuse_same_file

            refuse_same_file([gold, pred], {"--output": output})
        scores = _score(task, gold, pred)
        text = json.dumps(scores, indent=2, ensure_ascii=False)
        if output is not None:
            from medsift.io.atomic import atomic_write_text

            atomic_write_text(output, text + "\n")
        if as_json:
            typer.echo(text)
            return
        from rich.console import Console

        console = Console()
        if task is Task.ade:
            console.print(_ade_table(scores))
            return
        console.print(
            _span_table(
                "Task 7 (impacts): strict entity F1 (seqeval default)", scores["strict"], ("support",), 4
            )
        )
        relaxed = ("overlap", "gold_tokens", "pred_tokens")
        console.print(
            _span_table(
                "Task 7 (impacts): relaxed token-overlap F1, rounded as the official script",
                scores["relaxed"],
                relaxed,
                3,
            )
        )
        console.print(f"{scores['sequences']} sequences")
