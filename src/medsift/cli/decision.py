"""``medsift ensemble``, ``thresholds``, ``histograms`` and ``threshold-shift``: the ADE decision layer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medsift.errors import MedsiftError


def parse_grid(text: str) -> list[float]:
    """``START:STOP:STEP`` (both ends included) or a comma list of thresholds."""
    import numpy as np

    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            return np.round(np.arange(start, stop + step / 2, step), 10).tolist()
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise MedsiftError(
            f"--grid {text!r}: expected START:STOP:STEP (e.g. 0.20:0.80:0.01) or 0.3,0.4,0.5"
        ) from None


def parse_weights(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise MedsiftError(
            f"--weights {text!r}: expected numbers separated by commas, e.g. 1.0,0.7"
        ) from None


# Options several commands share: one definition each.
Grid = Annotated[str, typer.Option(help="Threshold grid START:STOP:STEP")]
Metric = Annotated[str, typer.Option(help="f1 | macro_f1")]
MinPositives = Annotated[
    int,
    typer.Option(
        min=0,
        help="per_language: positive calib rows a language (or <lang>_cadec group) needs to get its own "
        "threshold; groups with fewer use the --fallback threshold.",
    ),
]
METHOD_HELP = (
    "hard (majority of member votes at 0.5; the vote share is the ensemble's probability) | soft (mean "
    "probability) | weighted (weighted mean; weights from val F1 or --weights) | stacking (a logistic regression "
    "over the members' logits and --stack-features, fit and cross-fitted on the calib rows)"
)
TIE_HELP = (
    "--method hard: a row with exactly half the (weighted) votes. Default positive (favours recall: ADE is the "
    "rare class); negative (favours precision); mean_prob (the mean member probability, >= 0.5, decides)."
)
WEIGHTS_BY_HELP = (
    "none | language: member weights per language group (a language, or <lang>_cadec), fit on the calib rows and "
    "shrunk toward the pooled weights by support; a language no calib row has (ja, fa, ...) goes to the members "
    "that know it (an n-gram run knows only its training languages)."
)
SHRINK_HELP = "t = (n_pos * t_lang + K * t_pooled) / (n_pos + K); 0 = off."
STACK_FEATURES_HELP = (
    "--method stacking: a member whose per-post features (feat__* columns, e.g. a GLiNER scorer's entity counts "
    "and maximum scores) join the regression; repeat for more."
)


def ensemble(
    members: Annotated[
        list[str],
        typer.Argument(help="Run directories, RUN_DIR@seed<N>, or val=PATH,calib=PATH[,name=NAME] files."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Ensemble run directory to create.")],
    method: Annotated[str, typer.Option(help=METHOD_HELP)] = "soft",
    weights: Annotated[str | None, typer.Option(help="Explicit weights, one per member: 1.0,0.7")] = None,
    weights_from: Annotated[
        str, typer.Option(help="weighted: val_f1 (member val F1 at 0.5) | equal")
    ] = "val_f1",
    per_seed: Annotated[
        bool, typer.Option(help="Make every seed of a classifier run its own member.")
    ] = False,
    thresholds: Annotated[str, typer.Option(help="global (0.5) | tuned_global | per_language")] = "global",
    fallback: Annotated[
        str, typer.Option(help="Unseen / too-few-positive languages: mean | pooled | global")
    ] = "mean",
    grid: Grid = "0.20:0.80:0.01",
    metric: Metric = "f1",
    min_positives: MinPositives = 5,
    calibrate: Annotated[
        str, typer.Option(help="none | temperature | platt (per member, before combining)")
    ] = "none",
    calib_file: Annotated[
        list[Path],
        typer.Option(help="Calib probabilities for members that lack them, one per member, in order."),
    ] = [],  # noqa: B006
    cross_fit: Annotated[
        int | None, typer.Option(min=2, help="No calib rows: cross-fit K folds on the val rows.")
    ] = None,
    tie: Annotated[str | None, typer.Option(help=TIE_HELP)] = None,
    weights_by: Annotated[str, typer.Option(help=WEIGHTS_BY_HELP)] = "none",
    weight_shrink: Annotated[
        float,
        typer.Option(
            help="--weights-by language: pseudo-positives pulling a group's weights to the pooled ones."
        ),
    ] = 20.0,
    threshold_shrink: Annotated[
        float,
        typer.Option(
            help="per_language: pull each language's threshold toward the pooled one, " + SHRINK_HELP
        ),
    ] = 0.0,
    stack_folds: Annotated[
        int, typer.Option(min=2, help="--method stacking: cross-fitting folds on the calib rows.")
    ] = 5,
    stack_c: Annotated[
        float, typer.Option(min=1e-6, help="--method stacking: inverse L2 regularisation (C).")
    ] = 1.0,
    stack_features: Annotated[list[str], typer.Option(help=STACK_FEATURES_HELP)] = [],  # noqa: B006
) -> None:
    """Combine ADE members (or impact-tagger runs, by token vote) into a run that `medsift predict` can use."""
    from medsift.cli._render import warn
    from medsift.cli._streams import prepare_output_dir
    from medsift.ensemble.ade import EnsembleOptions
    from medsift.ensemble.build import build_from_specs

    # every option named as an EnsembleOptions field goes there as given; tie is checked against --method first
    given = {k: v for k, v in locals().items() if k in EnsembleOptions.__dataclass_fields__ and k != "tie"}
    prepare_output_dir(output)
    options = EnsembleOptions(
        **{**given, "weights": parse_weights(weights), "grid": parse_grid(grid)},
    )
    options.stack_features = stack_features or None
    built = build_from_specs(members, output, options, per_seed=per_seed, calib_files=calib_file, tie=tie)
    if built.kind == "impacts-ensemble":
        typer.echo(f"tagger ensemble written to {built.path}")
        return
    for warning in built.warnings:
        warn(warning)
    typer.echo(built.report)
    typer.echo(f"ensemble saved to {output}", err=True)


def thresholds_cmd(
    run: Annotated[Path, typer.Argument(help="An ADE classifier (or LLM) run directory.")],
    mode: Annotated[str, typer.Option(help="global | tuned_global | per_language")] = "per_language",
    fallback: Annotated[str, typer.Option(help="mean | pooled | global")] = "mean",
    grid: Grid = "0.20:0.80:0.01",
    metric: Metric = "f1",
    min_positives: MinPositives = 5,
    shrink: Annotated[
        float,
        typer.Option(
            help="per_language: pull each language's threshold toward the pooled one by its support, "
            + SHRINK_HELP
        ),
    ] = 0.0,
) -> None:
    """Retune a classifier run's thresholds.json on its calib rows (never on the val rows)."""
    from rich.console import Console

    from medsift.ade.retune import retune_thresholds
    from medsift.cli._render import policy_table

    options = {"mode": mode, "fallback": fallback, "metric": metric, "min_positives": min_positives}
    policy, n_rows = retune_thresholds(run, grid=parse_grid(grid), shrink=shrink, **options)
    Console().print(policy_table(policy, f"thresholds of {run} (tuned on {n_rows} calib rows)"))


