"""``medsift export RUN_DIR [--quantize]``: ONNX models for the onnx backend, checked against torch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        run_dir: Annotated[Path, typer.Argument(help="An ADE classifier run directory.")],
        quantize: Annotated[
            bool,
            typer.Option(help="Also write a dynamic int8 model (faster on CPU; used by --backend onnx)."),
        ] = False,
    ) -> None:
        """Export every seed of a run to ONNX (RUN_DIR/seed-N/onnx/), refusing if it disagrees with torch."""
        from medsift.engine.onnx import export_onnx

        for path in export_onnx(run_dir, quantize=quantize):
            typer.echo(str(path))
