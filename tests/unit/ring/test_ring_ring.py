"""The ring walk (dskit findInstancesForKey), health per operation, zones, and metrics."""

from __future__ import annotations

import datetime
import itertools
import random
import uuid

import prometheus_client
import pytest
from lokistack.ring import model, replication, ring, tokens
from lokistack.ring.kv import memory

S = model.InstanceState
Op = replication.Operation
NOW = 10_000.0


def member(
    name: str,
    member_tokens: list[int],
    *,
    state: model.InstanceState = S.ACTIVE,
    zone: str = "",
    heartbeat: float = NOW,
) -> model.InstanceDesc:
    return model.InstanceDesc.create(
        name, f"{name}:9095", zone=zone, state=state, tokens=member_tokens, heartbeat=heartbeat
    )


def make_ring(
    *members: model.InstanceDesc, rf: int = 3, zones: bool = False, name: str = "ingester"
) -> ring.Ring:
    store = memory.MemoryRingStore(model.RingDesc.of(members))
    return ring.Ring(
        store,
        replication_factor=rf,
        heartbeat_timeout=datetime.timedelta(minutes=1),
        zone_awareness=zones,
        name=name,
    )


def ids(replicas: replication.ReplicationSet) -> list[str]:
    return [instance.id for instance in replicas.instances]


# Sorted ring: 10 a, 20 b, 30 c, 40 a, 50 b, 60 c
ABC = (member("a", [10, 40]), member("b", [20, 50]), member("c", [30, 60]))


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (9, ["a", "b", "c"]),
        (10, ["b", "c", "a"]),  # strictly greater: a token equal to a's starts after it
        (11, ["b", "c", "a"]),
        (35, ["a", "b", "c"]),
        (59, ["c", "a", "b"]),
        (60, ["a", "b", "c"]),  # wraps around
        (2**32 - 1, ["a", "b", "c"]),
        (0, ["a", "b", "c"]),
    ],
)
def test_walk_order(token: int, expected: list[str]) -> None:
    assert ids(make_ring(*ABC).get(token, now=NOW)) == expected


@pytest.mark.parametrize(("rf", "count"), list(itertools.product([1, 2, 3], [1, 2, 3, 4, 5])))
def test_set_size_and_distinct_instances(rf: int, count: int) -> None:
    rng = random.Random(rf * 10 + count)
    taken: set[int] = set()
    members = []
    for index in range(count):
        drawn = tokens.generate_tokens(16, taken, rng)
        taken.update(drawn)
        members.append(member(f"i{index}", drawn))
    owner = {token: m.id for m in members for token in m.tokens}
    sorted_tokens = sorted(owner)
    the_ring = make_ring(*members, rf=rf)
    for key in [rng.getrandbits(32) for _ in range(50)]:
        if replication.quorum(rf, min(rf, count)) > min(rf, count):
            with pytest.raises(replication.QuorumError):
                the_ring.get(key, now=NOW)
            continue
        got = the_ring.get(key, now=NOW)
        assert len(got.instances) == min(rf, count)
        assert len(set(ids(got))) == len(got.instances)
        first = next((t for t in sorted_tokens if t > key), sorted_tokens[0])
        assert ids(got)[0] == owner[first]


@pytest.mark.parametrize(
    ("rf", "count", "min_success", "max_errors"),
    [(1, 1, 1, 0), (1, 3, 1, 0), (2, 2, 2, 0), (2, 3, 2, 0), (3, 3, 2, 1), (3, 5, 2, 1)],
)
def test_quorum_numbers(rf: int, count: int, min_success: int, max_errors: int) -> None:
    members = [member(f"i{n}", [n * 100 + 1]) for n in range(count)]
    got = make_ring(*members, rf=rf).get(0, now=NOW)
    assert (got.min_success, got.max_errors) == (min_success, max_errors)


