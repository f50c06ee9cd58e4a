"""How the service answers malformed requests: always a 4xx with a message, never a 500.

| what is wrong | answer |
| --- | --- |
| body larger than ``max_body_bytes`` | 413 ``Content Too Large`` (plain text: Starlette's body limit, set with
  FastAPI's ``max_body_size``), before the body is read past the limit |
| more posts than ``max_batch`` | 413, counted on the parsed JSON before any post is validated |
| body not JSON: syntax error, invalid UTF-8, nested too deeply, a number too long to convert | 422 |
| JSON of the wrong shape: missing/unknown field, empty/too long/non-string text, lone surrogate | 422 |

FastAPI's own answers would be 400 for the third row (its body parser turns any non-``JSONDecodeError``
into "There was an error parsing the body") and a 500 for a lone surrogate (its 422 handler echoes the
input, which cannot be encoded as UTF-8). Here the 422 never echoes the input (a 1 MB post is not sent
back either), and unencodable characters in a field name are shown escaped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from medsift.serve.schemas import TooManyPosts

UNICODE = (
    "text is not valid Unicode (it contains a lone surrogate escape such as \\ud800 that no UTF-8 text "
    "can hold); send UTF-8 text"
)


# What OpenAPI (/docs) says about the refusals of the two scoring endpoints.
RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"description": "More posts than max_batch, or a body larger than max_body_bytes (see /v1/model)."},
    422: {
        "description": "Body not JSON (syntax, invalid UTF-8, nested too deeply) or not the request schema "
        "(missing/unknown field, empty, too long or non-string text, lone surrogate). detail: a list of "
        "{type, loc, msg}; the input is never echoed."
    },
}


def max_body_bytes(max_batch: int, max_chars: int) -> int:
    """The largest body a valid request can need: every post at ``max_chars``, each character written as
    a ``\\uXXXX\\uXXXX`` surrogate pair (12 bytes, what ``json.dumps`` does for an emoji), plus slack."""
    return max_batch * (12 * max_chars + 64) + 65536


class _JsonRequest(Request):
    """A request whose ``json()`` raises ``JSONDecodeError`` (FastAPI's 422 path) for every unparseable
    body, not only for syntax errors: invalid UTF-8, nesting too deep for the parser, overlong integers."""

    async def json(self) -> Any:
        if not hasattr(self, "_medsift_json"):
            body = await self.body()
            try:
                self._medsift_json = json.loads(body)
            except json.JSONDecodeError:
                raise
            except UnicodeDecodeError as exc:
                raise json.JSONDecodeError(
                    f"body is not valid UTF-8 (byte 0x{body[exc.start]:02x} at offset {exc.start})",
                    "",
                    exc.start,
                ) from exc
            except RecursionError as exc:
                raise json.JSONDecodeError("body is nested too deeply", "", 0) from exc
            except ValueError as exc:  # e.g. an integer literal over Python's 4300-digit limit
                raise json.JSONDecodeError(f"body cannot be read: {exc}", "", 0) from exc
        return self._medsift_json


class SafeJsonRoute(APIRoute):
    """An ``APIRoute`` that parses bodies with :class:`_JsonRequest` (FastAPI's custom-route hook)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(_JsonRequest(request.scope, request.receive))

        return route


def _printable(value: Any) -> Any:
    """``value`` with every string made encodable (lone surrogates become ``\\udXXX`` text)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value if isinstance(value, int | float) or value is None else _printable(str(value))


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "string_unicode":
        return UNICODE
    if error["type"] == "model_attributes_type" and tuple(error.get("loc", ())) == ("body",):
        return (
            'the body must be a JSON object such as {"texts": ["..."]}, '
            "sent with content-type: application/json"
        )
    if error["type"] == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "")
        return f"body is not valid JSON: {reason}" if not str(reason).startswith("body ") else str(reason)
    return str(error.get("msg", "invalid request"))


def validation_detail(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """pydantic's errors without ``input``/``ctx``/``url``: type, location and message, all encodable."""
    return [
        {
            "type": _printable(e.get("type", "")),
            "loc": [_printable(part) for part in e.get("loc", ())],
            "msg": _printable(_message(e)),
        }
        for e in errors
    ]


def install(app: FastAPI) -> None:
    """Register the 422/413 answers above on ``app``."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_detail(list(exc.errors()))}, status_code=422)

    @app.exception_handler(TooManyPosts)
    async def too_many(request: Request, exc: TooManyPosts) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=413)


class BodyTimeout:
    """ASGI middleware: a body not received in full within ``seconds`` of the request's start gets a 408.

    Without it a client that sends less than its ``Content-Length`` (or trickles the body a byte at a time)
    holds a connection and a worker forever. The limit covers the body only; once it is in, nothing is timed.
    """

    def __init__(self, app: Any, seconds: float):
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        complete = False

        async def timed_receive() -> dict:
            nonlocal complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
            except TimeoutError:
                raise HTTPException(
                    408, f"the request body did not arrive within {self.seconds:g} s (check Content-Length)"
                ) from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed_receive, send)
