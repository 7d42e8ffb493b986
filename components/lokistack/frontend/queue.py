"""Per-tenant FIFO queues served round-robin, so one tenant's flood cannot starve the others.

Loki's frontend queue (reference §4.2): each tenant has its own FIFO; a worker asking for work
takes the next request of the *next* tenant after the one it served last, so with two tenants
busy, their requests alternate however many each has queued. A tenant may have at most
``max_outstanding_per_tenant`` queued requests; beyond that the client gets 429 ``too many
outstanding requests``. A tenant's queue disappears when it empties.

Requests of a client that went away are removed by :meth:`RequestQueue.cancel`, so no querier
works on an answer nobody will read.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from typing import Final, Generic, TypeVar

import prometheus_client

TOO_MANY_OUTSTANDING: Final = "too many outstanding requests"

QUEUE_LENGTH = prometheus_client.Gauge(
    "loki_query_frontend_queue_length", "Number of queries in the queue.", ["user"]
)
DISCARDED = prometheus_client.Counter(
    "loki_query_frontend_discarded_requests",
    "Total number of query requests discarded.",
    ["user"],
)
ENQUEUED = prometheus_client.Counter(
    "loki_query_frontend_enqueue_count", "Total number of requests enqueued.", ["user"]
)
QUEUE_DURATION = prometheus_client.Histogram(
    "loki_query_frontend_queue_duration_seconds",
    "Time spent by requests queued.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

T = TypeVar("T")


class TooManyOutstandingError(Exception):
    """The tenant's queue is full: Loki answers 429."""

    def __init__(self) -> None:
        super().__init__(TOO_MANY_OUTSTANDING)


class QueueStoppedError(Exception):
    """The queue is shutting down; workers stop asking."""


class RequestQueue(Generic[T]):
    """Fair queues of ``T`` by tenant; ``dequeue`` is the workers' side."""

    def __init__(self, max_outstanding_per_tenant: int) -> None:
        self.max_outstanding = max_outstanding_per_tenant
        self._queues: collections.OrderedDict[str, collections.deque[tuple[float, T]]] = (
            collections.OrderedDict()
        )
        self._tenants: list[str] = []
        """Tenants in the order they got a queue: the round-robin order."""
        self._ready = asyncio.Condition()
        self._stopped = False

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def length(self, tenant: str) -> int:
        queue = self._queues.get(tenant)
        return len(queue) if queue is not None else 0

    async def enqueue(self, tenant: str, item: T) -> None:
        """Queue ``item``; raises :class:`TooManyOutstandingError` when the tenant is full."""
        queue = self._queues.get(tenant)
        if queue is None:
            queue = self._queues[tenant] = collections.deque()
            self._tenants.append(tenant)
        if 0 < self.max_outstanding <= len(queue):
            DISCARDED.labels(tenant).inc()
            raise TooManyOutstandingError()
        queue.append((time.monotonic(), item))
        ENQUEUED.labels(tenant).inc()
        QUEUE_LENGTH.labels(tenant).set(len(queue))
        async with self._ready:
            self._ready.notify()

    async def dequeue(self, last_tenant: str | None) -> tuple[str, T]:
        """The next request, from the first non-empty tenant after ``last_tenant`` in
        round-robin order; waits while every queue is empty."""
        async with self._ready:
            while True:
                if self._stopped:
                    raise QueueStoppedError()
                found = self._take(last_tenant)
                if found is not None:
                    return found
                try:
                    await self._ready.wait()
                except asyncio.CancelledError:
                    # Python 3.11's Condition drops a notify whose waiter is cancelled before
                    # it runs (fixed in 3.13): pass it on, or the item waits for the next one.
                    self._ready.notify()
                    raise

    def _take(self, last_tenant: str | None) -> tuple[str, T] | None:
        tenants = self._tenants
        if not tenants:
            return None
        start = 0
        if last_tenant is not None and last_tenant in self._queues:
            start = tenants.index(last_tenant) + 1
        for offset in range(len(tenants)):
            tenant = tenants[(start + offset) % len(tenants)]
            queue = self._queues[tenant]
            if not queue:
                continue
            enqueued_at, item = queue.popleft()
            QUEUE_DURATION.observe(time.monotonic() - enqueued_at)
            QUEUE_LENGTH.labels(tenant).set(len(queue))
            if not queue:
                self._forget(tenant)
            return tenant, item
        return None

    def _forget(self, tenant: str) -> None:
        del self._queues[tenant]
        self._tenants.remove(tenant)

    def cancel(self, tenant: str, predicate: Callable[[T], bool]) -> int:
        """Remove the tenant's queued items for which ``predicate`` holds; returns how many."""
        queue = self._queues.get(tenant)
        if queue is None:
            return 0
        kept = collections.deque(entry for entry in queue if not predicate(entry[1]))
        removed = len(queue) - len(kept)
        if kept:
            self._queues[tenant] = kept
        else:
            self._forget(tenant)
        QUEUE_LENGTH.labels(tenant).set(len(kept))
        return removed

    async def stop(self) -> None:
        """Wake every waiting worker with :class:`QueueStoppedError`."""
        async with self._ready:
            self._stopped = True
            self._ready.notify_all()
