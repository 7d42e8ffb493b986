"""Quorum numbers, health per operation and Loki's error messages."""

from __future__ import annotations

import pytest
from lokistack.ring import model, replication

S = model.InstanceState
Op = replication.Operation


def member(
    name: str, state: model.InstanceState = S.ACTIVE, heartbeat: float = 1000.0
) -> model.InstanceDesc:
    return model.InstanceDesc.create(name, f"{name}:9095", state=state, heartbeat=heartbeat)


@pytest.mark.parametrize(
    ("rf", "size", "expected"),
    [(1, 1, 1), (2, 2, 2), (3, 3, 2), (3, 2, 2), (3, 4, 3), (3, 1, 2), (5, 5, 3), (4, 4, 3)],
)
def test_quorum(rf: int, size: int, expected: int) -> None:
    assert replication.quorum(rf, size) == expected


def test_three_healthy_replicas_allow_one_error() -> None:
    got = replication.filter_replicas(
        [member("a"), member("b"), member("c")], Op.WRITE, 3, 60, 1000
    )
    assert got.addrs() == ["a:9095", "b:9095", "c:9095"]
    assert (got.min_success, got.max_errors) == (2, 1)


def test_unhealthy_replicas_still_count_toward_the_factor() -> None:
    stale = member("c", heartbeat=900.0)
    got = replication.filter_replicas([member("a"), member("b"), stale], Op.WRITE, 3, 60, 1000)
    assert got.addrs() == ["a:9095", "b:9095"]
    assert (got.min_success, got.max_errors) == (2, 0)


def test_quorum_error_has_lokis_message() -> None:
    replicas = [member("a"), member("b", heartbeat=0.0), member("c", state=S.LEAVING)]
    with pytest.raises(replication.QuorumError) as caught:
        replication.filter_replicas(replicas, Op.WRITE_NO_EXTEND, 3, 60, 1000)
    assert str(caught.value) == (
        "at least 2 live replicas required, could only find 1 - unhealthy instances: b:9095,c:9095"
    )
    assert (caught.value.min_success, caught.value.found) == (2, 1)
    assert caught.value.unhealthy == ("b:9095", "c:9095")


def test_zone_aware_quorum_error_message() -> None:
    with pytest.raises(replication.QuorumError) as caught:
        replication.filter_replicas([member("a")], Op.WRITE, 3, 60, 1000, zone_aware=True)
    assert str(caught.value) == (
        "at least 2 live replicas required across different availability zones, could only find 1"
    )


def test_health_rules_per_operation() -> None:
    assert Op.WRITE_NO_EXTEND.healthy_states == {S.ACTIVE}
    assert Op.WRITE.healthy_states == {S.ACTIVE}
    assert Op.READ.healthy_states == {S.ACTIVE, S.PENDING, S.LEAVING}
    assert Op.WRITE_NO_EXTEND.extend_states == set()
    assert Op.WRITE.extend_states == {S.LEAVING, S.PENDING, S.JOINING, S.LEFT}
    assert Op.READ.extend_states == {S.PENDING, S.JOINING, S.LEFT}


def test_read_accepts_leaving_and_pending() -> None:
    replicas = [member("a"), member("b", state=S.LEAVING), member("c", state=S.PENDING)]
    got = replication.filter_replicas(replicas, Op.READ, 3, 60, 1000)
    assert len(got.instances) == 3


def test_zero_timeout_disables_the_heartbeat_check() -> None:
    got = replication.filter_replicas([member("a", heartbeat=0.0)], Op.WRITE, 1, 0, 1e9)
    assert got.addrs() == ["a:9095"]


def test_empty_ring_error_message() -> None:
    assert str(replication.EmptyRingError()) == "empty ring"
