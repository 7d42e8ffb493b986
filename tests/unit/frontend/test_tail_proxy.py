"""The frontend's tail proxy against a stand-in querier tail endpoint (a small aiohttp app).

The real querier behind a real frontend is exercised in
``tests/integration/read_path/test_frontend.py``; these tests pin the relaying rules: messages
and pings pass through, the querier's close code and reason reach the client, a refused
handshake keeps the querier's status and text, and bad input never reaches the querier.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType, test_utils, web
from lokistack.frontend import tail_proxy

QUERY = {"query": '{app="api"}'}


@dataclasses.dataclass
class Upstream:
    """What the stand-in querier saw and will do."""

    refuse: tuple[int, str] | None = None
    close_with: tuple[int, bytes] = (WSCloseCode.OK, b"")
    seen_headers: list[dict[str, str]] = dataclasses.field(default_factory=list)
    seen_paths: list[str] = dataclasses.field(default_factory=list)
    from_client: list[str] = dataclasses.field(default_factory=list)
    release: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    closed: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def tail(self, request: web.Request) -> web.StreamResponse:
        self.seen_headers.append(dict(request.headers))
        self.seen_paths.append(request.path_qs)
        if self.refuse is not None:
            status, text = self.refuse
            return web.Response(status=status, text=text + "\n")
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        await socket.send_str('{"streams":[1]}')
        await socket.ping(b"are you there")
        await socket.send_str('{"streams":[2]}')

        async def read() -> None:
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    self.from_client.append(message.data)

        reader = asyncio.create_task(read())
        try:
            await asyncio.wait(
                [reader, asyncio.create_task(self.release.wait())],
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not socket.closed:
                code, reason = self.close_with
                await socket.close(code=code, message=reason)
        finally:  # aiohttp cancels the handler when the connection is lost
            reader.cancel()
            self.closed.set()
        return socket


@pytest.fixture
async def stack() -> AsyncIterator[
    tuple[Upstream, test_utils.TestClient[web.Request, web.Application]]
]:
    upstream = Upstream()
    querier = web.Application()
    querier.router.add_get("/loki/api/v1/tail", upstream.tail)
    querier.router.add_get("/api/prom/tail", upstream.tail)
    querier_server = test_utils.TestServer(querier)
    await querier_server.start_server()
    proxy = tail_proxy.TailProxy(str(querier_server.make_url("")))
    frontend = web.Application()
    frontend.router.add_routes(proxy.routes())
    client: test_utils.TestClient[web.Request, web.Application] = test_utils.TestClient(
        test_utils.TestServer(frontend)
    )
    await client.start_server()
    try:
        yield upstream, client
    finally:
        upstream.release.set()
        await client.close()
        await proxy.stop()
        await querier_server.close()


async def test_messages_and_pings_pass_through_and_the_close_code_reaches_the_client(
    stack: tuple[Upstream, test_utils.TestClient[web.Request, web.Application]],
) -> None:
    upstream, client = stack
    upstream.close_with = (WSCloseCode.INTERNAL_ERROR, b"ingester went away")
    socket = await client.ws_connect(
        "/loki/api/v1/tail", params=QUERY, headers={"X-Scope-OrgID": "t1"}, autoping=False
    )
    kinds = []
    for _ in range(3):
        message = await socket.receive(timeout=5)
        kinds.append((message.type, message.data))
    assert kinds == [
        (WSMsgType.TEXT, '{"streams":[1]}'),
        (WSMsgType.PING, b"are you there"),
        (WSMsgType.TEXT, '{"streams":[2]}'),
    ]
    await socket.send_str("hello")
    await asyncio.sleep(0.1)
    upstream.release.set()
    closing = await socket.receive(timeout=5)
    assert (closing.type, closing.data, closing.extra) == (
        WSMsgType.CLOSE,
        WSCloseCode.INTERNAL_ERROR,
        "ingester went away",
    )
    assert upstream.from_client == ["hello"]
    assert upstream.seen_headers[0]["X-Scope-OrgID"] == "t1"
    assert upstream.seen_paths[0].startswith("/loki/api/v1/tail?query=")


async def test_a_client_that_leaves_closes_the_querier_side(
    stack: tuple[Upstream, test_utils.TestClient[web.Request, web.Application]],
) -> None:
    upstream, client = stack
    socket = await client.ws_connect("/api/prom/tail", params=QUERY)
    assert (await socket.receive(timeout=5)).data == '{"streams":[1]}'
    await socket.close()
    await asyncio.wait_for(upstream.closed.wait(), timeout=5)
    assert upstream.seen_paths[0].startswith("/api/prom/tail?")


async def test_a_refused_handshake_keeps_the_queriers_status_and_text(
    stack: tuple[Upstream, test_utils.TestClient[web.Request, web.Application]],
) -> None:
    upstream, client = stack
    limit = "max concurrent tail requests limit exceeded, count > limit (11 > 10)"
    upstream.refuse = (400, limit)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/loki/api/v1/tail", params=QUERY)
    assert refused.value.status == 400
    answer = await client.get("/loki/api/v1/tail", params=QUERY)
    assert (answer.status, await answer.text()) == (400, limit + "\n")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"query": '{app="api"'}, "parse error"),
        ({}, "syntax error"),  # Loki parses the missing query as an empty one
        ({"query": '{app="api"}', "limit": "-1"}, "limit"),
    ],
)
async def test_bad_input_is_answered_without_the_querier(
    stack: tuple[Upstream, test_utils.TestClient[web.Request, web.Application]],
    params: dict[str, str],
    message: str,
) -> None:
    upstream, client = stack
    answer = await client.get("/loki/api/v1/tail", params=params)
    assert answer.status == 400
    assert message in await answer.text()
    assert upstream.seen_paths == []


async def test_an_unreachable_querier_is_a_502() -> None:
    proxy = tail_proxy.TailProxy("http://127.0.0.1:1")
    app = web.Application()
    app.router.add_routes(proxy.routes())
    async with test_utils.TestClient(test_utils.TestServer(app)) as client:
        answer = await client.get("/loki/api/v1/tail", params=QUERY)
        assert answer.status == 502
        assert "cannot reach querier" in await answer.text()
    await proxy.stop()
