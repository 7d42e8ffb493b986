"""Querier workers: pull sub-queries from every query frontend and run them on this querier.

Loki's querier worker (reference §4.1): the querier finds the frontends (a static address list,
or the frontends' headless Service resolved every ``frontend_dns_refresh_period`` so that new
and replaced frontend Pods are found), and keeps ``max_concurrent`` workers spread over them
(at least one per frontend, rounded up). Each worker holds one ``Frontend/Process`` stream and
runs the requests it receives against this querier's own HTTP API over loopback, so a
sub-query is executed, limited and encoded exactly as a client's query would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
from collections.abc import AsyncIterator, Callable
from typing import Final

import aiohttp
import grpc
import prometheus_client

from lokistack import config
from lokistack.proto import frontend_pb2, frontend_pb2_grpc

log = logging.getLogger(__name__)

RECONNECT_BACKOFF_S: Final = (0.1, 5.0)
HOP_BY_HOP: Final = frozenset({"connection", "transfer-encoding", "content-length", "host"})

WORKER_CONCURRENCY = prometheus_client.Gauge(
    "loki_querier_worker_concurrency", "Number of concurrent querier workers"
)
INFLIGHT = prometheus_client.Gauge(
    "loki_querier_worker_inflight_queries",
    "Number of queries being processed by the querier workers",
)
FRONTEND_CLIENTS = prometheus_client.Gauge(
    "loki_querier_query_frontend_clients", "The current number of clients connected to frontends."
)


def worker_counts(addresses: list[str], max_concurrent: int) -> dict[str, int]:
    """Workers per frontend: ``max_concurrent`` divided evenly, rounded up, at least one."""
    unique = sorted(set(addresses))  # an address listed twice is still one frontend
    if not unique:
        return {}
    each = max(1, math.ceil(max_concurrent / len(unique)))
    return dict.fromkeys(unique, each)


async def resolve(target: str) -> list[str]:
    """``host:port`` resolved to one ``ip:port`` per address (a headless Service's Pods)."""
    host, _, port = target.rpartition(":")
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except OSError as error:
        log.warning("cannot resolve frontend address %s: %s", target, error)
        return []
    # IPv6 addresses in brackets, or gRPC would read the last group as the port.
    hosts = {str(info[4][0]) for info in infos}
    return sorted(f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}" for ip in hosts)


class Workers:
    """The workers of one querier, kept in line with the frontends it can find."""

    def __init__(
        self,
        cfg: config.Querier,
        client_id: str,
        local_url: Callable[[], str],
    ) -> None:
        self.cfg = cfg
        self.client_id = client_id
        self.local_url = local_url
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._runner: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.cfg.frontend_addresses or self.cfg.frontend_dns)

    async def start(self) -> None:
        if not self.enabled:
            return
        # No client timeout: the querier ends each query at its tenant's query_timeout (504).
        # aiohttp's default (5 minutes in all) would raise a TimeoutError instead.
        self._session = aiohttp.ClientSession(
            auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None)
        )
        self._runner = asyncio.create_task(self._keep_in_line(), name="querier-workers")

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        for address in list(self._tasks):
            await self._stop_frontend(address)
        if self._session is not None:
            await self._session.close()

    async def _addresses(self) -> list[str]:
        found = list(self.cfg.frontend_addresses)
        if self.cfg.frontend_dns:
            found.extend(await resolve(self.cfg.frontend_dns))
        return found

    async def _keep_in_line(self) -> None:
        period = max(self.cfg.frontend_dns_refresh_period.total_seconds(), 0.1)
        while True:
            wanted = worker_counts(await self._addresses(), self.cfg.max_concurrent)
            for address in [a for a in self._tasks if a not in wanted]:
                await self._stop_frontend(address)
            for address, count in wanted.items():
                tasks = self._tasks.setdefault(address, [])
                while len(tasks) < count:
                    tasks.append(asyncio.create_task(self._work(address)))
                while len(tasks) > count:  # more frontends now share max_concurrent
                    extra = tasks.pop()
                    extra.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await extra
            WORKER_CONCURRENCY.set(sum(len(t) for t in self._tasks.values()))
            FRONTEND_CLIENTS.set(len(self._tasks))
            if not self.cfg.frontend_dns:
                return  # a static list does not change
            await asyncio.sleep(period)

    async def _stop_frontend(self, address: str) -> None:
        for task in self._tasks.pop(address, []):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _work(self, address: str) -> None:
        """Serve one frontend over one stream, reconnecting with backoff when it breaks."""
        delay = RECONNECT_BACKOFF_S[0]
        while True:
            try:
                async with grpc.aio.insecure_channel(address) as channel:
                    stub = frontend_pb2_grpc.FrontendStub(channel)
                    served = await self._serve(stub)
                if served:
                    delay = RECONNECT_BACKOFF_S[0]
            except grpc.aio.AioRpcError as error:
                log.debug("frontend %s stream ended: %s", address, error.code())
            except Exception:
                # Never let a worker end: the frontend queues the request it held again.
                log.exception("querier worker for frontend %s failed; reconnecting", address)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_BACKOFF_S[1])

    async def _serve(self, stub: frontend_pb2_grpc.FrontendStub) -> int:
        outbox: asyncio.Queue[frontend_pb2.ClientToFrontend | None] = asyncio.Queue()
        await outbox.put(frontend_pb2.ClientToFrontend(client_id=self.client_id))

        async def outgoing() -> AsyncIterator[frontend_pb2.ClientToFrontend]:
            while (message := await outbox.get()) is not None:
                yield message

        served = 0
        call = stub.Process(outgoing())
        try:
            async for message in call:
                INFLIGHT.inc()
                try:
                    response = await self._execute(message.http_request)
                finally:
                    INFLIGHT.dec()
                answer = frontend_pb2.ClientToFrontend(id=message.id, http_response=response)
                await outbox.put(answer)
                served += 1
        finally:
            # Ends outgoing(), and with it gRPC's task that sends it, which a call that failed
            # leaves waiting forever (to be destroyed pending, with errors logged).
            outbox.put_nowait(None)
        return served

    async def _execute(self, request: frontend_pb2.HTTPRequest) -> frontend_pb2.HTTPResponse:
        assert self._session is not None
        headers = [(h.key, value) for h in request.headers for value in h.values]
        try:
            async with self._session.request(
                request.method or "GET",
                self.local_url() + request.url,
                headers=headers,
                data=request.body or None,
            ) as answer:
                body = await answer.read()
                reply_headers = [
                    frontend_pb2.Header(key=key, values=answer.headers.getall(key))
                    for key in dict.fromkeys(answer.headers.keys())
                    if key.lower() not in HOP_BY_HOP
                ]
                return frontend_pb2.HTTPResponse(
                    code=answer.status, headers=reply_headers, body=body
                )
        except aiohttp.ClientError as error:
            return frontend_pb2.HTTPResponse(code=500, body=str(error).encode())
