"""The frontend's fair queue: per-tenant FIFOs served round-robin, the 429 limit, cancel, stop."""

from __future__ import annotations

import asyncio
import itertools

import prometheus_client
import pytest
from lokistack.frontend import queue as queue_mod

_tenant_ids = itertools.count()


def _tenant(name: str) -> str:
    """A tenant name no other test uses, so the per-user metrics start from nothing."""
    return f"{name}-{next(_tenant_ids)}"


def _metric(name: str, tenant: str) -> float:
    return prometheus_client.REGISTRY.get_sample_value(name, {"user": tenant}) or 0.0


async def _drain(queue: queue_mod.RequestQueue[str], count: int) -> list[tuple[str, str]]:
    """``count`` items as one consumer sees them, carrying its round-robin cursor."""
    served: list[tuple[str, str]] = []
    last: str | None = None
    for _ in range(count):
        tenant, item = await asyncio.wait_for(queue.dequeue(last), 1)
        served.append((tenant, item))
        last = tenant
    return served


async def test_one_tenant_is_fifo() -> None:
    queue: queue_mod.RequestQueue[str] = queue_mod.RequestQueue(0)
    for item in "abc":
        await queue.enqueue("t", item)
    assert await _drain(queue, 3) == [("t", "a"), ("t", "b"), ("t", "c")]


async def test_a_flooding_tenant_does_not_delay_another_beyond_one_request_each() -> None:
    flooder, quiet = _tenant("flooder"), _tenant("quiet")
    queue: queue_mod.RequestQueue[str] = queue_mod.RequestQueue(2048)
    for i in range(1000):
        await queue.enqueue(flooder, f"a{i}")
    for i in range(5):
        await queue.enqueue(quiet, f"b{i}")

    served = await _drain(queue, 1005)

    positions = [n for n, (tenant, _) in enumerate(served) if tenant == quiet]
    # The quiet tenant's requests, queued behind 1000 others, each wait at most two dequeues.
    assert positions[0] <= 1
    assert all(later - earlier <= 2 for earlier, later in itertools.pairwise(positions))
    assert positions[-1] <= 10
    # Each tenant's own order is kept.
    assert [item for tenant, item in served if tenant == quiet] == [f"b{i}" for i in range(5)]
    assert [item for tenant, item in served if tenant == flooder] == [f"a{i}" for i in range(1000)]
    assert len(queue) == 0


async def test_round_robin_over_three_tenants() -> None:
    queue: queue_mod.RequestQueue[str] = queue_mod.RequestQueue(0)
    for tenant in ("x", "y", "z"):
        for i in range(3):
            await queue.enqueue(tenant, f"{tenant}{i}")
    served = await _drain(queue, 9)
    assert [item for _, item in served] == ["x0", "y0", "z0", "x1", "y1", "z1", "x2", "y2", "z2"]


async def test_each_consumer_keeps_its_own_cursor() -> None:
    queue: queue_mod.RequestQueue[str] = queue_mod.RequestQueue(0)
    for tenant in ("x", "y"):
        for i in range(2):
            await queue.enqueue(tenant, f"{tenant}{i}")
    # A consumer that last served x goes on with y, one that last served y with x.
    assert await queue.dequeue("x") == ("y", "y0")
    assert await queue.dequeue("y") == ("x", "x0")
    # A cursor naming a tenant without a queue starts from the first tenant.
    assert await queue.dequeue("gone") == ("x", "x1")


async def test_full_tenant_queue_raises_429_error_and_counts_the_discard() -> None:
    full, other = _tenant("full"), _tenant("other")
    queue: queue_mod.RequestQueue[str] = queue_mod.RequestQueue(3)
    for i in range(3):
        await queue.enqueue(full, str(i))

    with pytest.raises(queue_mod.TooManyOutstandingError) as raised:
        await queue.enqueue(full, "3")
    assert str(raised.value) == "too many outstanding requests"
    assert queue_mod.TOO_MANY_OUTSTANDING == "too many outstanding requests"
    assert _metric("loki_query_frontend_discarded_requests_total", full) == 1
    assert queue.length(full) == 3

    # The limit is per tenant: another tenant still gets in.
    await queue.enqueue(other, "x")
    assert _metric("loki_query_frontend_discarded_requests_total", other) == 0

    # Once a request leaves the queue, there is room again.
    assert await queue.dequeue(None) == (full, "0")
    await queue.enqueue(full, "3")
    assert queue.length(full) == 3
    assert _metric("loki_query_frontend_discarded_requests_total", full) == 1


