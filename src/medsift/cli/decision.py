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


def _probability_rows(path: Path):
    """Labelled probability rows of a run (calib rows when present, else val) or of a probability file."""
    from medsift.io import read_probabilities

    if path.is_dir():
        calib = path / "calib_probabilities.csv"
        path = calib if calib.is_file() else path / "val_probabilities.csv"
    frame = read_probabilities(path)
    if "label" not in frame.columns or frame["label"].isna().any():
        raise MedsiftError("every row needs a label (histograms compare positives with negatives)", file=path)
    return path, frame


def _policy(path: Path):
    from medsift.decision import ThresholdPolicy
    from medsift.runs import read_json

    file = path / "thresholds.json" if path.is_dir() else path
    if not file.is_file():
        raise MedsiftError("no thresholds.json here", file=path)
    return ThresholdPolicy.from_dict(read_json(file))


def _policy_table(policy, title: str):
    from rich.table import Table

    table = Table(title=title)
    for column in ("language", "calib rows", "positives", "threshold", "source"):
        table.add_column(column)
    for lang, counts in sorted(policy.counts.items()):
        source = "tuned" if lang in policy.thresholds else f"fallback ({policy.fallback_rule})"
        table.add_row(
            lang, str(counts["rows"]), str(counts["positives"]), f"{policy.threshold_for(lang):.2f}", source
        )
    table.add_row("<unseen>", "", "", f"{policy.fallback:.2f}", f"fallback ({policy.fallback_rule})")
    return table


