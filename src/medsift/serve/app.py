"""``create_app(run_dir)``: a FastAPI app that serves one trained run.

Endpoints: ``POST /v1/ade`` (ADE classifier runs), ``POST /v1/impacts`` (impact tagger runs), ``GET /health``,
``GET /v1/model`` (manifest, thresholds, limits) and the OpenAPI docs at ``/docs``. Concurrent requests are
micro-batched (:mod:`medsift.serve.batcher`). Bad input is answered with 422 (unparseable JSON, or pydantic's
message: empty text, not a string, text too long) or 413 (too many texts, or a body too large for any valid
request), never with a 500; :mod:`medsift.serve.errors` lists every case.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException

from medsift import __version__
from medsift.errors import MedsiftError
from medsift.runs import Run, RunManifest, read_json
from medsift.serve import errors
from medsift.serve.batcher import MicroBatcher
from medsift.serve.schemas import (
    AdeResponse,
    AdeResult,
    ImpactsResponse,
    ImpactsResult,
    SpanOut,
    request_models,
    with_ids,
)

ADE_KINDS = {"ade-classifier", "ade-ensemble"}
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~/:-])(?:/[^\s/,;:'\"()]+)+/([^\s/,;:'\"()]+)")


def without_paths(value: Any) -> Any:
    """``value`` with every absolute path cut to its file name: the service never shows the server's folders."""
    if isinstance(value, str):
        return _ABSOLUTE_PATH.sub(r"\1", value)
    if isinstance(value, dict):
        return {without_paths(k): without_paths(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_paths(v) for v in value]
    return value


def public_manifest(manifest: RunManifest) -> dict[str, Any]:
    """The manifest as ``/v1/model`` shows it: data files by name and SHA-256, no absolute path anywhere."""
    info = asdict(manifest)
    info["data"] = [{"file": Path(path).name, "sha256": digest} for path, digest in manifest.data.items()]
    return without_paths(info)


IMPACT_KINDS = {"impacts-tagger", "impacts-ensemble"}


def _refuse_outside_members(run: Run) -> None:
    from medsift.ensemble.ade import file_member_names

    outside = file_member_names(run.path)
    if outside:
        raise MedsiftError(
            f"members {', '.join(outside)} are probability files from another system: they have no model to "
            "score requests with; serve an ensemble of runs",
            file=run.path,
        )


def _ade_scorer(run: Run, backend: str):
    """Score requests with the run's predictor (a classifier, or an ensemble behind the same ``predict``),
    loaded once, here, through the run-kind registry."""
    from medsift.kinds import kind_of

    if run.kind == "ade-ensemble":
        _refuse_outside_members(run)
    classifier = kind_of(run).load(run, backend)
    if run.kind == "ade-ensemble":
        classifier.predict(["warm-up"], [""])  # loads every member now, not on the first request

    def score(items: list[tuple[str, str]]) -> list[AdeResult]:
        pred = classifier.predict([t for t, _ in items], [lang for _, lang in items])
        return [
            AdeResult(p_ade=float(p), label=int(y), threshold=float(t))
            for p, y, t in zip(pred.p_ade, pred.labels, pred.thresholds, strict=True)
        ]

    return score


def _impacts_scorer(run: Run, backend: str):
    from medsift.kinds import kind_of
    from medsift.scoring.impacts import spans_from_bio

    tagger = kind_of(run).load(run, backend)

    def score(items: list[tuple[str, Any]]) -> list[ImpactsResult]:
        # items are ("text", str) or ("tokens", list[str]); one request never mixes them
        out: list[ImpactsResult | None] = [None] * len(items)
        texts = [i for i, (kind, _) in enumerate(items) if kind == "text"]
        tokens = [i for i, (kind, _) in enumerate(items) if kind == "tokens"]
        if texts:
            for i, spans in zip(texts, tagger.tag_texts([items[i][1] for i in texts]), strict=True):
                out[i] = ImpactsResult(
                    spans=[
                        SpanOut(label=s.label, start=s.start_char, end=s.end_char, text=s.text) for s in spans
                    ]
                )
        if tokens:
            for i, tags in zip(tokens, tagger.tag([items[i][1] for i in tokens]), strict=True):
                words = items[i][1]
                spans = [
                    SpanOut(label=k, start=a, end=b, text=" ".join(words[a:b]))
                    for k, a, b in spans_from_bio(tags)
                ]
                out[i] = ImpactsResult(spans=spans, tags=list(tags))
        return out  # type: ignore[return-value]

    return score


def create_app(
    run_dir: str | Path,
    *,
    backend: str = "torch",
    max_batch: int = 64,
    max_chars: int = 20000,
    max_wait_ms: float = 5,
    body_timeout_s: float = 10.0,
) -> FastAPI:
    """The service for one run; the model is loaded here, once. ``max_batch`` caps texts per request,
    ``max_chars`` characters per text; bodies over :func:`errors.max_body_bytes` are refused unread."""
    run_dir = Path(run_dir)
    run = Run.load(run_dir)  # read once; the scorers get this object
    manifest = run.manifest
    AdeRequest, ImpactsRequest = request_models(max_chars, max_batch)
    max_body = errors.max_body_bytes(max_batch, max_chars)
    ade = (
        MicroBatcher(_ade_scorer(run, backend), max_items=max_batch, max_wait_ms=max_wait_ms)
        if manifest.kind in ADE_KINDS
        else None
    )
    impacts = (
        MicroBatcher(_impacts_scorer(run, backend), max_items=max_batch, max_wait_ms=max_wait_ms)
        if manifest.kind in IMPACT_KINDS
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        for batcher in (ade, impacts):
            if batcher is not None:
                await batcher.close()

    app = FastAPI(
        title="medsift",
        version=__version__,
        description=f"Serving run {run_dir.name} ({manifest.kind}).",
        lifespan=lifespan,
        max_body_size=max_body,
    )
    app.router.route_class = errors.SafeJsonRoute  # every unparseable body is a 422 (see errors.py)
    errors.install(app)
    app.add_middleware(errors.BodyTimeout, seconds=body_timeout_s)
    app.state.batchers = {"ade": ade, "impacts": impacts}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "kind": manifest.kind, "version": __version__}

    @app.get("/v1/model")
    async def model() -> dict[str, Any]:
        info: dict[str, Any] = {
            "run": run_dir.name,
            "version": __version__,
            "manifest": public_manifest(manifest),
            "backend": backend,
        }
        info["limits"] = {
            "max_batch": max_batch,
            "max_chars": max_chars,
            "max_wait_ms": max_wait_ms,
            "max_body_bytes": max_body,
            "body_timeout_s": body_timeout_s,
        }
        if manifest.kind == "ade-ensemble":
            spec = read_json(run_dir / "ensemble.json")
            info["thresholds"], info["members"] = spec["policy"], [m["name"] for m in spec["members"]]
        elif (run_dir / "thresholds.json").exists():
            info["thresholds"] = read_json(run_dir / "thresholds.json")
        return without_paths(info)

    async def score_ade(body: Any) -> AdeResponse:
        if ade is None:
            raise HTTPException(404, f"this run is '{manifest.kind}'; POST /v1/impacts instead")
        languages = body.languages or [""] * len(body.texts)
        results = await ade.submit(list(zip(body.texts, languages, strict=True)))
        return AdeResponse(results=with_ids(results, body.ids))

    async def score_impacts(body: Any) -> ImpactsResponse:
        if impacts is None:
            raise HTTPException(404, f"this run is '{manifest.kind}'; POST /v1/ade instead")
        if body.texts is not None:
            results = await impacts.submit([("text", t) for t in body.texts])
            return ImpactsResponse(unit="char", results=with_ids(results, body.ids))
        results = await impacts.submit([("tokens", t) for t in body.tokens])
        return ImpactsResponse(unit="token", results=with_ids(results, body.ids))

    # The request models are built per app (they carry max_chars), so the annotations are set as objects:
    # postponed string annotations could not be resolved by FastAPI from this function's scope.
    score_ade.__annotations__["body"] = AdeRequest
    score_impacts.__annotations__["body"] = ImpactsRequest
    app.post(
        "/v1/ade",
        response_model=AdeResponse,
        responses=errors.RESPONSES,
        summary="ADE probability, label and threshold per post",
    )(score_ade)
    app.post(
        "/v1/impacts",
        response_model=ImpactsResponse,
        responses=errors.RESPONSES,
        summary="Impact spans per post",
    )(score_impacts)
    return app