async def test_zero_means_no_limit() -> None:
    queue: queue_mod.RequestQueue[int] = queue_mod.RequestQueue(0)
    for i in range(5000):
        await queue.enqueue("t", i)
    assert queue.length("t") == 5000


async def test_queue_length_gauge_follows_the_queue() -> None:
    tenant = _tenant("gauge")
    queue: queue_mod.RequestQueue[str] = queue_mod.RequestQueue(0)
    gauge = "loki_query_frontend_queue_length"
    enqueued = "loki_query_frontend_enqueue_count_total"
    for item in "abc":
        await queue.enqueue(tenant, item)
    assert _metric(gauge, tenant) == 3
    assert _metric(enqueued, tenant) == 3
    await queue.dequeue(None)
    assert _metric(gauge, tenant) == 2
    assert queue.cancel(tenant, lambda item: item == "b") == 1
    assert _metric(gauge, tenant) == 1
    await queue.dequeue(None)
    assert _metric(gauge, tenant) == 0


async def test_cancel_removes_only_matching_items_of_that_tenant() -> None:
    queue: queue_mod.RequestQueue[str] = queue_mod.RequestQueue(0)
    for item in ("keep1", "drop1", "keep2", "drop2"):
        await queue.enqueue("t", item)
    await queue.enqueue("u", "drop3")

    assert queue.cancel("t", lambda item: item.startswith("drop")) == 2
    assert queue.cancel("nobody", lambda item: True) == 0
    assert queue.length("t") == 2
    assert queue.length("u") == 1
    assert len(queue) == 3
    served = await _drain(queue, 3)
    assert sorted(item for _, item in served) == ["drop3", "keep1", "keep2"]
    assert [item for tenant, item in served if tenant == "t"] == ["keep1", "keep2"]


async def test_tenant_queue_disappears_when_empty() -> None:
    queue: queue_mod.RequestQueue[str] = queue_mod.RequestQueue(0)
    await queue.enqueue("a", "a0")
    await queue.enqueue("b", "b0")
    await queue.enqueue("c", "c0")

    assert await queue.dequeue(None) == ("a", "a0")
    assert "a" not in queue._queues
    assert queue.cancel("b", lambda item: True) == 1
    assert "b" not in queue._queues
    assert queue._tenants == ["c"]

    # A tenant coming back joins the round-robin at the end.
    await queue.enqueue("a", "a1")
    assert queue._tenants == ["c", "a"]
    assert await _drain(queue, 2) == [("c", "c0"), ("a", "a1")]
    assert not queue._queues
    assert not queue._tenants
    assert queue.length("a") == 0


async def test_dequeue_waits_for_an_item() -> None:
    queue: queue_mod.RequestQueue[str] = queue_mod.RequestQueue(0)
    waiting = asyncio.create_task(queue.dequeue(None))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()

    await queue.enqueue("t", "x")
    assert await asyncio.wait_for(waiting, 1) == ("t", "x")


async def test_every_waiting_consumer_gets_its_item() -> None:
    queue: queue_mod.RequestQueue[str] = queue_mod.RequestQueue(0)
    waiting = [asyncio.create_task(queue.dequeue(None)) for _ in range(3)]
    await asyncio.sleep(0)
    for item in "xyz":
        await queue.enqueue("t", item)
    served = await asyncio.wait_for(asyncio.gather(*waiting), 1)
    assert sorted(item for _, item in served) == ["x", "y", "z"]


async def test_a_consumer_cancelled_as_it_is_woken_passes_the_item_on() -> None:
    """A querier stream that ends just as its worker is woken must not strand the request."""
    queue: queue_mod.RequestQueue[str] = queue_mod.RequestQueue(0)
    first = asyncio.create_task(queue.dequeue(None))
    second = asyncio.create_task(queue.dequeue(None))
    await asyncio.sleep(0)  # both are waiting now

    await queue.enqueue("t", "x")  # wakes the first waiter ...
    first.cancel()  # ... which is cancelled before it runs

    assert await asyncio.wait_for(second, 1) == ("t", "x")
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_stop_wakes_every_waiting_consumer() -> None:
    queue: queue_mod.RequestQueue[str] = queue_mod.RequestQueue(0)
    waiting = [asyncio.create_task(queue.dequeue(None)) for _ in range(2)]
    await asyncio.sleep(0)

    await queue.stop()

    for task in waiting:
        with pytest.raises(queue_mod.QueueStoppedError):
            await asyncio.wait_for(task, 1)
    await queue.enqueue("t", "late")
    with pytest.raises(queue_mod.QueueStoppedError):
        await queue.dequeue(None)
