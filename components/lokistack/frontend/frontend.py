"""The frontend's dispatcher: queued sub-requests handed to querier workers, answers handed back.

Queriers pull work (reference §4.1): each querier worker holds one ``Frontend/Process`` stream,
announces its querier, and then runs one request at a time as the frontend sends them. The
frontend never dials queriers, so it needs no list of them and scaling queriers needs no
frontend change.

A request whose worker stream breaks before it answers (the querier died or was restarted) is
queued again, at most ``max_retries`` times, and so is one answered with a 5xx; what a querier
refuses with a 4xx is the client's error and is returned as is. When the client goes away,
:meth:`Frontend.run` is cancelled and the request's queued copy is removed.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Final

import grpc
import prometheus_client

from lokistack.frontend import queue as queue_mod
from lokistack.proto import frontend_pb2, frontend_pb2_grpc

log = logging.getLogger(__name__)

CONNECTED_CLIENTS = prometheus_client.Gauge(
    "loki_query_frontend_connected_clients",
    "Number of worker clients currently connected to the frontend.",
)
RETRIES = prometheus_client.Counter(
    "loki_query_frontend_retries_total",
    "Sub-requests queued again after a querier failed them or went away.",
)
INTERNAL_ERROR: Final = 500


class QuerierUnavailableError(Exception):
    """Every attempt at a request failed; the client gets a 5xx."""


@dataclasses.dataclass(eq=False)
class SubRequest:
    """One request waiting for a querier."""

    request: frontend_pb2.HTTPRequest
    answer: asyncio.Future[frontend_pb2.HTTPResponse]
    attempts: int = 0


class Frontend(frontend_pb2_grpc.FrontendServicer):
    """The queue plus the ``Process`` streams of the connected querier workers."""

    def __init__(self, max_outstanding_per_tenant: int, max_retries: int) -> None:
        self.queue: queue_mod.RequestQueue[SubRequest] = queue_mod.RequestQueue(
            max_outstanding_per_tenant
        )
        self.max_retries = max_retries
        self.clients: collections.Counter[str] = collections.Counter()
        self._ids = itertools.count(1)

    @property
    def connected_queriers(self) -> int:
        return len(self.clients)

    async def run(
        self, tenant: str, request: frontend_pb2.HTTPRequest
    ) -> frontend_pb2.HTTPResponse:
        """Queue ``request`` for ``tenant`` and wait for a querier's answer.

        Raises :class:`~.queue.TooManyOutstandingError` when the tenant's queue is full and
        :class:`QuerierUnavailableError` when every attempt failed.
        """
        sub = SubRequest(request, asyncio.get_running_loop().create_future())
        await self.queue.enqueue(tenant, sub)
        try:
            return await sub.answer
        finally:
            # Cancelling the caller cancels the future it awaits, so a cancelled answer means
            # the caller went away too.
            if not sub.answer.done() or sub.answer.cancelled():
                sub.answer.cancel()
                self.queue.cancel(tenant, lambda queued: queued is sub)

    async def _retry(self, tenant: str, sub: SubRequest, reason: str) -> None:
        sub.attempts += 1
        if sub.attempts > self.max_retries:
            if not sub.answer.done():
                sub.answer.set_exception(
                    QuerierUnavailableError(f"{reason} (after {sub.attempts} attempts)")
                )
            return
        RETRIES.inc()
        try:
            await self.queue.enqueue(tenant, sub)
        except queue_mod.TooManyOutstandingError as error:
            if not sub.answer.done():
                sub.answer.set_exception(error)

    async def Process(  # noqa: N802 - the gRPC method name
        self,
        request_iterator: AsyncIterator[frontend_pb2.ClientToFrontend],
        context: grpc.aio.ServicerContext[
            frontend_pb2.ClientToFrontend, frontend_pb2.FrontendToClient
        ],
    ) -> AsyncIterator[frontend_pb2.FrontendToClient]:
        """One worker's stream: send a request, wait for its answer, repeat."""
        replies = aiter(request_iterator)
        try:
            hello = await anext(replies)
        except StopAsyncIteration:
            return
        client = hello.client_id or context.peer()
        self.clients[client] += 1
        CONNECTED_CLIENTS.set(len(self.clients))
        last_tenant: str | None = None
        try:
            while True:
                try:
                    tenant, sub = await self.queue.dequeue(last_tenant)
                except queue_mod.QueueStoppedError:
                    return
                last_tenant = tenant
                if sub.answer.done():  # the client went away while it was queued
                    continue
                request_id = next(self._ids)
                try:
                    # gRPC closes this generator at the yield (GeneratorExit) when sending the
                    # request fails or the server stops.
                    yield frontend_pb2.FrontendToClient(id=request_id, http_request=sub.request)
                    reply = await anext(replies)
                except (
                    StopAsyncIteration,
                    grpc.aio.AioRpcError,
                    asyncio.CancelledError,
                    GeneratorExit,
                ) as error:
                    await self._retry(tenant, sub, f"querier {client} went away: {error!r}")
                    if isinstance(error, asyncio.CancelledError | GeneratorExit):
                        raise
                    return
                response = reply.http_response
                if response.code >= INTERNAL_ERROR and sub.attempts < self.max_retries:
                    await self._retry(tenant, sub, f"querier {client} answered {response.code}")
                    continue
                if not sub.answer.done():
                    sub.answer.set_result(response)
        finally:
            self.clients[client] -= 1
            if self.clients[client] <= 0:
                del self.clients[client]
            CONNECTED_CLIENTS.set(len(self.clients))

    async def stop(self) -> None:
        await self.queue.stop()
