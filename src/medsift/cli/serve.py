"""``medsift serve RUN_DIR [--host --port]``: the HTTP service (FastAPI + uvicorn) for one trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        run_dir: Annotated[
            Path,
            typer.Argument(
                help="An ADE classifier or impact tagger run directory, or an ensemble of either."
            ),
        ],
        host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 exposes it).")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
        backend: Annotated[str, typer.Option(help="torch, or onnx (after medsift export).")] = "torch",
        max_batch: Annotated[int, typer.Option(min=1, help="Most posts in one request (more: 413).")] = 64,
        max_chars: Annotated[
            int,
            typer.Option(
                min=1,
                help="Longest post in characters (longer: 422). It also sets the body limit, max_batch x "
                "(12 x max_chars + 64) + 65536 bytes (GET /v1/model: max_body_bytes); a larger body: 413.",
            ),
        ] = 20000,
        max_wait_ms: Annotated[
            float, typer.Option(min=0, help="How long a request waits for others to share its model call.")
        ] = 5.0,
        body_timeout: Annotated[
            float,
            typer.Option(
                min=0,
                help="Seconds a request may take to send its body (a short or trickled body gets a 408); 0: no limit.",
            ),
        ] = 10.0,
    ) -> None:
        """Serve a run over HTTP: POST /v1/ade or /v1/impacts, GET /health, /v1/model, docs at /docs."""
        import uvicorn

        from medsift.serve import create_app

        web = create_app(
            run_dir,
            backend=backend,
            max_batch=max_batch,
            max_chars=max_chars,
            max_wait_ms=max_wait_ms,
            body_timeout_s=body_timeout,
        )
        uvicorn.run(web, host=host, port=port, log_level="info")
