"""The CLI's one renderer: what a command prints for the library's results (score tables, threshold policies,
what ``predict`` tells the user). The library returns numbers; only this module turns them into text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

STRICT = "strict entity F1 (seqeval default)"
RELAXED = "relaxed token-overlap F1"


def ade_table(scores: dict):
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


def span_table(title: str, block: dict, counts: tuple[str, ...], digits: int):
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


def print_scores(task: str, scores: dict, *, stderr: bool = False, official_titles: bool = False) -> None:
    """Score tables of either task; ``official_titles`` (``medsift score``) names the task and the rounding."""
    from rich.console import Console

    console = Console(stderr=stderr)
    if task == "ade":
        console.print(ade_table(scores))
        return
    strict = f"Task 7 (impacts): {STRICT}" if official_titles else STRICT
    relaxed = f"Task 7 (impacts): {RELAXED}, rounded as the official script" if official_titles else RELAXED
    console.print(span_table(strict, scores["strict"], ("support",), 4))
    console.print(span_table(relaxed, scores["relaxed"], ("overlap", "gold_tokens", "pred_tokens"), 3))
    if official_titles:
        console.print(f"{scores['sequences']} sequences")


def policy_table(policy, title: str):
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


def histogram_table(path: Path, hists: dict):
    from rich.table import Table

    table = Table(
        title=f"{path}: overlap of positive and negative probabilities (0 = separable, 1 = identical)"
    )
    for column in ("language", "positives", "negatives", "overlap"):
        table.add_column(column)
    for lang, h in hists.items():
        overlap = "n/a (one class)" if h.overlap != h.overlap else f"{h.overlap:.3f}"
        table.add_row(lang, str(h.n_positive), str(h.n_negative), overlap)
    return table


def shift_table(frame, title: str):
    from rich.table import Table

    table = Table(title=title)
    for column in frame.columns:
        table.add_column(column)
    for record in frame.itertuples(index=False):
        cells = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in record]
        table.add_row(*cells, style="bold red" if record.drift else None)
    return table


def repair_line(repairs: dict[str, Any], constrained: bool | None = None) -> str:
    """One line for the span parser's repair report: outputs repaired, then the count of each repair kind."""
    mode = "" if constrained is None else ("constrained" if constrained else "free") + " decoding: "
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(repairs.get("counts", {}).items())) or "none"
    return (
        f"{mode}{repairs['outputs_repaired']} of {repairs['outputs']} outputs needed repair "
        f"({repairs['repair_share']:.0%}); repairs: {kinds}"
    )


def warn(line: str, color: str = "red") -> None:
    typer.secho(f"WARNING: {line}", err=True, fg=color, bold=color == "red")


def _truncation_lines(run, result) -> list[str]:
    """How many posts did not fit the model and which long-post policy handled them."""
    from medsift.ade.config import truncation_note

    entries = result.truncation
    if entries is None and run.kind == "ade-classifier" and result.truncated is not None:
        if run.method == "ngram":  # reads every post whole: nothing to report
            return []
        model = run.config["model"]  # the saved config: every default filled in
        entries = [
            {"posts": result.truncated, "max_length": model["max_length"], "policy": model["long_posts"]}
        ]
    rows = "?" if result.rows is None else result.rows
    return [
        truncation_note(
            e["posts"], rows, e["max_length"], e["policy"], e.get("run") if len(entries) > 1 else None
        )
        for e in entries or []
    ]


def prediction_notes(run, result, output: Path, *, as_json: bool, quiet: bool) -> None:
    """What ``predict`` tells the user of a :class:`medsift.results.PredictionResult`: rows written, blank and
    long posts, fallbacks (stderr), then scores.

    ``-q`` silences the notes; scores go to stdout, or to stderr when stdout carries the submission (``-o -``).
    """
    import json

    to_stdout = output != Path("-")
    if not quiet:
        where = "standard output" if not to_stdout else str(output)
        lines = [f"wrote {where} ({'?' if result.rows is None else result.rows} rows)"]
        if result.resumed_rows:
            lines.append(
                f"resumed a killed run: {result.resumed_rows} rows it had scored were kept, not scored again"
            )
        if result.blank_posts:
            lines.append(
                f"{result.blank_posts} blank post(s) (empty or only whitespace) were predicted like any "
                "other row (the model sees no text for them)"
            )
        if result.repairs:
            lines.append(repair_line(result.repairs, result.constrained))
        lines += _truncation_lines(run, result)
        if result.fallback_rows:
            lines.append(
                f"{result.fallback_rows} rows of group(s) {', '.join(result.fallback_groups)} have no tuned "
                "threshold of their own and used the fallback"
            )
        for line in lines:
            typer.echo(line, err=True)
    if result.scores and (to_stdout or not quiet):
        if as_json:
            typer.echo(json.dumps(result.scores, indent=2, default=float), err=not to_stdout)
        else:
            print_scores(run.task, result.scores, stderr=not to_stdout)