def test_fewer_instances_than_a_quorum_fails_like_loki() -> None:
    with pytest.raises(
        replication.QuorumError, match="at least 2 live replicas required, could only find 1"
    ):
        make_ring(member("a", [1]), rf=3).get(0, now=NOW)


def test_stale_heartbeat_is_unhealthy() -> None:
    stale = member("c", [30, 60], heartbeat=NOW - 61)
    the_ring = make_ring(ABC[0], ABC[1], stale)
    got = the_ring.get(25, now=NOW)
    assert ids(got) == ["a", "b"]
    assert (got.min_success, got.max_errors) == (2, 0)
    assert the_ring.healthy_instances_count(now=NOW) == 2
    with pytest.raises(replication.QuorumError, match="unhealthy instances: c:9095,b:9095"):
        make_ring(ABC[0], member("b", [20, 50], heartbeat=0), stale).get(25, now=NOW)


# Four members: 10 a, 20 b, 30 c, 40 d
ABCD = [member("a", [10]), member("b", [20]), member("c", [30]), member("d", [40])]


def with_state(name: str, state: model.InstanceState) -> list[model.InstanceDesc]:
    return [m.replace(state=state) if m.id == name else m for m in ABCD]


def test_leaving_member_under_each_operation() -> None:
    the_ring = make_ring(*with_state("b", S.LEAVING))
    no_extend = the_ring.get(0, Op.WRITE_NO_EXTEND, now=NOW)
    assert (ids(no_extend), no_extend.max_errors) == (["a", "c"], 0)
    write = the_ring.get(0, Op.WRITE, now=NOW)
    assert (ids(write), write.min_success, write.max_errors) == (["a", "c", "d"], 3, 0)
    read = the_ring.get(0, Op.READ, now=NOW)
    assert (ids(read), read.max_errors) == (["a", "b", "c"], 1)


def test_pending_and_joining_members_under_read() -> None:
    pending = make_ring(*with_state("b", S.PENDING)).get(0, Op.READ, now=NOW)
    assert (ids(pending), pending.min_success, pending.max_errors) == (["a", "b", "c", "d"], 3, 1)
    joining = make_ring(*with_state("b", S.JOINING)).get(0, Op.READ, now=NOW)
    assert (ids(joining), joining.min_success, joining.max_errors) == (["a", "c", "d"], 3, 0)


ZONED = [
    member("a1", [10], zone="zone-a"),
    member("a2", [20], zone="zone-a"),
    member("b1", [30], zone="zone-b"),
    member("b2", [40], zone="zone-b"),
    member("c1", [50], zone="zone-c"),
    member("c2", [60], zone="zone-c"),
]


def test_zone_awareness_takes_one_member_per_zone() -> None:
    assert ids(make_ring(*ZONED, zones=True).get(0, now=NOW)) == ["a1", "b1", "c1"]
    assert ids(make_ring(*ZONED, zones=True).get(15, now=NOW)) == ["a2", "b1", "c1"]
    assert ids(make_ring(*ZONED, zones=False).get(0, now=NOW)) == ["a1", "a2", "b1"]
    for key in range(0, 70, 5):
        got = make_ring(*ZONED, zones=True).get(key, now=NOW)
        assert len({instance.zone for instance in got.instances}) == 3


def test_zone_awareness_keyword_names() -> None:
    store = memory.MemoryRingStore(model.RingDesc.of(ZONED))
    minute = datetime.timedelta(minutes=1)
    assert ring.Ring(store, 3, minute, zone_awareness_enabled=True).zone_awareness_enabled
    assert ring.Ring(store, 3, minute, zone_awareness=True).zone_awareness_enabled
    assert not ring.Ring(store, 3, minute).zone_awareness_enabled


def test_zone_awareness_stops_when_zones_are_exhausted() -> None:
    two_zones = [m for m in ZONED if m.zone != "zone-c"]
    got = make_ring(*two_zones, zones=True).get(0, now=NOW)
    assert (ids(got), got.max_errors) == (["a1", "b1"], 0)


