"""The HTTP service on tiny trained runs: every endpoint, every malformed-request class (413/422, never a
500, input never echoed), odd-but-valid posts (one result per text, in order), and micro-batching."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from test_ade import NEG, POS, make_ade_csv, tiny_config


@pytest.fixture(scope="module")
def ade_run(tiny_bert: Path, tmp_path_factory) -> Path:
    from medsift.ade.train import train

    tmp = tmp_path_factory.mktemp("serve")
    config = tiny_config(
        tiny_bert, make_ade_csv(tmp / "train.csv"), tmp / "run", training={"num_train_epochs": 2}
    )
    return train(config, quiet=True)


@pytest.fixture(scope="module")
def app(ade_run: Path):
    from medsift.serve import create_app

    return create_app(ade_run, max_batch=4, max_chars=200, max_wait_ms=20)


@pytest.fixture(scope="module")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


def test_health_model_and_openapi(client, ade_run: Path):
    from medsift import __version__

    health = client.get("/health").json()
    assert health == {"status": "ok", "kind": "ade-classifier", "version": __version__}
    info = client.get("/v1/model").json()
    assert info["manifest"]["kind"] == "ade-classifier" and info["manifest"]["seeds"] == [7]
    assert info["version"] == __version__
    assert info["limits"] == {
        "max_batch": 4,
        "max_chars": 200,
        "max_wait_ms": 20,
        "max_body_bytes": 4 * (12 * 200 + 64) + 65536,
        "body_timeout_s": 10.0,
    }
    assert "thresholds" in info
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/ade", "/v1/impacts", "/health", "/v1/model"} <= set(paths)
    for path in ("/v1/ade", "/v1/impacts"):  # the refusals are documented
        assert {"200", "413", "422"} <= set(paths[path]["post"]["responses"])
    assert client.get("/docs").status_code == 200


def test_model_info_shows_file_names_and_hashes_never_absolute_paths(client, ade_run: Path):
    from medsift.runs import RunManifest

    manifest = RunManifest.load(ade_run)
    info = client.get("/v1/model").json()
    expected = [{"file": Path(p).name, "sha256": h} for p, h in manifest.data.items()]
    assert info["manifest"]["data"] == expected and expected
    text = json.dumps(info)
    assert str(ade_run.parent) not in text and "/tmp/" not in text, text


def test_results_echo_the_request_ids_in_order(client):
    texts = ["I got a rash from it", "fine today", "headache again"]
    ids = ["z9", "a1", "m5"]
    got = client.post("/v1/ade", json={"texts": texts, "ids": ids}).json()["results"]
    assert [r["id"] for r in got] == ids
    alone = [client.post("/v1/ade", json={"texts": [t]}).json()["results"][0] for t in texts]
    assert [r["p_ade"] for r in got] == pytest.approx([r["p_ade"] for r in alone], abs=1e-6)
    assert [r["id"] for r in client.post("/v1/ade", json={"texts": texts}).json()["results"]] == [
        "0",
        "1",
        "2",
    ]
    for bad in (["a", "b"], ["a", "a", "b"], ["x" * 300, "b", "c"], [1, 2, 3]):
        answer = client.post("/v1/ade", json={"texts": texts, "ids": bad})
        assert answer.status_code == 422, bad


def test_a_short_or_slow_body_times_out_with_408():
    """A client that promises more bytes than it sends (Content-Length) gets a 408, not an open connection."""
    import socket
    import threading
    import time

    import uvicorn
    from fastapi import FastAPI

    from medsift.serve import errors

    app = FastAPI()
    app.router.route_class = errors.SafeJsonRoute

    @app.post("/echo")
    async def echo(body: dict) -> dict:
        return body

    app.add_middleware(errors.BodyTimeout, seconds=0.5)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        request = b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":'
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            start = time.monotonic()
            sock.sendall(request)
            answer = b""
            while b"within" not in answer and (chunk := sock.recv(4096)):
                answer += chunk
            assert time.monotonic() - start < 4
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"did not arrive within 0.5 s" in answer
        full = b'{"a": 1}'
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(request.split(b"Content-Length")[0] + b"Content-Length: 8\r\n\r\n" + full)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        server.should_exit = True
        thread.join(5)


def test_ade_scores_equal_the_python_api(client, ade_run: Path):
    from medsift.ade import AdeClassifier

    texts = [POS[0], NEG[0], POS[3]]
    response = client.post("/v1/ade", json={"texts": texts, "languages": ["en", "en", "ja"]})
    assert response.status_code == 200
    results = response.json()["results"]
    expected = AdeClassifier.from_run(ade_run, device="cpu").predict(texts, ["en", "en", "ja"])
    np.testing.assert_allclose([r["p_ade"] for r in results], expected.p_ade, atol=1e-6)
    assert [r["label"] for r in results] == expected.labels.tolist()
    assert [r["threshold"] for r in results] == pytest.approx(expected.thresholds.tolist())


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"texts": ["a"] * 5}, 413, "5 posts in one request; the limit is 4"),
        ({"texts": ["x" * 201]}, 422, "at most 200 characters"),
        ({"texts": ["   "]}, 422, "text is empty"),
        ({"texts": [42]}, 422, "valid string"),
        ({"texts": []}, 422, "at least 1 item"),
        ({"texts": "one post"}, 422, "valid list"),
        ({"texts": ["a", "b"], "languages": ["en"]}, 422, "1 languages for 2 texts"),
        ({"posts": ["a"]}, 422, "Field required"),
    ],
)
def test_bad_requests_get_a_clear_4xx_never_a_500(client, body, status, message):
    response = client.post("/v1/ade", json=body)
    assert response.status_code == status
    assert message in str(response.json()["detail"])


def test_malformed_json_and_wrong_endpoint(client):
    response = client.post("/v1/ade", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    response = client.post("/v1/impacts", json={"texts": ["a"]})
    assert response.status_code == 404 and "POST /v1/ade" in response.json()["detail"]


JSON = {"content-type": "application/json"}


def _post_raw(client, path: str, body: bytes, headers: dict | None = None):
    return client.post(path, content=body, headers=JSON if headers is None else headers)


def _detail_text(response) -> str:
    """The answer decoded strictly (it must be valid UTF-8 JSON) and its messages joined."""
    body = json.loads(response.content.decode("utf-8"))
    detail = body["detail"]
    return detail if isinstance(detail, str) else " | ".join(d["msg"] for d in detail)


# A lone surrogate escape is valid JSON but no UTF-8 text: pydantic refuses it, and FastAPI's own 422
# handler then failed to encode the echoed input (a 500). Raw bytes: json= would refuse to encode them.
UNICODE = "not valid Unicode"
SURROGATES = {
    "text": (rb'{"texts": ["\ud800"]}', UNICODE),
    "second text": (rb'{"texts": ["fine", "a\udfffb"]}', UNICODE),
    "encoded surrogate bytes": (b'{"texts": ["\xed\xa0\x80"]}', UNICODE),
    "language": (rb'{"texts": ["fine"], "languages": ["\ud800"]}', UNICODE),  # /v1/impacts: unknown field
    "field name": (rb'{"texts": ["fine"], "\ud800": 1}', UNICODE),
    "top-level string": (rb'"\ud800"', "must be a JSON object"),
}


@pytest.mark.parametrize("path", ["/v1/ade", "/v1/impacts"])
@pytest.mark.parametrize("case", sorted(SURROGATES))
def test_lone_surrogate_is_a_clean_422(client, path, case):
    body, expected = SURROGATES[case]
    response = _post_raw(client, path, body)
    assert response.status_code == 422, response.text
    message = _detail_text(response)  # decodes strictly: the answer itself is valid UTF-8
    if case == "language" and path == "/v1/impacts":
        expected = "Extra inputs are not permitted"
    assert expected in message
    assert all(set(d) == {"type", "loc", "msg"} for d in response.json()["detail"])  # no input echoed


# Bodies that are not JSON at all: every one a 422 whose message says why (FastAPI alone: 400 or 500).
UNPARSEABLE = {
    "syntax": (b"{not json", "body is not valid JSON: Expecting property name"),
    "truncated": (b'{"texts": ["a"', "body is not valid JSON"),
    "invalid UTF-8": (b'{"texts": ["caf\xe9"]}', "body is not valid UTF-8 (byte 0xe9 at offset 15)"),
    "deep nesting": (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
    "deep nesting in a field": (b'{"texts": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", "nested too deeply"),
    "5000-digit number": (b'{"texts": [' + b"1" * 5000 + b"]}", "4300 digits"),
    "empty body": (b"", "Field required"),
    "JSON list": (b'["a"]', "must be a JSON object"),
    "JSON null": (b"null", "must be a JSON object"),
}


@pytest.mark.parametrize("case", sorted(UNPARSEABLE))
def test_unparseable_body_is_a_422_that_says_why(client, case):
    body, message = UNPARSEABLE[case]
    response = _post_raw(client, "/v1/ade", body)
    assert response.status_code == 422, response.text
    assert message in _detail_text(response)


def test_wrong_content_type_is_a_422_naming_the_content_type(client):
    for headers in ({"content-type": "text/plain"}, {}):
        response = _post_raw(client, "/v1/ade", b'{"texts": ["a"]}', headers)
        assert response.status_code == 422
        assert "content-type: application/json" in _detail_text(response)
    response = _post_raw(client, "/v1/ade", b"caf\xe9", {"content-type": "text/plain"})
    assert response.status_code == 422  # raw non-UTF-8 bytes are not echoed either


def test_too_many_posts_is_refused_before_any_post_is_validated(client):
    """Five invalid posts (numbers) with max_batch=4: 413, not 422, so nothing was validated."""
    for path, key in (("/v1/ade", "texts"), ("/v1/impacts", "texts"), ("/v1/impacts", "tokens")):
        response = client.post(path, json={key: [42] * 5})
        assert response.status_code == 413
        assert response.json()["detail"] == "5 posts in one request; the limit is 4 (split the request)"
    # on /v1/ade a `tokens` list is an unknown field, not a post count
    assert client.post("/v1/ade", json={"tokens": [["a"]] * 5}).status_code == 422


def test_body_larger_than_any_valid_request_is_refused_unread(client):
    limit = client.get("/v1/model").json()["limits"]["max_body_bytes"]
    for body in ({"texts": ["a" * 1_000_000]}, {"texts": ["a"] * 100_000}):
        response = client.post("/v1/ade", json=body)
        assert response.status_code == 413 and response.text == "Content Too Large"
    # just under the limit and within max_chars: read and answered normally
    padded = json.dumps({"texts": ["fine"]}).encode() + b" " * (limit - 100)
    assert _post_raw(client, "/v1/ade", padded).status_code == 200


def test_a_refused_text_is_never_echoed(client):
    response = client.post("/v1/ade", json={"texts": ["secret " * 40]})
    assert response.status_code == 422 and "secret" not in response.text
    assert "at most 200 characters" in _detail_text(response)


def test_validation_detail_is_encodable_and_drops_the_input():
    from medsift.serve.errors import validation_detail

    detail = validation_detail(
        [
            {"type": "extra_forbidden", "loc": ("body", "\ud800"), "msg": "Extra inputs", "input": "\udfff"},
            {"type": "too_long", "loc": ("body", "texts", 0), "msg": "at most 2", "ctx": {"max_length": 2}},
        ]
    )
    assert detail == [
        {"type": "extra_forbidden", "loc": ["body", "\\ud800"], "msg": "Extra inputs"},
        {"type": "too_long", "loc": ["body", "texts", 0], "msg": "at most 2"},
    ]
    json.dumps(detail, ensure_ascii=False).encode("utf-8")  # never raises


def test_concurrent_requests_share_model_calls(app):
    import httpx

    batcher = app.state.batchers["ade"]

    async def burst() -> list[dict]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            responses = await asyncio.gather(*(c.post("/v1/ade", json={"texts": [t]}) for t in POS + NEG))
        return [r.json()["results"][0] for r in responses]

    before = batcher.calls
    results = asyncio.run(burst())
    assert len(results) == 10 and all(0.0 <= r["p_ade"] <= 1.0 for r in results)
    assert batcher.calls - before < 10  # several requests were scored in one call
    single = [asyncio.run(batcher_free_score(app, t)) for t in (POS[0], NEG[1])]
    assert results[0]["p_ade"] == pytest.approx(single[0]["p_ade"], abs=1e-6)
    assert results[6]["p_ade"] == pytest.approx(single[1]["p_ade"], abs=1e-6)


async def batcher_free_score(app, text: str) -> dict:
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        return (await c.post("/v1/ade", json={"texts": [text]})).json()["results"][0]


@pytest.fixture(scope="module")
def tagger_run(tiny_bert: Path, tmp_path_factory) -> Path:
    from medsift.impacts.train import train
    from test_impacts_model import POSTS, _config, _write_csv

    tmp = tmp_path_factory.mktemp("serve_tagger")
    config = _config(tiny_bert, _write_csv(tmp / "train.csv", POSTS * 3), "bio", False, tmp / "run")
    return train(
        config.model_copy(update={"training": config.training.model_copy(update={"num_train_epochs": 1})}),
        quiet=True,
    )


@pytest.mark.slow  # trains a tiny tagger (~20 s on a shared CPU)
def test_impacts_endpoint_answers_texts_and_token_lists(tagger_run: Path):
    from fastapi.testclient import TestClient

    from medsift.impacts.predict import SpanTagger
    from medsift.serve import create_app

    tagger = SpanTagger.from_run(tagger_run)
    with TestClient(create_app(tagger_run, max_batch=2)) as client:
        texts = ["I overdosed last night and lost my job.", "all good"]
        body = client.post("/v1/impacts", json={"texts": texts}).json()
        assert body["unit"] == "char"
        expected = tagger.tag_texts(texts)
        got = [[(s["label"], s["start"], s["end"], s["text"]) for s in r["spans"]] for r in body["results"]]
        assert got == [[tuple(s) for s in spans] for spans in expected]
        for text, spans in zip(texts, got, strict=True):
            assert all(text[a:b] == t for _, a, b, t in spans)
        tokens = [["I", "overdosed", "and", "lost", "my", "job"]]
        body = client.post("/v1/impacts", json={"tokens": tokens}).json()
        assert body["unit"] == "token" and body["results"][0]["tags"] == tagger.tag(tokens)[0]
        assert client.post("/v1/impacts", json={"texts": ["a"], "tokens": [["a"]]}).status_code == 422
        assert client.post("/v1/impacts", json={"tokens": [[]]}).status_code == 422
        assert client.post("/v1/impacts", json={"texts": ["a", "b", "c"]}).status_code == 413
        assert client.post("/v1/ade", json={"texts": ["a"]}).status_code == 404
        assert client.get("/v1/model").json()["manifest"]["kind"] == "impacts-tagger"


# --- odd but valid posts: answered, one result per text, in order ------------------------------------

ODD_POSTS = {
    "rtl": "این دارو باعث سردرد شد",
    "rtl_marks": "\u202bתרופה\u202c mixed RTL with LTR marks \u200f",
    "mixed_scripts": "Took أسبرين and got a headache 头痛 too",
    "emoji_only": "😵‍💫💊🤢",
    "control": "bell\x07 escape\x1b[0m line\u2028sep\x7f",
    "nul": "before\x00after",
    "nul_only": "\x00",
    "bom": "\ufeffI felt dizzy",
    "zero_width_only": "\u200b",
    "combining": "e\u0301\u0301\u0301 zalgo",
    "multiline": 'multi\nline\r\npost with "quotes", commas',
}
ODD_TEXTS = list(ODD_POSTS.values())
ODD_TOKENS = [["😵‍💫", "\x00", "\u202b", "أسبرين", "\ufeff", "\u200b", " ", "头痛"], ["e\u0301"], ["\x07"]]


@pytest.fixture(scope="module")
def odd_client(ade_run: Path):
    """Room for every odd post in one request and for a 1 MB post."""
    from fastapi.testclient import TestClient

    from medsift.serve import create_app

    with TestClient(create_app(ade_run, max_batch=16, max_chars=1_000_000)) as c:
        yield c


def test_odd_but_valid_posts_get_one_result_each_in_order(odd_client, ade_run: Path):
    from medsift.ade import AdeClassifier

    expected = AdeClassifier.from_run(ade_run, device="cpu").predict(ODD_TEXTS).p_ade
    for body in (
        json.dumps({"texts": ODD_TEXTS}).encode(),  # \\uXXXX escapes (what json.dumps writes)
        json.dumps({"texts": ODD_TEXTS}, ensure_ascii=False).encode("utf-8"),  # raw UTF-8
        b"\xef\xbb\xbf" + json.dumps({"texts": ODD_TEXTS}).encode(),  # a BOM before the body
    ):
        response = _post_raw(odd_client, "/v1/ade", body)
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert len(results) == len(ODD_TEXTS)
        np.testing.assert_allclose([r["p_ade"] for r in results], expected, atol=1e-5)
    reverse = odd_client.post("/v1/ade", json={"texts": ODD_TEXTS[::-1]}).json()["results"]
    np.testing.assert_allclose([r["p_ade"] for r in reverse], expected[::-1], atol=1e-5)
    for text, p in zip(ODD_TEXTS, expected, strict=True):  # alone, each post gets the same answer
        alone = odd_client.post("/v1/ade", json={"texts": [text]}).json()["results"]
        assert len(alone) == 1 and alone[0]["p_ade"] == pytest.approx(p, abs=1e-5)


def test_one_megabyte_post_follows_the_limits(client, odd_client):
    big = ("I took 20mg and felt dizzy, nauseous; " * 30_000)[:1_000_000]
    response = odd_client.post("/v1/ade", json={"texts": [big, "fine"]})  # max_chars 1,000,000: scored
    assert response.status_code == 200 and len(response.json()["results"]) == 2
    too_long = odd_client.post("/v1/ade", json={"texts": [big + "x"]})
    assert too_long.status_code == 422 and "at most 1000000 characters" in _detail_text(too_long)
    assert big[:50] not in too_long.text
    assert client.post("/v1/ade", json={"texts": [big]}).status_code == 413  # max_chars 200: body too large
    assert client.post("/v1/ade", json={"texts": [big[:201]]}).status_code == 422
    assert client.post("/v1/ade", json={"texts": [big[:200]]}).status_code == 200


@pytest.mark.slow  # uses the tiny tagger run
def test_impacts_odd_but_valid_posts_one_result_each_in_order(tagger_run: Path):
    from fastapi.testclient import TestClient

    from medsift.impacts.predict import SpanTagger
    from medsift.serve import create_app

    tagger = SpanTagger.from_run(tagger_run)
    with TestClient(create_app(tagger_run, max_batch=16, max_chars=1_000_000)) as client:
        body = client.post("/v1/impacts", json={"texts": ODD_TEXTS}).json()
        assert body["unit"] == "char" and len(body["results"]) == len(ODD_TEXTS)
        expected = tagger.tag_texts(ODD_TEXTS)
        for text, result, spans in zip(ODD_TEXTS, body["results"], expected, strict=True):
            got = [(s["label"], s["start"], s["end"], s["text"]) for s in result["spans"]]
            assert got == [tuple(s) for s in spans]
            assert all(text[a:b] == t for _, a, b, t in got)
        body = client.post("/v1/impacts", json={"tokens": ODD_TOKENS}).json()
        assert body["unit"] == "token"
        assert [r["tags"] for r in body["results"]] == tagger.tag(ODD_TOKENS)
        assert [len(r["tags"]) for r in body["results"]] == [len(t) for t in ODD_TOKENS]
        big = ("I overdosed and lost my job. " * 40_000)[:1_000_000]
        response = client.post("/v1/impacts", json={"texts": ["fine", big]})
        assert response.status_code == 200 and len(response.json()["results"]) == 2
        for path in ("/v1/impacts", "/v1/ade"):  # the body is validated before the run kind is checked
            assert client.post(path, content=rb'{"texts": ["\ud800"]}', headers=JSON).status_code == 422


def test_serve_help_names_the_status_each_limit_gives():
    """--max-chars: a longer post is a 422, but it also sizes the body limit, whose breach is a 413."""
    import typer

    from medsift.cli import app
    from medsift.serve.errors import max_body_bytes

    serve = typer.main.get_command(app).commands["serve"]
    helps = {p.name: p.help for p in serve.params}
    assert "(more: 413)" in helps["max_batch"]
    assert (
        "(longer: 422)" in helps["max_chars"] and "max_body_bytes); a larger body: 413" in helps["max_chars"]
    )
    assert "max_batch x (12 x max_chars + 64) + 65536 bytes" in helps["max_chars"]
    assert max_body_bytes(2, 10) == 2 * (12 * 10 + 64) + 65536  # the formula the help states
