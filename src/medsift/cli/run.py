"""``medsift train``, ``medsift predict`` and ``medsift configs``: dispatch on the config / the run's kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from medsift.cli._quiet import silence_libraries
from medsift.errors import MedsiftError


def repair_line(repairs: dict[str, Any], constrained: bool | None = None) -> str:
    """One line for the span parser's repair report: outputs repaired, then the count of each repair kind."""
    mode = "" if constrained is None else ("constrained" if constrained else "free") + " decoding: "
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(repairs.get("counts", {}).items())) or "none"
    return (
        f"{mode}{repairs['outputs_repaired']} of {repairs['outputs']} outputs needed repair "
        f"({repairs['repair_share']:.0%}); repairs: {kinds}"
    )


def _print_scores(result: dict[str, Any], *, stderr: bool = False) -> None:
    from rich.console import Console

    from medsift.cli import score as score_cli

    scores, console = result["scores"], Console(stderr=stderr)
    if result.get("task") == "ade":
        console.print(score_cli._ade_table(scores))
        return
    console.print(
        score_cli._span_table("strict entity F1 (seqeval default)", scores["strict"], ("support",), 4)
    )
    console.print(
        score_cli._span_table(
            "relaxed token-overlap F1", scores["relaxed"], ("overlap", "gold_tokens", "pred_tokens"), 3
        )
    )


def _member_files(items: list[str]) -> dict[str, Path] | None:
    """``--member-probabilities NAME=PATH`` options as a mapping (None when none was given)."""
    if not items:
        return None
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise MedsiftError(f"--member-probabilities {item!r}: expected NAME=PATH")
        out[name.strip()] = Path(path.strip())
    return out


def _truncation_lines(run_dir: Path, kind: str, result: dict[str, Any]) -> list[str]:
    """Tell the user how many posts did not fit the model and which long-post policy handled them."""
    from medsift.ade.config import truncation_note

    entries = result.get("truncation")
    if entries is None and kind == "ade-classifier" and "truncated" in result:
        from medsift.config import read_yaml

        saved = read_yaml(run_dir / "config.yaml")
        if saved.get("method") == "ngram":  # reads every post whole: nothing to report
            return []
        model = saved.get("model", {})
        entries = [
            {
                "posts": result["truncated"],
                "max_length": model.get("max_length", 256),
                "policy": model.get("long_posts", "head_tail"),
            }
        ]
    rows = result.get("rows", "?")
    return [
        truncation_note(
            e["posts"], rows, e["max_length"], e["policy"], e.get("run") if len(entries) > 1 else None
        )
        for e in entries or []
    ]


def _report_prediction(
    run_dir: Path, manifest: Any, result: dict[str, Any], output: Path, *, as_json: bool, quiet: bool
) -> None:
    """What ``predict`` tells the user: rows written, blank and long posts, fallbacks (stderr), then scores.

    ``-q`` silences the notes; scores go to stdout, or to stderr when stdout carries the submission (``-o -``).
    """
    to_stdout = output != Path("-")
    if not quiet:
        where = "standard output" if not to_stdout else str(output)
        typer.echo(f"wrote {where} ({result.get('rows', '?')} rows)", err=True)
        if result.get("resumed_rows"):
            typer.echo(
                f"resumed a killed run: {result['resumed_rows']} rows it had scored were kept, not scored again",
                err=True,
            )
        if result.get("blank_posts"):
            typer.echo(
                f"{result['blank_posts']} blank post(s) (empty or only whitespace) were predicted like any "
                "other row (the model sees no text for them)",
                err=True,
            )
        if result.get("repairs"):
            typer.echo(repair_line(result["repairs"], result.get("constrained")), err=True)
        for line in _truncation_lines(run_dir, manifest.kind, result):
            typer.echo(line, err=True)
        if result.get("fallback_rows"):
            typer.echo(
                f"{result['fallback_rows']} rows of group(s) {', '.join(result['fallback_groups'])} have no tuned "
                "threshold of their own and used the fallback",
                err=True,
            )
    if result.get("scores") and (to_stdout or not quiet):
        if as_json:
            typer.echo(json.dumps(result["scores"], indent=2, default=float), err=not to_stdout)
        else:
            _print_scores({**result, "task": manifest.task}, stderr=not to_stdout)