def _draw_histograms(hists: dict, png: Path, title: str) -> None:
    """One panel per language: positive and negative shares per bin, overlap in the panel title."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    from medsift.io.atomic import atomic_write

    fig, axes = plt.subplots(len(hists), 1, figsize=(6, 2.2 * len(hists)), squeeze=False)
    for ax, (lang, h) in zip(axes[:, 0], hists.items(), strict=True):
        centres, width = (h.edges[:-1] + h.edges[1:]) / 2, h.edges[1] - h.edges[0]
        ax.bar(centres, h.negative_share, width=width, alpha=0.5, label=f"negative ({h.n_negative})")
        ax.bar(centres, h.positive_share, width=width, alpha=0.5, label=f"positive ({h.n_positive})")
        ax.set_title(f"{lang}: overlap {h.overlap:.3f}", fontsize=9)
        ax.set_xlim(0, 1)
        ax.legend(fontsize=7)
    axes[-1, 0].set_xlabel("p_ade")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_write(png, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)


def register(app: typer.Typer) -> None:
    @app.command()
    def ensemble(
        members: Annotated[
            list[str],
            typer.Argument(
                help="Run directories, RUN_DIR@seed<N>, or val=PATH,calib=PATH[,name=NAME] files."
            ),
        ],
        output: Annotated[Path, typer.Option("--output", "-o", help="Ensemble run directory to create.")],
        method: Annotated[
            str,
            typer.Option(
                help="hard (majority of member votes at 0.5; the vote share is the ensemble's probability) | "
                "soft (mean probability) | weighted (weighted mean; weights from val F1 or --weights) | "
                "stacking (a logistic regression over the members' logits and --stack-features, fit and "
                "cross-fitted on the calib rows)"
            ),
        ] = "soft",
        weights: Annotated[str | None, typer.Option(help="Explicit weights, one per member: 1.0,0.7")] = None,
        weights_from: Annotated[
            str, typer.Option(help="weighted: val_f1 (member val F1 at 0.5) | equal")
        ] = "val_f1",
        per_seed: Annotated[
            bool, typer.Option(help="Make every seed of a classifier run its own member.")
        ] = False,
        thresholds: Annotated[
            str, typer.Option(help="global (0.5) | tuned_global | per_language")
        ] = "global",
        fallback: Annotated[
            str, typer.Option(help="Unseen / too-few-positive languages: mean | pooled | global")
        ] = "mean",
        grid: Annotated[str, typer.Option(help="Threshold grid START:STOP:STEP")] = "0.20:0.80:0.01",
        metric: Annotated[str, typer.Option(help="f1 | macro_f1")] = "f1",
        min_positives: Annotated[
            int,
            typer.Option(
                min=0,
                help="per_language: positive calib rows a language (or <lang>_cadec group) needs to get its own "
                "threshold; groups with fewer use the --fallback threshold.",
            ),
        ] = 5,
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
        tie: Annotated[
            str | None,
            typer.Option(
                help="--method hard: a row with exactly half the (weighted) votes. Default positive (favours "
                "recall: ADE is the rare class); negative (favours precision); mean_prob (the mean member "
                "probability, >= 0.5, decides)."
            ),
        ] = None,
        weights_by: Annotated[
            str,
            typer.Option(
                help="none | language: member weights per language group (a language, or <lang>_cadec), fit on "
                "the calib rows and shrunk toward the pooled weights by support; a language no calib row has "
                "(ja, fa, ...) goes to the members that know it (an n-gram run knows only its training languages)."
            ),
        ] = "none",
        weight_shrink: Annotated[
            float,
            typer.Option(
                help="--weights-by language: pseudo-positives pulling a group's weights to the pooled ones."
            ),
        ] = 20.0,
        threshold_shrink: Annotated[
            float,
            typer.Option(
                help="per_language: pull each language's threshold toward the pooled one, "
                "t = (n_pos * t_lang + K * t_pooled) / (n_pos + K); 0 = off."
            ),
        ] = 0.0,
        stack_folds: Annotated[
            int, typer.Option(min=2, help="--method stacking: cross-fitting folds on the calib rows.")
        ] = 5,
        stack_c: Annotated[
            float, typer.Option(min=1e-6, help="--method stacking: inverse L2 regularisation (C).")
        ] = 1.0,
        stack_features: Annotated[
            list[str],
            typer.Option(
                help="--method stacking: a member whose per-post features (feat__* columns, e.g. a GLiNER "
                "scorer's entity counts and maximum scores) join the regression; repeat for more."
            ),
        ] = [],  # noqa: B006
    ) -> None:
        """Combine ADE members (or impact-tagger runs, by token vote) into a run that `medsift predict` can use."""
        from medsift.cli._streams import prepare_output_dir

        prepare_output_dir(output)
        from medsift.impacts.ensemble import build_tagger_ensemble, is_impacts_run

        if members and all(is_impacts_run(m) for m in members):  # impact taggers vote token by token
            if method != "hard":
                raise MedsiftError("impact-tagger runs combine by a token-level vote: use --method hard")
            typer.echo(f"tagger ensemble written to {build_tagger_ensemble(members, output)}")
            return
        from medsift.ensemble.ade import EnsembleOptions, build_ensemble
        from medsift.ensemble.members import parse_member, read_member_probabilities, unique_names

        found = unique_names([m for spec in members for m in parse_member(spec, expand_seeds=per_seed)])
        if calib_file:
            if len(calib_file) != len(found):
                raise MedsiftError(
                    f"{len(calib_file)} --calib-file for {len(found)} members; give one per member"
                )
            for member, path in zip(found, calib_file, strict=True):
                member.calib_path, member.calib = path.resolve(), read_member_probabilities(path)
        if tie is not None and method != "hard":
            raise MedsiftError("--tie applies to --method hard only (soft and weighted votes have no ties)")
        options = EnsembleOptions(
            method=method,
            tie=tie or "positive",
            weights=parse_weights(weights),
            weights_from=weights_from,
            thresholds=thresholds,
            fallback=fallback,
            grid=parse_grid(grid),
            metric=metric,
            min_positives=min_positives,
            calibrate=calibrate,
            cross_fit=cross_fit,
            weights_by=weights_by,
            weight_shrink=weight_shrink,
            threshold_shrink=threshold_shrink,
            stack_folds=stack_folds,
            stack_c=stack_c,
            stack_features=stack_features or None,
        )
        spec = build_ensemble(found, output, options)
        for warning in spec["warnings"]:
            typer.secho(f"WARNING: {warning}", err=True, fg="red", bold=True)
        typer.echo((output / "report.md").read_text(encoding="utf-8"))
        typer.echo(f"ensemble saved to {output}", err=True)

    @app.command("thresholds")
    def thresholds_cmd(
        run: Annotated[Path, typer.Argument(help="An ADE classifier run directory.")],
        mode: Annotated[str, typer.Option(help="global | tuned_global | per_language")] = "per_language",
        fallback: Annotated[str, typer.Option(help="mean | pooled | global")] = "mean",
        grid: Annotated[str, typer.Option(help="Threshold grid START:STOP:STEP")] = "0.20:0.80:0.01",
        metric: Annotated[str, typer.Option(help="f1 | macro_f1")] = "f1",
        min_positives: Annotated[
            int,
            typer.Option(
                min=0,
                help="per_language: positive calib rows a language (or <lang>_cadec group) needs to get its own "
                "threshold; groups with fewer use the --fallback threshold.",
            ),
        ] = 5,
        shrink: Annotated[
            float,
            typer.Option(
                help="per_language: pull each language's threshold toward the pooled one by its support, "
                "t = (n_pos * t_lang + K * t_pooled) / (n_pos + K); 0 = off."
            ),
        ] = 0.0,
    ) -> None:
        """Retune a classifier run's thresholds.json on its calib rows (never on the val rows)."""
        from rich.console import Console

        from medsift.decision import threshold_groups, tune_thresholds
        from medsift.io import read_probabilities
        from medsift.runs import RunManifest, write_json

        if RunManifest.load(run).kind != "ade-classifier":
            raise MedsiftError(
                "thresholds retunes ADE classifier runs; ensembles tune at `medsift ensemble`", file=run
            )
        calib = run / "calib_probabilities.csv"
        if not calib.is_file():
            raise MedsiftError(
                "the run has no calib rows (calib_probabilities.csv); retrain with calib_fraction > 0",
                file=run,
            )
        rows = read_probabilities(calib)
        policy = tune_thresholds(
            rows["label"].astype(int).to_numpy(),
            rows["p_ade"].to_numpy(),
            threshold_groups(rows["id"].astype(str), rows["language"]),
            mode=mode,
            grid=parse_grid(grid),
            metric=metric,
            min_positives=min_positives,
            fallback=fallback,  # type: ignore[arg-type]
            shrink=shrink,
        )
        policy.notes.append(f"tuned on {len(rows)} calib rows of {calib}")
        write_json(run / "thresholds.json", policy.to_dict())
        from medsift.card import write_model_card

        write_model_card(run, RunManifest.load(run))  # the card shows the thresholds in use
        Console().print(_policy_table(policy, f"thresholds of {run} (tuned on {len(rows)} calib rows)"))

    @app.command()
    def histograms(
        source: Annotated[Path, typer.Argument(help="A probability file with labels, or a run directory.")],
        bins: Annotated[int, typer.Option(min=1, help="Equal-width bins over [0, 1].")] = 20,
        png: Annotated[Path | None, typer.Option(help="Also draw the histograms into this PNG.")] = None,
    ) -> None:
        """Per-language probability histograms of positives vs negatives and their overlap coefficient."""
        from rich.console import Console
        from rich.table import Table

        from medsift.decision import probability_histograms

        path, frame = _probability_rows(source)
        hists = probability_histograms(
            frame["p_ade"], frame["label"].astype(int), frame["language"], bins=bins
        )
        table = Table(
            title=f"{path}: overlap of positive and negative probabilities (0 = separable, 1 = identical)"
        )
        for column in ("language", "positives", "negatives", "overlap"):
            table.add_column(column)
        for lang, h in hists.items():
            overlap = "n/a (one class)" if h.overlap != h.overlap else f"{h.overlap:.3f}"
            table.add_row(lang, str(h.n_positive), str(h.n_negative), overlap)
        Console().print(table)
        if png is not None:
            _draw_histograms(hists, png, title=str(path))
            typer.echo(f"wrote {png}", err=True)

    @app.command("threshold-shift")
    def threshold_shift_cmd(
        run_a: Annotated[Path, typer.Argument(help="Run directory or thresholds.json")],
        run_b: Annotated[Path, typer.Argument(help="Run directory or thresholds.json")],
        drift: Annotated[
            float, typer.Option(min=0, help="Warn when a threshold moves at least this much.")
        ] = 0.1,
    ) -> None:
        """Thresholds of two runs side by side; warns about languages whose threshold drifted."""
        from rich.console import Console
        from rich.table import Table

        from medsift.decision import threshold_shift

        frame = threshold_shift(_policy(run_a), _policy(run_b), drift=drift)
        table = Table(title=f"A = {run_a}   B = {run_b}")
        for column in frame.columns:
            table.add_column(column)
        for record in frame.itertuples(index=False):
            cells = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in record]
            table.add_row(*cells, style="bold red" if record.drift else None)
        Console().print(table)
        for record in frame[frame["drift"]].itertuples(index=False):
            typer.secho(
                f"WARNING: {record.language}: threshold moved {record.shift:+.2f} "
                f"({record.threshold_a:.2f} -> {record.threshold_b:.2f}); a tuned value that moves this much "
                "between fits is likely fitted noise (calibration drift): consider the fallback",
                err=True,
                fg="yellow",
            )
