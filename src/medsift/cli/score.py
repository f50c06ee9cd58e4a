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
        from medsift.cli._render import print_scores

        print_scores(task.value, scores, official_titles=True)
