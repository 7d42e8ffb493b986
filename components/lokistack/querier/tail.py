"""``/loki/api/v1/tail``: a WebSocket of the last entries, then every new one as it arrives.

The order of work follows Loki's tailer (reference §5), with one difference in how the two
phases meet: the live subscription to every ingester is opened *before* the history query, and
live entries already sent as history are dropped, so an entry pushed while the history query
runs is neither lost nor sent twice.

Messages carry at most 100 entries. A client that reads slower than entries arrive gets at most
10 messages buffered; beyond that entries are dropped and listed (up to 1000) in the
``dropped_entries`` of the next message that gets through. The server pings every second, ends
the tail after ``tail_max_duration`` and reports errors as close code 1011.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Final, Protocol

import prometheus_client
from aiohttp import WSCloseCode, web

from lokistack.iter import entries
from lokistack.loghttp import encoding, params, requests
from lokistack.logql import syntax
from lokistack.logql.syntax import ast, printer
from lokistack.querier import http as query_http

log = logging.getLogger(__name__)

MAX_ENTRIES_PER_MESSAGE: Final = 100
PING_PERIOD_S: Final = 1.0
BUFFERED_MESSAGES: Final = 10
MAX_DROPPED_LISTED: Final = 1000

TAILS_ACTIVE = prometheus_client.Gauge("loki_querier_tail_active", "Number of active tailers")
TAIL_BYTES = prometheus_client.Counter(
    "loki_querier_tail_bytes_total", "total number of bytes tailed"
)


class TailSource(Protocol):
    """The ingesters' live entries (:class:`lokistack.querier.ingesters.IngesterQuerier`)."""

    async def tailers_count(self, tenant: str) -> int: ...

    def tail(self, tenant: str, query: str) -> AsyncIterator[list[entries.Entry]]: ...


