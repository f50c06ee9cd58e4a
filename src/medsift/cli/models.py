"""``medsift models``: list the offline model aliases and prepare (convert and cache) them."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from medsift.cli._quiet import silence_libraries


def _human(size: int | None) -> str:
    if size is None:
        return "-"
    return f"{size / 1e6:.0f} MB" if size < 1e9 else f"{size / 1e9:.2f} GB"


def register(app: typer.Typer) -> None:
    @app.command("models")
    def models_command(
        aliases: Annotated[
            list[str] | None, typer.Argument(help="Aliases to show or prepare (default: all).")
        ] = None,
        prepare: Annotated[
            bool, typer.Option("--prepare", help="Convert and cache the aliases not yet prepared.")
        ] = False,
        force: Annotated[
            bool, typer.Option("--force", help="With --prepare: convert again even if cached.")
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
        quiet: Annotated[
            bool, typer.Option("--quiet", "-q", help="With --prepare: no progress bars or timing lines.")
        ] = False,
    ) -> None:
        """List the offline model aliases (installed? prepared?) and optionally prepare them."""
        from rich.console import Console
        from rich.table import Table

        from medsift.models import ALIASES, PREFIX, alias_status, get_alias, prepare_model

        if quiet:
            silence_libraries()
        names = [get_alias(a).name for a in aliases] if aliases else list(ALIASES)
        console = Console(stderr=as_json)
        if prepare:
            for name in names:
                status = alias_status(name)
                if status.prepared and not force:
                    continue
                if not status.installed and not aliases:
                    console.print(f"[yellow]skipping {PREFIX}{name}[/]: {status.problem}")
                    continue
                start = time.perf_counter()
                path = prepare_model(name, force=force, progress=not quiet)
                if not quiet:
                    console.print(f"prepared {PREFIX}{name} in {time.perf_counter() - start:.1f} s → {path}")
        statuses = [alias_status(name) for name in names]
        if as_json:
            typer.echo(json.dumps([s.to_dict() for s in statuses], indent=2))
            return
        table = Table(title="offline models")
        for column in ("alias", "kind", "languages", "source", "installed", "prepared", "size"):
            table.add_column(column, no_wrap=column in ("alias", "source"))
        for s in statuses:
            table.add_row(
                PREFIX + s.alias,
                s.spec.kind,
                "multilingual" if "multilingual" in s.spec.languages else ",".join(s.spec.languages),
                f"{s.spec.package}=={s.spec.version}",
                "yes" if s.installed else "[red]no[/]",
                "yes" if s.prepared else "no",
                _human(s.size),
            )
        console.print(table)
        for s in statuses:
            if not s.installed:
                console.print(f"{PREFIX}{s.alias}: {s.problem}")
