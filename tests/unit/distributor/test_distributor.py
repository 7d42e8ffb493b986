"""The distributor's fan-out: one push per ingester, answered at quorum, failed beyond it.

The ingester clients are replaced by a scripted fake: this unit test is about the per-stream
success and failure counting, which the integration tests exercise with real processes too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from lokistack import config, limits
from lokistack.distributor import distributor, ingester_client, rate, validation
from lokistack.proto import push_pb2
from lokistack.ring import model, replication


@dataclasses.dataclass
class FakeClients:
    """Answers per address: None succeeds, an IngesterError fails; ``delay`` holds an answer."""

    outcomes: dict[str, ingester_client.IngesterError | None]
    delay: dict[str, asyncio.Event] = dataclasses.field(default_factory=dict)
    pushes: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    timeout: float = 1.0

    async def push(self, addr: str, tenant: str, request: push_pb2.PushRequest) -> None:
        self.pushes.append((addr, len(request.streams)))
        if addr in self.delay:
            await self.delay[addr].wait()
        outcome = self.outcomes.get(addr)
        if outcome is not None:
            raise outcome

    async def close(self) -> None:
        return None


@dataclasses.dataclass
class FixedRing:
    """Every stream maps to the same replication set."""

    replication_set: replication.ReplicationSet

    def get(self, token: int) -> replication.ReplicationSet:
        return self.replication_set


def _replication_set(count: int, max_errors: int) -> replication.ReplicationSet:
    instances = tuple(
        model.InstanceDesc.create(f"ingester-{i}", f"10.0.0.{i}:9095") for i in range(count)
    )
    return replication.ReplicationSet(instances, max_errors)


def _distributor(ring: FixedRing, clients: FakeClients) -> distributor.Distributor:
    overrides = limits.Overrides(config.Limits())
    return distributor.Distributor(
        validation.Validator(overrides.limits_for),
        rate.IngestionRateLimiter(overrides, lambda: 1),
        ring,
        clients,  # type: ignore[arg-type]
    )


def _request(streams: int) -> push_pb2.PushRequest:
    request = push_pb2.PushRequest()
    now = time.time_ns()
    for i in range(streams):
        entry = request.streams.add(labels=f'{{app="a", n="{i}"}}').entries.add(line="x")
        entry.timestamp.seconds, entry.timestamp.nanos = divmod(now, 1_000_000_000)
    return request


def _failure(addr: str, status: int = 500) -> ingester_client.IngesterError:
    return ingester_client.IngesterError(addr, status, f"ingester {addr} failed")


async def test_one_push_per_ingester_for_all_streams() -> None:
    clients = FakeClients({})
    await _distributor(FixedRing(_replication_set(3, 1)), clients).push("t", _request(5))
    assert sorted(clients.pushes) == [(f"10.0.0.{i}:9095", 5) for i in range(3)]


async def test_rf3_tolerates_one_failed_ingester() -> None:
    clients = FakeClients({"10.0.0.0:9095": _failure("10.0.0.0:9095")})
    await _distributor(FixedRing(_replication_set(3, 1)), clients).push("t", _request(2))


async def test_rf3_fails_with_two_failed_ingesters_and_their_error() -> None:
    clients = FakeClients(
        {
            "10.0.0.0:9095": _failure("10.0.0.0:9095"),
            "10.0.0.1:9095": _failure("10.0.0.1:9095", status=429),
        }
    )
    with pytest.raises(distributor.PushError) as failed:
        await _distributor(FixedRing(_replication_set(3, 1)), clients).push("t", _request(2))
    assert failed.value.status in (500, 429)


async def test_rf1_fails_with_its_only_ingester() -> None:
    clients = FakeClients({"10.0.0.0:9095": _failure("10.0.0.0:9095", status=400)})
    with pytest.raises(distributor.PushError) as failed:
        await _distributor(FixedRing(_replication_set(1, 0)), clients).push("t", _request(1))
    assert failed.value.status == 400
    assert failed.value.message == "ingester 10.0.0.0:9095 failed"


async def test_answer_comes_at_quorum_without_waiting_for_the_slow_replica() -> None:
    slow = asyncio.Event()
    clients = FakeClients({}, delay={"10.0.0.2:9095": slow})
    dist = _distributor(FixedRing(_replication_set(3, 1)), clients)
    await asyncio.wait_for(dist.push("t", _request(3)), timeout=1)
    slow.set()  # the third replica completes in the background
    await dist.close()
    assert len(clients.pushes) == 3


async def test_validation_errors_come_after_the_valid_streams_are_stored() -> None:
    clients = FakeClients({})
    request = _request(1)
    request.streams.add(labels='{app="old"}').entries.add(line="x").timestamp.seconds = 1
    with pytest.raises(distributor.PushError) as failed:
        await _distributor(FixedRing(_replication_set(1, 0)), clients).push("t", request)
    assert failed.value.status == 400
    assert "timestamp too old" in failed.value.message
    assert clients.pushes == [("10.0.0.0:9095", 1)]


async def test_empty_request_is_422() -> None:
    with pytest.raises(distributor.PushError) as failed:
        await _distributor(FixedRing(_replication_set(1, 0)), FakeClients({})).push(
            "t", push_pb2.PushRequest()
        )
    assert failed.value.status == 422