class TailAPI:
    """The tail route over a querier (history) and the ingesters (live entries)."""

    def __init__(
        self,
        api: query_http.QueryAPI,
        source: TailSource,
        max_duration_s: float,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.api = api
        self.source = source
        self.max_duration_s = max_duration_s
        self.clock = clock

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/loki/api/v1/tail", self.tail, allow_head=False),
            web.get("/api/prom/tail", self.tail, allow_head=False),
        ]

    async def tail(self, request: web.Request) -> web.StreamResponse:
        try:
            tenant = self.api.tenant(request)
            query = params.parse_tail_query(await requests.request_params(request), self.clock())
            expr = syntax.parse_log_selector(query.query)
            limit = self.api.querier.limits_for(tenant).max_concurrent_tail_requests
            count = await self.source.tailers_count(tenant)
            if limit > 0 and count >= limit:
                raise requests.RequestError(
                    400,
                    "max concurrent tail requests limit exceeded, count > limit "
                    f"({count + 1} > {limit})",
                )
        except requests.RequestError as error:
            return requests.error_response(error.status, error.message)
        except (params.ParamError, syntax.ParseError) as error:
            return requests.error_response(400, str(error))
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        TAILS_ACTIVE.inc()
        try:
            await self._serve(socket, tenant, expr, query)
        except Exception as error:  # reported to the client as Loki does: close code 1011
            log.exception("tail failed")
            await socket.close(code=WSCloseCode.INTERNAL_ERROR, message=str(error)[:120].encode())
        finally:
            TAILS_ACTIVE.dec()
        return socket

    async def _serve(
        self,
        socket: web.WebSocketResponse,
        tenant: str,
        expr: ast.LogQueryExpr,
        query: params.TailQuery,
    ) -> None:
        outbox: asyncio.Queue[str | None] = asyncio.Queue(BUFFERED_MESSAGES)
        live = self.source.tail(tenant, printer.format(expr))
        sender = asyncio.create_task(_send_all(socket, outbox))
        reader = asyncio.create_task(_read_until_closed(socket))
        feeder = asyncio.create_task(self._feed(outbox, live, tenant, expr, query))
        pinger = asyncio.create_task(_ping_every(socket, PING_PERIOD_S))
        try:
            done, _ = await asyncio.wait(
                {sender, reader, feeder},
                timeout=self.max_duration_s if self.max_duration_s > 0 else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in done:
                if task is not reader and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if not done:
                await socket.close(code=WSCloseCode.OK, message=b"reached tail max duration limit")
            elif feeder in done:
                await outbox.put(None)
                await sender
                await socket.close(
                    code=WSCloseCode.OK, message=b"all ingesters closed the connection"
                )
        finally:
            for task in (sender, reader, feeder, pinger):
                task.cancel()
            with contextlib.suppress(Exception):
                await live.aclose()  # type: ignore[attr-defined]

    async def _feed(
        self,
        outbox: asyncio.Queue[str | None],
        live: AsyncIterator[list[entries.Entry]],
        tenant: str,
        expr: ast.LogQueryExpr,
        query: params.TailQuery,
    ) -> None:
        pending: asyncio.Queue[list[entries.Entry]] = asyncio.Queue()

        async def collect() -> None:
            async for batch in live:
                await pending.put(batch)

        collector = asyncio.create_task(collect())
        try:
            history = await self.api.querier.select_logs(
                tenant,
                expr,
                query.start_ns,
                self.clock(),
                "backward",
                query.limit,
                encoding.Stats(),
            )
            history.reverse()
            seen = {(e.labels, e.ts, e.line) for e in history}
            sender = _Batcher(outbox)
            await sender.send(history)
            delay_ns = query.delay_for_s * 1_000_000_000
            while True:
                if collector.done() and pending.empty():
                    collector.result()
                    return
                try:
                    batch = await asyncio.wait_for(pending.get(), timeout=0.5)
                except TimeoutError:
                    continue
                fresh = [e for e in batch if (e.labels, e.ts, e.line) not in seen]
                if delay_ns:
                    wait_s = (
                        (max(e.ts for e in fresh) + delay_ns - self.clock()) / 1e9 if fresh else 0
                    )
                    if wait_s > 0:
                        await asyncio.sleep(wait_s)
                await sender.send(fresh)
        finally:
            collector.cancel()


class _Batcher:
    """Turns entries into messages of at most 100, dropping (and listing) when the client lags."""

    def __init__(self, outbox: asyncio.Queue[str | None]) -> None:
        self.outbox = outbox
        self.dropped: list[entries.Entry] = []

    async def send(self, found: list[entries.Entry]) -> None:
        for start in range(0, len(found), MAX_ENTRIES_PER_MESSAGE):
            part = found[start : start + MAX_ENTRIES_PER_MESSAGE]
            message = encoding.tail_message(
                [(e.labels, e.ts, e.line) for e in part],
                [(e.labels, e.ts) for e in self.dropped[:MAX_DROPPED_LISTED]],
            )
            try:
                self.outbox.put_nowait(message)
            except asyncio.QueueFull:
                self.dropped.extend(part)
                continue
            TAIL_BYTES.inc(sum(len(e.line) for e in part))
            self.dropped.clear()


async def _send_all(socket: web.WebSocketResponse, outbox: asyncio.Queue[str | None]) -> None:
    while True:
        message = await outbox.get()
        if message is None or socket.closed:
            return
        await socket.send_str(message)


async def _ping_every(socket: web.WebSocketResponse, period_s: float) -> None:
    """Loki's ping every second, with no deadline for the pong: a client that reads slowly
    loses entries (``dropped_entries``), not the connection, as with Loki. (aiohttp's
    ``heartbeat`` would close any connection whose pong is half a period late.)"""
    while not socket.closed:
        await asyncio.sleep(period_s)
        try:
            await socket.ping()
        except (ConnectionError, RuntimeError):
            return


async def _read_until_closed(socket: web.WebSocketResponse) -> None:
    """Reads (and ignores) client frames so close frames and pongs are processed."""
    async for _ in socket:
        pass
