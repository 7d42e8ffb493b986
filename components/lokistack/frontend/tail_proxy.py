"""Live tail through the frontend: the WebSocket relayed to a querier (``frontend.tail_proxy_url``).

A tail is one long-lived stream, not a query to split, so the frontend does what Loki's does: it
reverse-proxies ``/loki/api/v1/tail`` and ``/api/prom/tail`` to the querier Service named by
``frontend.tail_proxy_url`` (reference §1: only when no querier runs in the process). Clients
such as Grafana can then use one address, the frontend's, for queries and live tail.

The parameters and the LogQL are checked here first, so bad input gets its 400 and Loki's
message without a querier. A querier that refuses the WebSocket handshake (the tenant's
concurrent-tail limit, a missing tenant) answers an HTTP error the handshake cannot carry; the
proxy asks again without upgrading to read that answer and passes it on. Once both sockets are
open, every message goes through unchanged; the querier's pings are answered and passed to the
client, and its close code (1011 and the error, or 1000) reaches the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Final

import aiohttp
import prometheus_client
from aiohttp import WSCloseCode, WSMsgType, web

from lokistack.loghttp import params, requests
from lokistack.logql import syntax

FORWARDED_HEADERS: Final = ("X-Scope-OrgID", "Authorization", "X-Query-Tags")
TAIL_PATHS: Final = ("/loki/api/v1/tail", "/api/prom/tail")
HANDSHAKE_TIMEOUT_S: Final = 30.0

log = logging.getLogger(__name__)

PROXIED_TAILS = prometheus_client.Gauge(
    "lokistack_frontend_tails_proxied", "Live tails the frontend is relaying to a querier."
)


class TailProxy:
    """The tail routes of a frontend, relayed to ``upstream`` (``http://host:port``)."""

    def __init__(self, upstream: str, clock: Callable[[], int] = time.time_ns) -> None:
        self.upstream = upstream.rstrip("/")
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None

    def routes(self) -> list[web.RouteDef]:
        return [web.get(path, self.tail, allow_head=False) for path in TAIL_PATHS]

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No overall timeout: a tail lasts up to the querier's tail_max_duration (1h).
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def tail(self, request: web.Request) -> web.StreamResponse:
        try:
            query = params.parse_tail_query(await requests.request_params(request), self.clock())
            syntax.parse_log_selector(query.query)
        except requests.RequestError as error:
            return requests.error_response(error.status, error.message)
        except (params.ParamError, syntax.ParseError) as error:
            return requests.error_response(400, str(error))
        url = self.upstream + request.path_qs
        headers = {key: request.headers[key] for key in FORWARDED_HEADERS if key in request.headers}
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
                upstream = await self._client().ws_connect(
                    url,
                    headers=headers,
                    autoping=False,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0),
                )
        except aiohttp.WSServerHandshakeError:
            return await self._refusal(url, headers)
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("tail proxy: querier %s unreachable: %s", self.upstream, error)
            return requests.error_response(502, f"cannot reach querier for tail: {error}")
        client = web.WebSocketResponse()
        await client.prepare(request)
        PROXIED_TAILS.inc()
        try:
            await _relay(client, upstream)
        finally:
            PROXIED_TAILS.dec()
            await upstream.close()
        return client

    async def _refusal(self, url: str, headers: dict[str, str]) -> web.Response:
        """The querier's own answer to the request it would not upgrade."""
        timeout = aiohttp.ClientTimeout(total=HANDSHAKE_TIMEOUT_S)
        async with self._client().get(url, headers=headers, timeout=timeout) as answer:
            body = await answer.read()
            content_type = answer.headers.get("Content-Type", "text/plain; charset=utf-8")
            return web.Response(
                status=answer.status, body=body, headers={"Content-Type": content_type}
            )


async def _relay(client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    """Pass messages both ways until either side closes; then close the client with the code
    and reason the querier closed with (1000 when the client left first)."""
    downstream = asyncio.create_task(_upstream_to_client(upstream, client))
    upward = asyncio.create_task(_client_to_upstream(client, upstream))
    try:
        await asyncio.wait((downstream, upward), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (downstream, upward):
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    code, reason = int(WSCloseCode.OK), ""
    if downstream.done() and not downstream.cancelled() and downstream.exception() is None:
        code, reason = downstream.result()
    if not client.closed:
        await client.close(code=code, message=reason.encode()[:123])


async def _upstream_to_client(
    upstream: aiohttp.ClientWebSocketResponse, client: web.WebSocketResponse
) -> tuple[int, str]:
    """Relay until the querier closes; its close code and reason."""
    while True:
        message = await upstream.receive()
        if message.type == WSMsgType.TEXT:
            await client.send_str(message.data)
        elif message.type == WSMsgType.BINARY:
            await client.send_bytes(message.data)
        elif message.type == WSMsgType.PING:
            await upstream.pong(message.data)
            await client.ping(message.data)
        elif message.type == WSMsgType.CLOSE:
            return int(message.data), str(message.extra or "")
        elif message.type != WSMsgType.PONG:  # CLOSING, CLOSED, ERROR: the connection is gone
            return WSCloseCode.INTERNAL_ERROR, "querier connection lost"


async def _client_to_upstream(
    client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse
) -> None:
    async for message in client:  # ends when the client closes or goes away
        if message.type == WSMsgType.TEXT:
            await upstream.send_str(message.data)
        elif message.type == WSMsgType.BINARY:
            await upstream.send_bytes(message.data)
