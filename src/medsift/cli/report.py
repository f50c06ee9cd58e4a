"""``medsift report`` (HTML/Markdown report of runs) and ``medsift compare`` (runs side by side in the terminal)."""

from __future__ import annotations

import enum
import json
import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from medsift.errors import MedsiftError

PRED_HELP = (
    "Per run, in order: the file predicted on --test: the --probabilities file (ADE runs) or the "
    "submission (impact taggers)."
)


class Split(enum.StrEnum):
    val = "val"
    calib = "calib"
    test = "test"


RunsArg = Annotated[
    list[Path], typer.Argument(help="Finished run directories (medsift train / medsift ensemble).")
]


def _load(runs: list[Path], test: Path | None, preds: list[Path], quiet: bool):
    """Load RUNS; with ``--test``, attach each run's ``--pred`` file as split ``test`` (ADE probabilities or
    a tagger submission, scored per type)."""
    from tqdm.auto import tqdm

    from medsift.report import add_impacts_test, add_test_split, load_run

    if preds and test is None:
        raise MedsiftError("--pred needs --test (the labelled file the predictions were made on)")
    if test is not None and len(preds) != len(runs):
        raise MedsiftError(f"--test needs one --pred per run: {len(runs)} run(s), {len(preds)} --pred")
    names = [p.name for p in runs]
    loaded = []
    for k, path in enumerate(tqdm(runs, desc="reading runs", unit="run", disable=quiet)):
        name = path.name if names.count(path.name) == 1 else f"{path.parent.name}/{path.name}"
        run = load_run(path, name)
        if test is not None:
            (add_test_split if run.task == "ade" else add_impacts_test)(run, test, preds[k])
        loaded.append(run)
    return loaded


def _rich_compare(columns: list[str], rows: list[dict], best: dict[str, set[int]], split: str | None):
    from rich import box
    from rich.table import Table

    title = "runs side by side" + (f" on {split} rows" if split else " (split: test, else calib, else val)")
    caption = "★ = best in column (higher is better)" if best else "no best marked"
    table = Table(title=title, box=box.SIMPLE_HEAVY, caption=caption)
    for column in columns:
        numeric = column not in ("run", "kind", "split")
        # Scores need room for "0.1234★": never let rich squeeze them into an ellipsis.
        table.add_column(
            column, justify="right" if numeric else "left", no_wrap=True, min_width=7 if numeric else None
        )
    for i, row in enumerate(rows):
        cells = []
        for column in columns:
            value = row.get(column)
            text = (
                "–"
                if value is None or (isinstance(value, float) and math.isnan(value))
                else (f"{value:.4f}" if isinstance(value, float) else str(value))
            )
            cells.append(f"[bold green]{text}★[/]" if i in best.get(column, set()) else text)
        table.add_row(*cells)
    return table


def _scored_rows(loaded: list, rows: list[dict]) -> dict[str, list[str]]:
    """Runs grouped by the rows their scores come from (a fingerprint of the scored ids, or of the data)."""
    import hashlib

    groups: dict[str, list[str]] = {}
    for run, row in zip(loaded, rows, strict=True):
        split = row.get("split")
        frame = run.probabilities.get(split) if run.task == "ade" else None
        if frame is not None:
            key = "ids:" + "\n".join(sorted(frame["id"].astype(str)))
        elif split == "test":
            key = "impacts test file"
        else:  # a tagger's dev scores: its dev rows are those of its data files
            key = "data:" + ",".join(sorted(run.manifest.data.values()))
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        groups.setdefault(digest, []).append(run.name)
    return groups


def register(app: typer.Typer) -> None:
    @app.command()
    def report(
        runs: RunsArg,
        output: Annotated[
            Path,
            typer.Option("--output", "-o", help="report.html (self-contained) or report.md (+ PNG files)."),
        ],
        test: Annotated[
            Path | None,
            typer.Option(help="Held-out labelled file (Task 1 CSV, or Task 7 CSV for impact taggers)."),
        ] = None,
        pred: Annotated[list[Path], typer.Option(help=PRED_HELP)] = [],  # noqa: B006
        split: Annotated[
            Split | None,
            typer.Option(help="Split of the comparison table (default: test, else calib, else val)."),
        ] = None,
        errors: Annotated[
            int,
            typer.Option(
                min=0,
                help="Worst false positives / negatives shown per split; 0: no post text on the page "
                "(no error table, no highlighted impact posts), for data that may not be shared.",
            ),
        ] = 10,
        title: Annotated[str, typer.Option(help="Page title.")] = "medsift report",
        quiet: Annotated[
            bool, typer.Option("--quiet", "-q", help="No progress bars and no closing message.")
        ] = False,
    ) -> None:
        """Write one report page for RUNS: per-language scores, curves, calibration, errors, training curves;
        per-type scores and highlighted posts for impact taggers."""
        from tqdm.auto import tqdm

        from medsift.report import build_report, write_report

        loaded = _load(runs, test, pred, quiet)
        with tqdm(total=None, desc="building report", unit="step", disable=quiet) as bar:

            def progress(message: str) -> None:
                bar.set_postfix_str(message[:60])
                bar.update()

            doc = build_report(
                loaded,
                title=title,
                errors=errors,
                split=split.value if split else None,
                progress=progress,
            )
        write_report(doc, output)
        if not quiet:
            typer.echo(f"report written to {output}", err=True)

    @app.command()
    def compare(
        runs: RunsArg,
        split: Annotated[
            Split | None, typer.Option(help="Rows scored (default per run: test, else calib, else val).")
        ] = None,
        test: Annotated[
            Path | None,
            typer.Option(
                help="Held-out labelled file (Task 1 CSV, or Task 7 CSV for taggers), split 'test'."
            ),
        ] = None,
        pred: Annotated[list[Path], typer.Option(help=PRED_HELP)] = [],  # noqa: B006
        as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
    ) -> None:
        """Print runs side by side: pooled F1, macro F1, F1 per language (ADE), strict/relaxed F1 (taggers: on
        --test when given, else their dev scores), best epoch, seeds; best marked."""
        from medsift.report import best_per_column, compare_rows

        loaded = _load(runs, test, pred, quiet=True)
        columns, rows = compare_rows(loaded, split.value if split else None)
        best = best_per_column(columns, rows)
        groups = _scored_rows(loaded, rows)
        if len(groups) > 1:  # a "best" over different rows would compare different questions
            best = {}
            described = "; ".join(", ".join(names) for names in groups.values())
            typer.secho(
                f"WARNING: the runs were scored on different rows ({described}); no best is marked. Compare "
                "on the same held-out file with --test/--pred, or on one --split of runs trained on the same data.",
                err=True,
                fg="yellow",
            )
        if as_json:
            payload = {"columns": columns, "rows": rows, "best": {k: sorted(v) for k, v in best.items()}}
            typer.echo(json.dumps(payload, indent=2, default=float, allow_nan=True))
            return
        from rich.console import Console

        Console(width=None if sys.stdout.isatty() else 160).print(
            _rich_compare(columns, rows, best, split.value if split else None)
        )