def _predict_on_ray(
    run_dir: Path,
    manifest: Any,
    shards: Path,
    out_dir: Path,
    probabilities: Path | None,
    backend: str | None,
    quiet: bool,
) -> dict[str, Any]:
    """``--engine ray`` for an ensemble, tagger or LLM run: each shard through the kind's own predictor."""
    from medsift.engine.ray_engine import predict_shards_ray
    from medsift.kinds import predict_run_file

    if probabilities is not None:
        raise MedsiftError("--probabilities is not used with --engine ray (each shard gets its own file)")
    return predict_shards_ray(
        run_dir,
        shards,
        out_dir,
        quiet=quiet,
        backend=backend or "torch",
        probabilities=manifest.task == "ade",
        predictor=predict_run_file,
        task=manifest.task,
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        config: Annotated[
            str, typer.Argument(help="YAML config file, or the name of a shipped config (medsift configs).")
        ],
        set_: Annotated[
            list[str],
            typer.Option("--set", help="Override a config value: --set training.learning_rate=1e-5"),
        ] = [],  # noqa: B006
        output_dir: Annotated[
            Path | None, typer.Option(help="Run directory (default: the config's output_dir).")
        ] = None,
        overwrite: Annotated[
            bool,
            typer.Option(
                "--overwrite",
                help="Empty the run directory first (a finished or unfinished medsift run) and train anew.",
            ),
        ] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    ) -> None:
        """Train a model from a config. Started again after a kill, it resumes from the last checkpoint."""
        from medsift.config import check_data_files, load_config
        from medsift.training import is_main_process

        if quiet:
            silence_libraries()
        cfg = load_config(config, set_)  # validated (schema, value ranges) before anything is written
        check_data_files(cfg, config)
        from medsift.kinds import trainer_for
        from medsift.runs import locked_run_dir

        trainer = trainer_for(cfg.task, cfg.method)

        with locked_run_dir(output_dir or Path(cfg.output_dir), overwrite=overwrite) as run_dir:
            run_dir = trainer(cfg, run_dir=run_dir, quiet=quiet)
        if (
            is_main_process()
        ):  # under accelerate launch / torchrun every process gets here; one line is enough
            typer.echo(f"run saved to {run_dir}")

    @app.command()
    def distill(
        teacher: Annotated[
            Path, typer.Argument(help="The teacher: an ADE ensemble (or classifier) run directory.")
        ],
        config: Annotated[str, typer.Argument(help="The student's config (task ade): file or shipped name.")],
        set_: Annotated[
            list[str], typer.Option("--set", help="Override a config value (dotted key=value).")
        ] = [],  # noqa: B006
        output_dir: Annotated[
            Path | None, typer.Option(help="Run directory (default: the config's output_dir).")
        ] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    ) -> None:
        """Train one student on a teacher's soft labels, so a single model carries an ensemble's accuracy."""
        from medsift.config import check_data_files, load_config
        from medsift.ensemble.teacher import distill
        from medsift.runs import locked_run_dir
        from medsift.training import is_main_process

        if quiet:
            silence_libraries()
        cfg = load_config(config, set_)
        if (cfg.task, cfg.method) != ("ade", "encoder"):
            raise MedsiftError(
                "distillation trains an ADE encoder: the student config needs task: ade, method: encoder"
            )
        check_data_files(cfg, config)
        with locked_run_dir(output_dir or Path(cfg.output_dir)) as run_dir:
            run_dir = distill(cfg, teacher, run_dir=run_dir, quiet=quiet)
        if is_main_process():
            typer.echo(f"student saved to {run_dir}")

    @app.command()
    def predict(
        run_dir: Annotated[Path, typer.Argument(help="A run directory (medsift train / medsift ensemble).")],
        input_path: Annotated[
            Path,
            typer.Argument(
                metavar="INPUT",
                help="Official CSV, or .csv/.jsonl/.json/.txt/.parquet with text; impact taggers also read "
                "CoNLL and Parquet with tokens. Classifier and tagger runs read it in chunks (any size).",
            ),
        ],
        output: Annotated[Path, typer.Option("--output", "-o", help="Submission file to write.")],
        probabilities: Annotated[
            Path | None,
            typer.Option(
                help="ADE: also write the probability file (id, language, p_ade per member and mean)."
            ),
        ] = None,
        spans_json: Annotated[
            Path | None,
            typer.Option(
                help="Impacts: also write spans as JSON (taggers: character offsets for raw text; LLM runs: "
                "each post's raw answers, tags and the parser's repair report)."
            ),
        ] = None,
        backend: Annotated[
            str | None,
            typer.Option(
                help="ADE classifiers and impact taggers (and their ensembles): torch (default) or onnx "
                "(after medsift export of each run)."
            ),
        ] = None,
        engine: Annotated[
            str | None,
            typer.Option(
                help="local (default) or ray: INPUT and -o are folders of shards, scored on a local Ray instance "
                "(every run kind; classifier shards keep their format, other kinds write <shard>.csv)."
            ),
        ] = None,
        decoding: Annotated[
            str | None,
            typer.Option(
                help="Impact LLM runs: constrained or free decoding, overriding the run's decoding.constrained "
                "(free is the papers' baseline)."
            ),
        ] = None,
        batch_size: Annotated[
            int | None,
            typer.Option(help="Impact taggers and LLM runs: posts (LLM: prompts) per batch.", min=1),
        ] = None,
        member_probabilities: Annotated[
            list[str],
            typer.Option(
                metavar="NAME=PATH",
                help="ADE ensemble: probabilities of INPUT's rows for a member that is a probability file "
                "(an outside system has no model to run); matched by id, every id exactly once. Repeatable.",
            ),
        ] = [],  # noqa: B006
        as_json: Annotated[
            bool, typer.Option("--json", help="Print scores as JSON (labelled input).")
        ] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    ) -> None:
        """Predict every row of INPUT (one prediction per input id, in input order); score it if labelled.

        ADE runs also say how many posts were longer than the model's max_length and which long-post policy
        (model.long_posts) handled them.
        """
        from medsift.cli._streams import STDIO, prepare_output_dir, refuse_same_file, stdio_paths
        from medsift.kinds import kind_of
        from medsift.kinds import predict_file as predict_run
        from medsift.runs import Run

        if quiet:
            silence_libraries()
        members = _member_files(member_probabilities)
        extra = {"--probabilities": probabilities, "--spans-json": spans_json}
        if STDIO in extra.values() or (engine == "ray" and STDIO in (input_path, output)):
            raise MedsiftError("only -o may be '-' (standard output), and not with --engine ray")
        if engine == "ray":  # INPUT and -o are folders of shards
            if input_path.resolve() == output.resolve():
                raise MedsiftError(
                    "-o is the folder of input shards; write the outputs to another folder", file=output
                )
            prepare_output_dir(output)
        else:
            refuse_same_file([input_path, *(members or {}).values()], {"-o": output, **extra})
        run = Run.load(run_dir)
        kind_of(run)  # an unknown kind is refused before anything is read
        manifest = run.manifest
        if engine == "ray" and manifest.kind != "ade-classifier":  # a classifier: its streaming entry's path
            result = _predict_on_ray(run_dir, manifest, input_path, output, probabilities, backend, quiet)
            _report_prediction(run_dir, manifest, result, output, as_json=as_json, quiet=quiet)
            return
        with stdio_paths(input_path, output, manifest.task) as (real_input, real_output):
            result = predict_run(
                run,
                real_input,
                real_output,
                probabilities=probabilities,
                spans_json=spans_json,
                backend=backend,
                engine=engine,
                decoding=decoding,
                batch_size=batch_size,
                member_probabilities=members,
                quiet=quiet or None,
            )
        _report_prediction(run_dir, manifest, result, output, as_json=as_json, quiet=quiet)

    @app.command()
    def configs() -> None:
        """List the shipped configs (use a name in place of a path: medsift train ade-e5-small-cpu)."""
        from medsift.config import read_yaml, shipped_configs

        for name, path in sorted(shipped_configs().items()):
            raw = read_yaml(path)
            model = (raw.get("model") or {}).get("name")
            if raw.get("method") == "ensemble":  # a config that trains several members
                model = "+".join(
                    (m.get("model") or {}).get("name", m.get("method", "?"))
                    for m in raw.get("members", {}).values()
                )
            typer.echo(
                f"{name:40s} task={raw.get('task')} method={raw.get('method', 'encoder')} model={model}"
            )
