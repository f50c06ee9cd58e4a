"""The ``medsift`` command line: a thin layer over the library.

Every module in this package that defines ``register(app)`` adds its commands. Heavy imports
(torch, transformers) happen inside the command functions so that ``--help`` stays fast.
A :class:`~medsift.errors.MedsiftError` becomes one ``medsift: error: ...`` line and exit code 2.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from medsift.errors import MedsiftError

app = typer.Typer(
    name="medsift",
    help="Health signals in social media: ADE detection (task 'ade') and impact span tagging (task 'impacts').",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Health signals in social media: ADE detection (task 'ade') and impact span tagging (task 'impacts')."""


def _register_all() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_all()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app and turn user errors into one line."""
    try:
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except MedsiftError as exc:
        print(f"medsift: error: {exc.render()}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("medsift: interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise
