"""``medsift train``, ``distill``, ``predict`` and ``configs``: the run-kind registry (:mod:`medsift.kinds`) picks the
trainer of a config and the predictor of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from medsift.cli._quiet import silence_libraries
from medsift.cli._render import prediction_notes, repair_line
from medsift.errors import MedsiftError

__all__ = ["register", "repair_line"]


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


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
OutputDir = Annotated[Path | None, typer.Option(help="Run directory (default: the config's output_dir).")]


def train(
    config: Annotated[
        str, typer.Argument(help="YAML config file, or the name of a shipped config (medsift configs).")
    ],
    set_: Annotated[
        list[str], typer.Option("--set", help="Override a config value: --set training.learning_rate=1e-5")
    ] = [],  # noqa: B006
    output_dir: OutputDir = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Empty the run directory first (a finished or unfinished medsift run) and train anew.",
        ),
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Train a model from a config. Started again after a kill, it resumes from the last checkpoint."""
    from medsift.kinds import train_into
    from medsift.training import is_main_process

    if quiet:
        silence_libraries()
    run_dir = train_into(config, run_dir=output_dir, overrides=set_, overwrite=overwrite, quiet=quiet)
    if is_main_process():  # under accelerate launch / torchrun every process gets here; one line is enough
        typer.echo(f"run saved to {run_dir}")


def distill(
    teacher: Annotated[
        Path, typer.Argument(help="The teacher: an ADE ensemble (or classifier) run directory.")
    ],
    config: Annotated[str, typer.Argument(help="The student's config (task ade): file or shipped name.")],
    set_: Annotated[
        list[str], typer.Option("--set", help="Override a config value (dotted key=value).")
    ] = [],  # noqa: B006
    output_dir: OutputDir = None,
    quiet: Quiet = False,
) -> None:
    """Train one student on a teacher's soft labels, so a single model carries an ensemble's accuracy."""
    from medsift.ensemble.teacher import distill_config
    from medsift.training import is_main_process

    if quiet:
        silence_libraries()
    run_dir = distill_config(teacher, config, overrides=set_, run_dir=output_dir, quiet=quiet)
    if is_main_process():
        typer.echo(f"student saved to {run_dir}")


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
        typer.Option(help="ADE: also write the probability file (id, language, p_ade per member and mean)."),
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
        int | None, typer.Option(help="Impact taggers and LLM runs: posts (LLM: prompts) per batch.", min=1)
    ] = None,
    member_probabilities: Annotated[
        list[str],
        typer.Option(
            metavar="NAME=PATH",
            help="ADE ensemble: probabilities of INPUT's rows for a member that is a probability file "
            "(an outside system has no model to run); matched by id, every id exactly once. Repeatable.",
        ),
    ] = [],  # noqa: B006
    as_json: Annotated[bool, typer.Option("--json", help="Print scores as JSON (labelled input).")] = False,
    quiet: Quiet = False,
) -> None:
    """Predict every row of INPUT (one prediction per input id, in input order); score it if labelled.

    ADE runs also say how many posts were longer than the model's max_length and which long-post policy
    (model.long_posts) handled them.
    """
    from medsift.kinds import kind_of
    from medsift.results import PredictionResult
    from medsift.runs import Run

    if quiet:
        silence_libraries()
    members = _member_files(member_probabilities)
    options = {"probabilities": probabilities, "spans_json": spans_json, "backend": backend}
    options |= {"decoding": decoding, "batch_size": batch_size, "member_probabilities": members}
    _check_paths(input_path, output, probabilities, spans_json, members, engine)
    run = Run.load(run_dir)
    kind_of(run)  # an unknown kind is refused before anything is read
    if engine == "ray" and run.kind != "ade-classifier":  # a classifier: its streaming entry's path
        result = _predict_on_ray(run_dir, run.manifest, input_path, output, probabilities, backend, quiet)
        result = PredictionResult.from_dict(result)
    else:
        result = _predict_local(run, input_path, output, quiet=quiet, engine=engine, **options)
    prediction_notes(run, result, output, as_json=as_json, quiet=quiet)


def _check_paths(input_path, output, probabilities, spans_json, members, engine) -> None:
    """Refuse an output that would overwrite an input, and ``-`` where it cannot stand."""
    from medsift.cli._streams import STDIO, prepare_output_dir, refuse_same_file

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


def _predict_local(run, input_path: Path, output: Path, *, quiet: bool, **options: Any):
    """The run kind's file predictor, with ``-`` as standard input / output."""
    from medsift.cli._streams import stdio_paths
    from medsift.kinds import predict_file as predict_run

    with stdio_paths(input_path, output, run.task) as (real_input, real_output):
        return predict_run(run, real_input, real_output, quiet=quiet or None, **options)


def configs() -> None:
    """List the shipped configs (use a name in place of a path: medsift train ade-e5-small-cpu)."""
    from medsift.config import describe_shipped_configs

    for name, task, method, model in describe_shipped_configs():
        typer.echo(f"{name:40s} task={task} method={method} model={model}")


def register(app: typer.Typer) -> None:
    for command in (train, distill, predict, configs):
        app.command()(command)
