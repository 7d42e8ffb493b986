"""The distributor: validate, rate-limit, and replicate each stream to a quorum of ingesters.

For every valid stream the ring gives a replication set (RF instances walking clockwise from the
stream's token). Streams are grouped per ingester so that each request costs one gRPC Push per
ingester, sent in parallel. The client is answered as soon as every stream has reached its
quorum (2 of 3 at RF=3); pushes to the remaining replicas finish in the background. A stream
whose failures exceed what its set tolerates fails the request with that ingester's error.
Entries that failed validation are dropped and reported (400) only after the rest is stored:
Loki's partial success.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Protocol

import prometheus_client

from lokistack.distributor import ingester_client, rate, validation
from lokistack.proto import push_pb2
from lokistack.ring import replication

log = logging.getLogger(__name__)

BYTES_RECEIVED = prometheus_client.Counter(
    "loki_distributor_bytes_received_total",
    "The total number of uncompressed bytes received per tenant.",
    ["tenant"],
)
LINES_RECEIVED = prometheus_client.Counter(
    "loki_distributor_lines_received_total",
    "The total number of lines received per tenant.",
    ["tenant"],
)
DISCARDED_SAMPLES = prometheus_client.Counter(
    "loki_discarded_samples_total",
    "The total number of samples that were discarded.",
    ["reason", "tenant"],
)
DISCARDED_BYTES = prometheus_client.Counter(
    "loki_discarded_bytes_total",
    "The total number of bytes that were discarded.",
    ["reason", "tenant"],
)
INGESTER_APPENDS = prometheus_client.Counter(
    "loki_distributor_ingester_appends_total",
    "The total number of batch appends sent to ingesters.",
    ["ingester"],
)
INGESTER_APPEND_FAILURES = prometheus_client.Counter(
    "loki_distributor_ingester_append_failures_total",
    "The total number of failed batch appends sent to ingesters.",
    ["ingester"],
)


class PushError(Exception):
    """The answer to a push that did not fully succeed: Loki's status code and body text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class IngesterRing(Protocol):
    def get(self, token: int) -> replication.ReplicationSet: ...


@dataclasses.dataclass
class _StreamTracker:
    min_success: int
    max_failures: int
    succeeded: int = 0
    failed: int = 0


class Distributor:
    def __init__(
        self,
        validator: validation.Validator,
        rate_limiter: rate.IngestionRateLimiter,
        ring: IngesterRing,
        clients: ingester_client.IngesterClients,
    ) -> None:
        self.validator = validator
        self.rate_limiter = rate_limiter
        self.ring = ring
        self.clients = clients
        self._background: set[asyncio.Task[None]] = set()

    async def push(self, tenant: str, request: push_pb2.PushRequest) -> None:
        """Store what is valid; raise PushError when the client must hear about a problem."""
        if not request.streams:
            raise PushError(422, "error at least one valid stream is required for ingestion")
        result = self.validator.validate(tenant, request, time.time_ns())
        self._count_discarded(tenant, result.discarded_samples, result.discarded_bytes)
        if result.streams:
            valid_bytes = result.valid_bytes()
            valid_lines = result.valid_lines()
            if not self.rate_limiter.allow(tenant, valid_bytes):
                reason = validation.DiscardReason.RATE_LIMITED
                DISCARDED_SAMPLES.labels(reason.value, tenant).inc(valid_lines)
                DISCARDED_BYTES.labels(reason.value, tenant).inc(valid_bytes)
                limit = self.rate_limiter.limit(self.rate_limiter.overrides.limits_for(tenant))
                raise PushError(
                    429, rate.rate_limited_message(tenant, limit, valid_lines, valid_bytes)
                )
            BYTES_RECEIVED.labels(tenant).inc(valid_bytes)
            LINES_RECEIVED.labels(tenant).inc(valid_lines)
            await self._replicate(tenant, result.streams)
        if result.errors:
            raise PushError(400, result.error_body())

    def _count_discarded(
        self,
        tenant: str,
        samples: dict[validation.DiscardReason, int],
        nbytes: dict[validation.DiscardReason, int],
    ) -> None:
        for reason, count in samples.items():
            DISCARDED_SAMPLES.labels(reason.value, tenant).inc(count)
        for reason, count in nbytes.items():
            DISCARDED_BYTES.labels(reason.value, tenant).inc(count)

    async def _replicate(self, tenant: str, streams: Sequence[validation.ValidatedStream]) -> None:
        if not streams:
            return
        trackers: list[_StreamTracker] = []
        by_ingester: dict[str, list[int]] = {}
        for index, stream in enumerate(streams):
            try:
                replication_set = self.ring.get(stream.token)
            except (replication.QuorumError, replication.EmptyRingError) as error:
                raise PushError(500, str(error)) from error
            trackers.append(_StreamTracker(replication_set.min_success, replication_set.max_errors))
            for instance in replication_set.instances:
                by_ingester.setdefault(instance.addr, []).append(index)

        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[None] = loop.create_future()
        remaining = len(streams)

        async def send(addr: str, indices: list[int]) -> None:
            nonlocal remaining
            batch = push_pb2.PushRequest()
            batch.streams.extend(streams[i].stream for i in indices)
            INGESTER_APPENDS.labels(addr).inc()
            try:
                await self.clients.push(addr, tenant, batch)
            except ingester_client.IngesterError as error:
                INGESTER_APPEND_FAILURES.labels(addr).inc()
                log.debug("push to ingester failed", extra={"ingester": addr, "err": error.message})
                for i in indices:
                    tracker = trackers[i]
                    tracker.failed += 1
                    if tracker.failed > tracker.max_failures and not outcome.done():
                        outcome.set_exception(PushError(error.status, error.message))
                return
            for i in indices:
                tracker = trackers[i]
                tracker.succeeded += 1
                if tracker.succeeded == tracker.min_success:
                    remaining -= 1
                    if remaining == 0 and not outcome.done():
                        outcome.set_result(None)

        for addr, indices in by_ingester.items():
            task = asyncio.create_task(send(addr, indices))
            # Replicas beyond the quorum finish after the client has its answer.
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        await outcome

    async def close(self) -> None:
        if self._background:
            await asyncio.wait(self._background, timeout=self.clients.timeout)
        await self.clients.close()
