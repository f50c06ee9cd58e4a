"""The ``medsift`` command line: a thin layer over the library.

Every module in this package that defines ``register(app)`` adds its commands. Heavy imports
(torch, transformers) happen inside the command functions so that ``--help`` stays fast.
A :class:`~medsift.errors.MedsiftError` becomes one ``medsift: error: ...`` line and exit code 2.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from typing import Annotated

import typer

from medsift.errors import MedsiftError

app = typer.Typer(
    name="medsift",
    help="Health signals in social media: ADE detection (task 'ade') and impact span tagging (task 'impacts').",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        from medsift import __version__

        typer.echo(f"medsift {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the medsift version and exit."
        ),
    ] = False,
) -> None:
    """Health signals in social media: ADE detection (task 'ade') and impact span tagging (task 'impacts')."""


def _register_all() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


# `medsift --help` lists commands in the order of the work: train, predict, score, then the decision layer,
# deployment, reports and helpers; a command not named here (a new one) comes last.
WORKFLOW = (
    "train",
    "predict",
    "score",
    "cv",
    "ensemble",
    "thresholds",
    "distill",
    "export",
    "serve",
    "tag",
    "report",
    "compare",
    "histograms",
    "threshold-shift",
    "configs",
    "models",
)


def _command_name(info) -> str:
    return info.name or info.callback.__name__.replace("_", "-")


def _workflow_order() -> None:
    rank = {name: k for k, name in enumerate(WORKFLOW)}
    app.registered_commands.sort(key=lambda info: rank.get(_command_name(info), len(rank)))


_register_all()
_workflow_order()


def _command():
    """The click command of ``app``, every positional argument shown in capitals (RUN_DIR, INPUT, CONFIG)."""
    command = typer.main.get_command(app)
    for sub in getattr(command, "commands", {}).values():
        for param in sub.params:
            if param.param_type_name == "argument" and param.metavar is None:
                param.metavar = param.name.upper()
    return command


def _click_classes() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(ClickException, Abort) classes of every click in use: recent typer (0.29 here) bundles its own click
    (``typer._click``), whose exceptions are no subclasses of the ``click`` package's; older typer raised those."""
    usage: list[type] = []
    abort: list[type] = [typer.Abort]
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        usage.append(module.ClickException)
        if hasattr(module, "Abort"):
            abort.append(module.Abort)
    return tuple(usage), tuple(abort)


def _usage_line(exc: Exception) -> str:
    """Click's message as one line, with the command whose ``--help`` explains the usage."""
    message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return message


def _os_error_line(exc: OSError) -> str:
    """``PATH: reason`` for an OS error (unreadable input, unwritable output, a folder where a file goes)."""
    reason = " ".join((exc.strerror or str(exc) or type(exc).__name__).split())  # one line, always
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    return f"{' -> '.join(names)}: {reason}" if names else reason


def _fail(line: str, code: int = 2) -> None:
    print(f"medsift: error: {line}", file=sys.stderr)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: every mistake a user can make ends in one ``medsift: error:`` line, exit code 2.

    That covers medsift's own errors, click's usage errors (missing argument, bad option value, unknown
    option or command), OS errors (unreadable input, unwritable output) and input nested too deeply to parse.
    """
    usage, abort = _click_classes()
    # medsift's own bars and tables only: transformers' load reports (with raw ANSI codes) and its
    # "Loading weights" / "Writing model shards" bars stay silent unless the user asks for them.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if not sys.stdout.isatty():  # piped: rich would cut tables at 80 columns
        os.environ.setdefault("COLUMNS", "160")
    try:
        if (argv is None and len(sys.argv) == 1) or argv == []:
            argv = ["--help"]  # bare `medsift`: the help, exit code 0
        code = _command().main(args=argv, prog_name="medsift", standalone_mode=False)
        if code == 130:
            print("medsift: interrupted", file=sys.stderr)
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except MedsiftError as exc:
        _fail(exc.render())
    except KeyboardInterrupt:
        print("medsift: interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except BrokenPipeError:  # `medsift ... -o - | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except OSError as exc:
        _fail(_os_error_line(exc))
    except RecursionError:
        _fail("the input is nested too deeply to read (more levels of brackets than Python can parse)")
    except Exception as exc:
        if isinstance(exc, usage):
            _fail(_usage_line(exc), code=getattr(exc, "exit_code", 2) or 2)
        if isinstance(exc, abort):
            print("medsift: aborted", file=sys.stderr)
            sys.exit(1)
        raise
