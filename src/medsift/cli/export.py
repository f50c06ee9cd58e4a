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
            typer.Option(help="Also write an int8 model (faster on CPU; used by --backend onnx)."),
        ] = False,
        int8: Annotated[
            str,
            typer.Option(
                help="With --quantize: 'mixed' (default: q/k/v and feed-forward up-projections dynamic, the "
                "rest blockwise; near dynamic's speed, within ~0.005 of fp32), 'dynamic' (fastest; probabilities move by a few hundredths) or "
                "'blockwise' (int8 weights in blocks of 128 channels: within ~0.002 of fp32, less speed-up)."
            ),
        ] = "mixed",
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    ) -> None:
        """Export every seed of a run to ONNX (RUN_DIR/seed-N/onnx/), refusing if it disagrees with torch."""
        from medsift.engine.onnx import export_onnx

        if quiet:
            silence_libraries()
        for path in export_onnx(run_dir, quantize=int8 if quantize else False, quiet=quiet):
            typer.echo(str(path))