def histograms(
    source: Annotated[Path, typer.Argument(help="A probability file with labels, or a run directory.")],
    bins: Annotated[int, typer.Option(min=1, help="Equal-width bins over [0, 1].")] = 20,
    png: Annotated[Path | None, typer.Option(help="Also draw the histograms into this PNG.")] = None,
) -> None:
    """Per-language probability histograms of positives vs negatives and their overlap coefficient."""
    from rich.console import Console

    from medsift.cli._render import histogram_table
    from medsift.decision import probability_histograms
    from medsift.report.load import labelled_probabilities

    path, frame = labelled_probabilities(source)
    hists = probability_histograms(frame["p_ade"], frame["label"].astype(int), frame["language"], bins=bins)
    Console().print(histogram_table(path, hists))
    if png is not None:
        from medsift.io.atomic import atomic_write
        from medsift.report.figures import histogram_panels

        with atomic_write(png, "wb") as fh:
            fh.write(histogram_panels(hists, title=str(path)))
        typer.echo(f"wrote {png}", err=True)


def threshold_shift_cmd(
    run_a: Annotated[Path, typer.Argument(help="Run directory or thresholds.json")],
    run_b: Annotated[Path, typer.Argument(help="Run directory or thresholds.json")],
    drift: Annotated[
        float, typer.Option(min=0, help="Warn when a threshold moves at least this much.")
    ] = 0.1,
) -> None:
    """Thresholds of two runs side by side; warns about languages whose threshold drifted."""
    from rich.console import Console

    from medsift.cli._render import shift_table, warn
    from medsift.decision import threshold_shift
    from medsift.runs import read_thresholds

    frame = threshold_shift(read_thresholds(run_a), read_thresholds(run_b), drift=drift)
    Console().print(shift_table(frame, f"A = {run_a}   B = {run_b}"))
    for record in frame[frame["drift"]].itertuples(index=False):
        warn(
            f"{record.language}: threshold moved {record.shift:+.2f} ({record.threshold_a:.2f} -> "
            f"{record.threshold_b:.2f}); a tuned value that moves this much between fits is likely fitted noise "
            "(calibration drift): consider the fallback",
            color="yellow",
        )


def register(app: typer.Typer) -> None:
    app.command()(ensemble)
    app.command("thresholds")(thresholds_cmd)
    app.command()(histograms)
    app.command("threshold-shift")(threshold_shift_cmd)
