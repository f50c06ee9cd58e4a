"""``medsift cv``: K-fold cross-validation of any config (see :mod:`medsift.cv`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from medsift.cli._quiet import silence_libraries


def _table(result: dict):
    from rich.table import Table

    from medsift.cv import format_mean_sd

    names = result.get("fold_names")
    title = (
        f"{result['task']}: {result['folds']}-fold cross-validation, {result['rows']} rows"
        if not names
        else f"{result['task']}: leave one {result['group_by']} out ({', '.join(names)}), {result['rows']} rows"
    )
    table = Table(title=title)
    for header, justify in (("metric", "left"), ("mean ± sd over folds", "right"), ("folds", "right")):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    table.add_column("pooled out-of-fold", justify="right")
    for name, entry in result["summary"].items():
        pooled = result["pooled"].get(name)
        table.add_row(name, format_mean_sd(entry), str(entry["n"]), "" if pooled is None else f"{pooled:.3f}")
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def cv(
        config: Annotated[
            str, typer.Argument(help="YAML config file, or the name of a shipped config (medsift configs).")
        ],
        folds: Annotated[int, typer.Option(help="Number of stratified folds.", min=2)] = 5,
        set_: Annotated[
            list[str], typer.Option("--set", help="Override a config value (dotted key=value).")
        ] = [],  # noqa: B006
        output_dir: Annotated[
            Path | None, typer.Option(help="The cv folder (default: the config's output_dir + '-cv').")
        ] = None,
        group_by: Annotated[
            str | None,
            typer.Option(
                help="ADE: 'language' = leave one language out (one fold per language; --folds unused)."
            ),
        ] = None,
        seed: Annotated[int, typer.Option(help="Seed of the fold assignment.")] = 13,
        keep_models: Annotated[
            bool,
            typer.Option(help="Keep each fold's trained weights (--no-keep-models deletes them once used)."),
        ] = True,
        as_json: Annotated[bool, typer.Option("--json", help="Print cv.json's summary as JSON.")] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    ) -> None:
        """Cross-validate a config: train on K-1 folds, predict the held-out fold, K times; report mean ± sd.

        Every row is predicted exactly once out of fold (oof_predictions.csv); cv.json holds every official
        metric per fold, its mean and sd over folds, and the pooled out-of-fold scores. Started again after a
        kill, finished folds are skipped and the unfinished one resumes.
        """
        from rich.console import Console

        from medsift.config import load_config
        from medsift.cv import cross_validate

        if quiet:
            silence_libraries()
        cfg = load_config(config, set_)
        out = output_dir if output_dir is not None else Path(f"{cfg.output_dir.rstrip('/')}-cv")
        result = cross_validate(
            cfg, out, folds=folds, group_by=group_by, seed=seed, keep_models=keep_models, quiet=quiet
        )
        if as_json:
            summary = {k: result[k] for k in ("task", "folds", "rows", "summary", "pooled", "train_seconds")}
            typer.echo(json.dumps(summary, indent=2, default=float))
        else:
            Console().print(_table(result))
        typer.echo(f"cv saved to {out} (cv.json, oof_predictions.csv)", err=True)
