"""Conditional GET, ETags and MessagePack through a real Litestar app with brotli/gzip.

The app here is built from the shared pieces exactly as the service wires them: the real
problem handlers, the real ``check_request`` hook, and ``LowbandCompressionConfig``.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import brotli
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar, Request, Response, get, post
from litestar.params import JSONBody
from litestar.response import Stream
from litestar.testing import TestClient

from wallet.lowband import LowbandCompressionConfig, RepresentationConfig
from wallet.problems import ApiProblem, exception_handlers
from wallet.web import check_request

MAX_BUFFER = 8 * 1024
ITEMS = {"items": [{"id": i, "title": f"Acta de nacimiento {i}", "ok": True} for i in range(40)]}


class Stamp(msgspec.Struct):
    at: datetime
    note: str


@get("/items", sync_to_thread=False)
def items() -> dict[str, Any]:
    return ITEMS


@get("/tiny", sync_to_thread=False)
def tiny() -> dict[str, int]:
    return {"a": 1}


@get("/tagged", sync_to_thread=False)
def tagged() -> Response[dict[str, Any]]:
    return Response(ITEMS, headers={"ETag": '"v7"', "Cache-Control": "public, max-age=60"})


@get("/big", sync_to_thread=False)
def big() -> dict[str, str]:
    return {"blob": "x" * (MAX_BUFFER * 2)}


@get("/value", sync_to_thread=False)
def value_route(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"value": request.app.state["value"]}


@get("/problem", sync_to_thread=False)
def problem() -> None:
    raise ApiProblem(404, "not-found", "No encontramos lo que buscas.")


@get("/stream")
async def stream(request: Request[Any, Any, Any]) -> Stream:
    gate: asyncio.Event = request.app.state["gate"]

    async def chunks() -> AsyncIterator[bytes]:
        yield b"primero\n"
        await gate.wait()  # only released once the first chunk reached the client
        yield b"segundo\n"

    return Stream(chunks(), media_type="text/plain")


@post("/echo", sync_to_thread=False)
def echo(data: JSONBody[Any]) -> Any:
    return data


@post("/stamp", sync_to_thread=False)
def stamp(data: JSONBody[Stamp]) -> Stamp:
    return data


@post("/json-only", sync_to_thread=False, opt={"accept": frozenset({"application/json"})})
def json_only(data: JSONBody[Any]) -> Any:
    return data


def build_app() -> Litestar:
    return Litestar(
        [items, tiny, tagged, big, value_route, problem, stream, echo, stamp, json_only],
        exception_handlers=exception_handlers,
        before_request=check_request,
        request_max_body_size=64 * 1024,
        compression_config=LowbandCompressionConfig(
            backend="brotli",
            brotli_gzip_fallback=True,
            representation=RepresentationConfig(max_buffer=MAX_BUFFER),
        ),
        logging_config=None,
    )


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient[Litestar]]:
    with TestClient(build_app()) as test_client:
        yield test_client


AUTH = {"Authorization": "Bearer token"}
GET_VARY = ["accept", "accept-encoding", "authorization"]


def vary(response: Any) -> list[str]:
    """The Vary tokens, in order, lower-cased (each must appear once)."""
    return [t.strip().lower() for t in response.headers.get("vary", "").split(",") if t.strip()]


@pytest.mark.parametrize("encoding", ["br", "gzip", "identity"])
def test_matching_if_none_match_gives_an_empty_304(
    client: TestClient[Litestar], encoding: str
) -> None:
    first = client.get("/items", headers={"Accept-Encoding": encoding, **AUTH})
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('W/"')
    if encoding != "identity":
        assert first.headers["content-encoding"] == encoding

    again = client.get(
        "/items", headers={"Accept-Encoding": encoding, "If-None-Match": etag, **AUTH}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == "private, no-cache"
    assert sorted(vary(again)) == GET_VARY
    assert "content-encoding" not in again.headers  # the 304 skipped the compressor
    assert "content-type" not in again.headers
    assert again.headers.get("content-length", "0") == "0"


def test_the_tag_does_not_depend_on_the_content_coding(client: TestClient[Litestar]) -> None:
    tags = {
        client.get("/items", headers={"Accept-Encoding": enc}).headers["etag"]
        for enc in ("br", "gzip", "identity")
    }
    assert len(tags) == 1


def test_a_304_answers_an_etag_obtained_under_another_coding(
    client: TestClient[Litestar],
) -> None:
    etag = client.get("/items", headers={"Accept-Encoding": "br"}).headers["etag"]
    again = client.get("/items", headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status_code == 304


@pytest.mark.parametrize(
    "header", ['"nope"', 'W/"nope"', '"a", "b"', "garbage", 'W/"GQqinrCYLGqCmUUn"']
)
def test_a_mismatch_gives_the_full_200(client: TestClient[Litestar], header: str) -> None:
    response = client.get("/items", headers={"If-None-Match": header, "Accept-Encoding": "br"})
    assert response.status_code == 200
    assert response.json() == ITEMS


def test_star_and_lists(client: TestClient[Litestar]) -> None:
    etag = client.get("/items").headers["etag"]
    assert client.get("/items", headers={"If-None-Match": "*"}).status_code == 304
    listed = f'"old", {etag}, W/"older"'
    assert client.get("/items", headers={"If-None-Match": listed}).status_code == 304
    strong_form = etag.removeprefix("W/")  # weak comparison
    assert client.get("/items", headers={"If-None-Match": strong_form}).status_code == 304


@pytest.mark.parametrize("path", ["/items", "/tiny", "/value", "/tagged"])
@pytest.mark.parametrize("accept", ["application/json", "application/msgpack"])
def test_every_get_200_has_an_etag_and_vary(
    client: TestClient[Litestar], path: str, accept: str
) -> None:
    client.app.state["value"] = {"x": [1, 2, 3]}
    response = client.get(path, headers={"Accept": accept, "Accept-Encoding": "br, gzip"})
    assert response.status_code == 200
    assert response.headers["etag"]
    assert sorted(vary(response)) == GET_VARY  # once each, compressed or not
    again = client.get(
        path,
        headers={
            "Accept": accept,
            "Accept-Encoding": "br, gzip",
            "If-None-Match": response.headers["etag"],
        },
    )
    assert again.status_code == 304
    assert sorted(vary(again)) == GET_VARY
    assert "content-encoding" not in again.headers


def test_json_and_msgpack_have_different_tags(client: TestClient[Litestar]) -> None:
    as_json = client.get("/items")
    as_msgpack = client.get("/items", headers={"Accept": "application/msgpack"})
    assert as_msgpack.headers["content-type"] == "application/msgpack"
    assert as_json.headers["etag"] != as_msgpack.headers["etag"]
    crossed = client.get(
        "/items",
        headers={"Accept": "application/msgpack", "If-None-Match": as_json.headers["etag"]},
    )
    assert crossed.status_code == 200


def test_a_handler_tag_and_cache_control_are_kept(client: TestClient[Litestar]) -> None:
    response = client.get("/tagged", headers=AUTH)
    assert response.headers["etag"] == '"v7"'
    assert response.headers["cache-control"] == "public, max-age=60"
    assert client.get("/tagged", headers={"If-None-Match": 'W/"v7"'}).status_code == 304
    packed = client.get("/tagged", headers={"Accept": "application/msgpack"})
    assert packed.headers["etag"] == '"v7-mp"'
    assert (
        client.get(
            "/tagged", headers={"Accept": "application/msgpack", "If-None-Match": '"v7-mp"'}
        ).status_code
        == 304
    )


def test_cache_control_defaults_only_for_authenticated_gets(
    client: TestClient[Litestar],
) -> None:
    assert client.get("/items", headers=AUTH).headers["cache-control"] == "private, no-cache"
    assert "cache-control" not in client.get("/items").headers


def test_non_200_and_non_get_answers_get_no_etag(client: TestClient[Litestar]) -> None:
    missing = client.get("/problem", headers={"If-None-Match": "*"})
    assert missing.status_code == 404
    assert "etag" not in missing.headers
    posted = client.post("/echo", json={"a": 1})
    assert posted.status_code == 201
    assert "etag" not in posted.headers


def test_bodies_over_the_buffer_cap_pass_untouched(client: TestClient[Litestar]) -> None:
    response = client.get("/big", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert "etag" not in response.headers
    assert response.json() == {"blob": "x" * (MAX_BUFFER * 2)}


def test_problems_stay_json_when_msgpack_is_asked(client: TestClient[Litestar]) -> None:
    response = client.get("/problem", headers={"Accept": "application/msgpack"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/not-found")


async def test_streams_are_not_buffered() -> None:
    """The second chunk is produced only after the first reached ``send``: no buffering."""
    app = build_app()
    gate = asyncio.Event()
    app.state["gate"] = gate
    sent: list[dict[str, Any]] = []
    done = asyncio.Event()
    requested = False

    async def send(message: Any) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and b"primero" in message.get("body", b""):
            gate.set()
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    async def receive() -> Any:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/stream",
        "raw_path": b"/stream",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"t"), (b"authorization", b"Bearer t")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=10)  # type: ignore[arg-type]
    start = sent[0]
    headers = dict(start["headers"])
    assert start["status"] == 200
    assert b"etag" not in headers
    assert b"content-length" not in headers
    bodies = [m["body"] for m in sent[1:] if m.get("body")]
    assert bodies == [b"primero\n", b"segundo\n"]


def test_streams_are_still_compressed_and_intact(client: TestClient[Litestar]) -> None:
    client.app.state["gate"] = gate = asyncio.Event()
    gate.set()
    response = client.get("/stream", headers={"Accept-Encoding": "gzip", **AUTH})
    assert response.content == b"primero\nsegundo\n"
    assert response.headers["content-encoding"] == "gzip"
    assert "etag" not in response.headers
    assert sorted(vary(response)) == GET_VARY
    assert response.headers["cache-control"] == "private, no-cache"


def test_compressed_bytes_really_are_compressed(client: TestClient[Litestar]) -> None:
    raw_json = msgspec.json.encode(ITEMS)
    for encoding, decompress in (("br", brotli.decompress), ("gzip", gzip.decompress)):
        with client.stream("GET", "/items", headers={"Accept-Encoding": encoding}) as response:
            wire = b"".join(response.iter_raw())
        assert decompress(wire) == raw_json
        assert len(wire) < len(raw_json) / 2


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=16)
moments = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
app_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
    | moments,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=25,
)


@settings(max_examples=60)
@given(value=app_values)
def test_msgpack_and_json_answers_carry_the_same_data(
    client: TestClient[Litestar], value: Any
) -> None:
    client.app.state["value"] = value
    as_json = client.get("/value", headers={"Accept-Encoding": "br"})
    as_msgpack = client.get(
        "/value", headers={"Accept": "application/msgpack", "Accept-Encoding": "br"}
    )
    assert as_json.status_code == as_msgpack.status_code == 200
    assert as_msgpack.headers["content-type"] == "application/msgpack"
    assert msgspec.msgpack.decode(as_msgpack.content) == msgspec.json.decode(as_json.content)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=25,
)


@settings(max_examples=60)
@given(value=st.dictionaries(text, json_values, max_size=4))
def test_msgpack_and_json_request_bodies_mean_the_same(
    client: TestClient[Litestar], value: dict[str, Any]
) -> None:
    by_json = client.post("/echo", content=msgspec.json.encode(value), headers=JSON_BODY)
    by_msgpack = client.post("/echo", content=msgspec.msgpack.encode(value), headers=MSGPACK_BODY)
    assert by_json.status_code == by_msgpack.status_code == 201
    assert by_json.json() == by_msgpack.json() == msgspec.json.decode(msgspec.json.encode(value))


JSON_BODY = {"Content-Type": "application/json"}
MSGPACK_BODY = {"Content-Type": "application/msgpack"}


def test_msgpack_timestamps_fill_datetime_fields(client: TestClient[Litestar]) -> None:
    moment = datetime(2025, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)
    body = msgspec.msgpack.encode({"at": moment, "note": "trámite"})
    response = client.post(
        "/stamp", content=body, headers={**MSGPACK_BODY, "Accept": "application/msgpack"}
    )
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/msgpack"
    assert msgspec.msgpack.decode(response.content, type=Stamp) == Stamp(moment, "trámite")


@pytest.mark.parametrize(
    "body", [b"\xdd\xff\xff\xff\xff", b"\x91" * 100 + b"\xc0", b"\x81\x01\x02", b"\xc1"]
)
def test_bad_msgpack_bodies_are_400_problems(client: TestClient[Litestar], body: bytes) -> None:
    response = client.post("/echo", content=body, headers=MSGPACK_BODY)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/invalid-msgpack")


def test_oversized_msgpack_bodies_are_413(client: TestClient[Litestar]) -> None:
    body = msgspec.msgpack.encode({"blob": "x" * 70_000})
    response = client.post("/echo", content=body, headers=MSGPACK_BODY)
    assert response.status_code == 413
    assert response.json()["type"].endswith("/payload-too-large")


def test_routes_that_do_not_read_msgpack_still_refuse_it(client: TestClient[Litestar]) -> None:
    response = client.post(
        "/json-only", content=msgspec.msgpack.encode({"a": 1}), headers=MSGPACK_BODY
    )
    assert response.status_code == 415
    assert client.post("/json-only", json={"a": 1}).status_code == 201
