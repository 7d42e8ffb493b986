"""The ring's read view: the replicas of a token, and the ``loki_ring_*`` metrics.

``Ring.get`` runs once per stream per push, so it does as little as possible: the ring keeps one
sorted list of every member's tokens and a parallel list of owners, rebuilt only when the token
layout changes (a heartbeat only refreshes the member descriptions), and each lookup is one
``bisect`` plus a short walk.  Nothing is cached per token, so memory does not grow with traffic.

The walk is dskit's ``findInstancesForKey`` (reference/loki-write-path.md 4.4): start at the first
token strictly greater than the key, wrap around, skip instances already chosen (and, with zone
awareness, zones already satisfied), stop at ``min(RF, #instances)`` distinct instances (grown by
one per instance whose state the operation extends on) or after one lap.  The result goes through
:func:`lokistack.ring.replication.filter_replicas` for health and quorum.

Metrics are produced at scrape time by one module-level collector that reads every live ring, so
creating many rings (tests, ``--target=all``) never registers a metric twice, and the
``Unhealthy`` count is as fresh as the scrape.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime
import time
import weakref
from collections.abc import Iterator, Mapping

import prometheus_client
from prometheus_client import core as prometheus_core
from prometheus_client import registry as prometheus_registry

from lokistack.ring import kv, model, replication

_REPORTED_STATES = ("ACTIVE", "LEAVING", "PENDING", "JOINING", "Unhealthy")


@dataclasses.dataclass(frozen=True, slots=True)
class _Layout:
    """The token arrays of one ring version; replaced as a whole, never mutated."""

    desc: model.RingDesc
    tokens: list[int]  # every member's tokens, sorted
    owners: list[int]  # owners[i] indexes ``instances`` for tokens[i]
    instances: tuple[model.InstanceDesc, ...]  # members with at least one token
    zone_count: int  # distinct zones among ``instances``
    token_sets: Mapping[str, tuple[int, ...]]  # to see whether a new desc moved any token


def _build_layout(desc: model.RingDesc, previous: _Layout | None) -> _Layout:
    members = sorted((i for i in desc.instances.values() if i.tokens), key=lambda i: i.id)
    token_sets = {member.id: member.tokens for member in members}
    if previous is not None and previous.token_sets == token_sets:
        # Same tokens, same owners: only states and heartbeats changed (the common case).
        return dataclasses.replace(previous, desc=desc, instances=tuple(members))
    owner_of: dict[int, int] = {}
    for index, member in enumerate(members):
        for token in member.tokens:
            # A token claimed twice goes to the member with the smaller ID, deterministically.
            owner_of.setdefault(token, index)
    tokens = sorted(owner_of)
    return _Layout(
        desc=desc,
        tokens=tokens,
        owners=[owner_of[token] for token in tokens],
        instances=tuple(members),
        zone_count=len({member.zone for member in members}),
        token_sets=token_sets,
    )


class Ring:
    """A live view of one ring, following a :class:`~lokistack.ring.kv.RingStore`.

    The ring subscribes to the store when constructed and reads its current snapshot, so it is
    usable at once; :meth:`start` re-reads the snapshot (useful after the store's first LIST),
    :meth:`stop` detaches it from further updates.  The store's own lifecycle is the caller's.
    """

    def __init__(
        self,
        store: kv.RingStore,
        replication_factor: int,
        heartbeat_timeout: datetime.timedelta,
        zone_awareness_enabled: bool = False,
        *,
        name: str = "ingester",
        zone_awareness: bool | None = None,
    ) -> None:
        """``zone_awareness`` is an alias of ``zone_awareness_enabled`` (the config's name)."""
        if replication_factor < 1:
            raise ValueError(f"replication factor must be at least 1, got {replication_factor}")
        self.name = name
        self.replication_factor = replication_factor
        self.heartbeat_timeout = heartbeat_timeout
        self.zone_awareness_enabled = (
            zone_awareness_enabled if zone_awareness is None else zone_awareness
        )
        self._timeout = heartbeat_timeout.total_seconds()
        self._store = store
        self._attached = True
        self._layout = _build_layout(store.snapshot(), None)
        store.subscribe(self._on_change)
        _LIVE_RINGS.add(self)

    async def start(self) -> None:
        """Re-read the store's snapshot and follow it again after :meth:`stop`."""
        self._attached = True
        self._on_change(self._store.snapshot())

    async def stop(self) -> None:
        """Ignore further changes and leave the metrics (the store keeps running)."""
        self._attached = False
        _LIVE_RINGS.discard(self)

    def _on_change(self, desc: model.RingDesc) -> None:
        if self._attached:
            self._layout = _build_layout(desc, self._layout)
            _LIVE_RINGS.add(self)

    def get(
        self,
        token: int,
        op: replication.Operation = replication.Operation.WRITE_NO_EXTEND,
        now: float | None = None,
    ) -> replication.ReplicationSet:
        """The replicas for ``token``: raises EmptyRingError or QuorumError (see module doc)."""
        layout = self._layout
        tokens = layout.tokens
        size = len(tokens)
        if size == 0:
            raise replication.EmptyRingError()
        owners = layout.owners
        instances = layout.instances
        extend_states = op.extend_states
        zone_aware = self.zone_awareness_enabled
        wanted = self.replication_factor
        max_instances = len(instances)
        max_zones = layout.zone_count
        chosen: list[int] = []
        found: list[model.InstanceDesc] = []
        zones: list[str] = []
        position = bisect.bisect_right(tokens, token)
        iterations = 0
        while len(chosen) < min(max_instances, wanted) and len(zones) < max_zones:
            if iterations == size:
                break
            iterations += 1
            if position == size:
                position = 0
            owner = owners[position]
            position += 1
            if owner in chosen:
                continue
            instance = instances[owner]
            if zone_aware and instance.zone and instance.zone in zones:
                continue
            chosen.append(owner)
            if instance.state in extend_states:
                wanted += 1
            elif zone_aware and instance.zone:
                # Only a replica that is not extended satisfies its zone, so an extension is
                # looked for in the same zone (dskit).
                zones.append(instance.zone)
            found.append(instance)
        return replication.filter_replicas(
            found,
            op,
            self.replication_factor,
            self._timeout,
            time.time() if now is None else now,
            zone_aware=zone_aware,
        )

    def healthy_instances_count(self, now: float | None = None) -> int:
        """Members with a fresh heartbeat, in any state (dskit counts them the same way)."""
        moment = time.time() if now is None else now
        return sum(
            1
            for instance in self._layout.desc.instances.values()
            if instance.heartbeat_healthy(self._timeout, moment)
        )

    def is_healthy(
        self, instance: model.InstanceDesc, op: replication.Operation, now: float
    ) -> bool:
        """Whether ``instance`` can serve ``op`` now: its state and its heartbeat."""
        return instance.state in op.healthy_states and instance.heartbeat_healthy(
            self._timeout, now
        )

    def instances(self) -> list[model.InstanceDesc]:
        """Every member, tokens or not, sorted by ID."""
        return sorted(self._layout.desc.instances.values(), key=lambda i: i.id)

    def snapshot(self) -> model.RingDesc:
        """The ring description this view currently uses."""
        return self._layout.desc

    def ownership(self) -> dict[str, float]:
        """Share of the token space (0..1) each member owns as the first replica."""
        layout = self._layout
        shares: dict[str, float] = {i.id: 0.0 for i in layout.desc.instances.values()}
        tokens = layout.tokens
        if not tokens:
            return shares
        space = float(model.MAX_TOKEN + 1)
        previous = tokens[-1] - (model.MAX_TOKEN + 1)  # the range of tokens[0] wraps around
        for token, owner in zip(tokens, layout.owners, strict=True):
            shares[layout.instances[owner].id] += (token - previous) / space
            previous = token
        return shares


# Rings alive in this process, read by the collector at scrape time.
_LIVE_RINGS: weakref.WeakSet[Ring] = weakref.WeakSet()


class _RingCollector(prometheus_registry.Collector):
    """dskit's ring metrics, one series set per ring name (the first live ring of a name wins)."""

    def describe(self) -> Iterator[prometheus_core.Metric]:
        yield from self._families()

    def collect(self) -> Iterator[prometheus_core.Metric]:
        members, tokens, oldest = self._families()
        now = time.time()
        seen: set[str] = set()
        for ring in sorted(_LIVE_RINGS, key=lambda r: r.name):
            if ring.name in seen:
                continue
            seen.add(ring.name)
            counts = dict.fromkeys(_REPORTED_STATES, 0)
            oldest_by_state = dict.fromkeys(_REPORTED_STATES, 0.0)
            desc = ring.snapshot()
            for instance in desc.instances.values():
                state = instance.state.name
                if not instance.heartbeat_healthy(ring.heartbeat_timeout.total_seconds(), now):
                    state = "Unhealthy"
                counts[state] = counts.get(state, 0) + 1
                current = oldest_by_state.get(state, 0.0)
                if current == 0.0 or instance.heartbeat < current:
                    oldest_by_state[state] = instance.heartbeat
            for state, count in counts.items():
                members.add_metric([ring.name, state], count)
                oldest.add_metric([ring.name, state], oldest_by_state[state])
            tokens.add_metric([ring.name], desc.tokens_total())
        yield from (members, tokens, oldest)

    @staticmethod
    def _families() -> tuple[
        prometheus_core.GaugeMetricFamily,
        prometheus_core.GaugeMetricFamily,
        prometheus_core.GaugeMetricFamily,
    ]:
        return (
            prometheus_core.GaugeMetricFamily(
                "loki_ring_members", "Number of members in the ring", labels=["name", "state"]
            ),
            prometheus_core.GaugeMetricFamily(
                "loki_ring_tokens_total", "Number of tokens in the ring", labels=["name"]
            ),
            prometheus_core.GaugeMetricFamily(
                "loki_ring_oldest_member_timestamp",
                "Timestamp of the oldest member in the ring.",
                labels=["name", "state"],
            ),
        )


COLLECTOR = _RingCollector()
prometheus_client.REGISTRY.register(COLLECTOR)