def test_zone_aware_write_extends_within_the_zone() -> None:
    members = [m.replace(state=S.LEAVING) if m.id == "a1" else m for m in ZONED]
    got = make_ring(*members, zones=True).get(0, Op.WRITE, now=NOW)
    assert ids(got) == ["a2", "b1", "c1"]


def test_zone_aware_quorum_error() -> None:
    members = [m.replace(heartbeat=0) if m.zone != "zone-a" else m for m in ZONED]
    with pytest.raises(replication.QuorumError, match="across different availability zones"):
        make_ring(*members, zones=True).get(0, now=NOW)


def test_empty_ring() -> None:
    with pytest.raises(replication.EmptyRingError, match=r"^empty ring$"):
        make_ring().get(1)
    with pytest.raises(replication.EmptyRingError):
        make_ring(member("a", [], state=S.PENDING)).get(1)


async def test_ring_follows_its_store() -> None:
    store = memory.MemoryRingStore()
    the_ring = ring.Ring(store, 1, datetime.timedelta(minutes=1))
    with pytest.raises(replication.EmptyRingError):
        the_ring.get(5, now=NOW)
    await store.put(member("a", [10]))
    assert ids(the_ring.get(5, now=NOW)) == ["a"]
    await store.put(member("b", [7]))
    assert ids(the_ring.get(5, now=NOW)) == ["b"]
    await store.put(member("b", [7], state=S.LEAVING))  # same tokens, new state
    assert ids(the_ring.get(5, Op.READ, now=NOW)) == ["b"]
    with pytest.raises(replication.QuorumError):  # extended to b and a: a quorum of 2 is needed
        the_ring.get(5, Op.WRITE, now=NOW)
    assert [m.id for m in the_ring.instances()] == ["a", "b"]
    assert the_ring.snapshot() is store.snapshot()
    await the_ring.stop()
    await store.delete("a")
    assert [m.id for m in the_ring.instances()] == ["a", "b"], "stopped rings ignore changes"
    await the_ring.start()
    assert [m.id for m in the_ring.instances()] == ["b"]


def test_ownership_shares_add_up() -> None:
    shares = make_ring(*ABC).ownership()
    assert sum(shares.values()) == pytest.approx(1.0)
    # a owns [60, 10) wrapping and [30, 40): 2**32 - 60 + 10 + 10
    assert shares["a"] == pytest.approx((2**32 - 40) / 2**32)


def test_default_now_uses_the_clock() -> None:
    fresh = make_ring(member("a", [1], heartbeat=9e18), rf=1)
    assert ids(fresh.get(0)) == ["a"]


def test_metrics_per_ring_name() -> None:
    name = f"test-{uuid.uuid4().hex[:8]}"
    now = datetime.datetime.now().timestamp()
    the_ring = make_ring(
        member("a", [1, 2], heartbeat=now - 5),
        member("b", [3], heartbeat=now - 1, state=S.LEAVING),
        member("c", [4], heartbeat=now - 600),
        name=name,
    )
    sample = prometheus_client.REGISTRY.get_sample_value
    assert sample("loki_ring_members", {"name": name, "state": "ACTIVE"}) == 1
    assert sample("loki_ring_members", {"name": name, "state": "LEAVING"}) == 1
    assert sample("loki_ring_members", {"name": name, "state": "Unhealthy"}) == 1
    assert sample("loki_ring_members", {"name": name, "state": "PENDING"}) == 0
    assert sample("loki_ring_tokens_total", {"name": name}) == 4
    assert sample("loki_ring_oldest_member_timestamp", {"name": name, "state": "Unhealthy"}) == (
        pytest.approx(now - 600)
    )
    make_ring(member("z", [9]), name=name)  # a second ring of the same name is not a duplicate
    text = prometheus_client.generate_latest().decode()
    assert text.count(f'loki_ring_tokens_total{{name="{name}"}}') == 1
    del the_ring
