"""``medsift export RUN_DIR [--quantize]``: ONNX models for the onnx backend, checked against torch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medsift.cli._quiet import silence_libraries


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        run_dir: Annotated[Path, typer.Argument(help="An ADE classifier or impact tagger run directory.")],
        quantize: Annotated[
            bool,
            typer.Option(help="Also write a dynamic int8 model (faster on CPU; used by --backend onnx)."),
        ] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    ) -> None:
        """Export every seed of a run to ONNX (RUN_DIR/seed-N/onnx/), refusing if it disagrees with torch."""
        from medsift.engine.onnx import export_onnx

        if quiet:
            silence_libraries()
        for path in export_onnx(run_dir, quantize=quantize, quiet=quiet):
            typer.echo(str(path))
