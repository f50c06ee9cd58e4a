"""The HTTP service: ``create_app(run_dir)`` (FastAPI) with micro-batching of concurrent requests."""

from __future__ import annotations

from medsift.serve.app import create_app

__all__ = ["create_app"]
