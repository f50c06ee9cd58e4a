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
                help="With --quantize: 'smooth' (default: inputs of the LayerNorm-reading layers smoothed per "
                "channel, then dynamic int8 there and in the attention output, blockwise int8 in the narrowing "
                "layers), 'mixed' (the same without smoothing; attention output blockwise), 'dynamic' (fastest, "
                "least exact) or 'blockwise' (int8 weights in blocks of 128 channels: most exact, least speed-up)."
            ),
        ] = "smooth",
        calibration: Annotated[
            Path | None,
            typer.Option(
                help="Posts that measure activation ranges for --int8 smooth (an ADE posts file or a Task 7 "
                "token file, any format predict reads). Default: the run's training files, else built-in probes. "
                "Only with --quantize and --int8 smooth."
            ),
        ] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    ) -> None:
        """Export every seed of a run to ONNX (RUN_DIR/seed-N/onnx/), refusing if it disagrees with torch."""
        from medsift.engine.onnx import export_onnx

        if quiet:
            silence_libraries()
        for path in export_onnx(
            run_dir, quantize=int8 if quantize else False, quiet=quiet, calibration=calibration
        ):
            typer.echo(str(path))
        for note in _probe_fallbacks(run_dir):
            typer.secho(f"WARNING: {note}", err=True, fg="yellow")


def _probe_fallbacks(run_dir: Path) -> list[str]:
    """A warning per seed whose int8 calibration fell back to the built-in probe posts (few, generic)."""
    import json

    notes = []
    for report in sorted(run_dir.glob("seed-*/onnx/export.json")):
        source = json.loads(report.read_text(encoding="utf-8")).get("int8", {}).get("calibration", "")
        if "built-in probe posts" in source:
            notes.append(
                f"{report.parent.parent.name}: int8 calibration used {source} (the training files were not "
                "found); give real posts with --calibration for ranges that match your data"
            )
    return notes
