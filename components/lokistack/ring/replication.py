"""Operations, replication sets and the quorum rule (dskit ``replication_strategy.go``).

The distributor asks the ring for the replicas of a stream's token and must then know two numbers:
how many replicas must accept the write (``min_success``) and how many may fail
(``max_errors``).  Those numbers, the health rules per operation and the error texts follow dskit
exactly (reference/loki-write-path.md 4.4), because operators read these messages in Loki's
documentation and in their alerts.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence

from lokistack.ring import model

_State = model.InstanceState


class Operation(enum.Enum):
    """What a replication set is for, which decides who counts as healthy and when to extend.

    - ``WRITE_NO_EXTEND`` (what Loki's distributor uses): only ACTIVE is healthy, and the set
      never grows past the replication factor.
    - ``WRITE``: only ACTIVE is healthy; every non-ACTIVE instance met adds one more replica.
    - ``READ``: ACTIVE, PENDING and LEAVING are healthy; the set grows for any state other than
      ACTIVE and LEAVING.
    """

    WRITE_NO_EXTEND = "write_no_extend"
    WRITE = "write"
    READ = "read"

    @property
    def healthy_states(self) -> frozenset[model.InstanceState]:
        """States in which an instance can serve this operation (given a fresh heartbeat)."""
        return _HEALTHY_STATES[self]

    @property
    def extend_states(self) -> frozenset[model.InstanceState]:
        """States whose instances make the walk look for one more replica."""
        return _EXTEND_STATES[self]


_HEALTHY_STATES: dict[Operation, frozenset[model.InstanceState]] = {
    Operation.WRITE_NO_EXTEND: frozenset({_State.ACTIVE}),
    Operation.WRITE: frozenset({_State.ACTIVE}),
    Operation.READ: frozenset({_State.ACTIVE, _State.PENDING, _State.LEAVING}),
}
_EXTEND_STATES: dict[Operation, frozenset[model.InstanceState]] = {
    Operation.WRITE_NO_EXTEND: frozenset(),
    Operation.WRITE: frozenset(set(_State) - {_State.ACTIVE}),
    Operation.READ: frozenset(set(_State) - {_State.ACTIVE, _State.LEAVING}),
}


class EmptyRingError(Exception):
    """The ring has no tokens, so no instance can own anything (dskit ``ErrEmptyRing``)."""

    def __init__(self) -> None:
        super().__init__("empty ring")


class QuorumError(Exception):
    """Fewer healthy replicas than a quorum: the write or read cannot succeed (HTTP 500 in Loki)."""

    def __init__(
        self, min_success: int, found: int, unhealthy: Sequence[str], *, zone_aware: bool = False
    ) -> None:
        self.min_success = min_success
        self.found = found
        self.unhealthy = tuple(unhealthy)
        if zone_aware:
            message = (
                f"at least {min_success} live replicas required across different availability "
                f"zones, could only find {found}"
            )
        else:
            message = (
                f"at least {min_success} live replicas required, could only find {found} - "
                f"unhealthy instances: {','.join(self.unhealthy)}"
            )
        super().__init__(message)


@dataclasses.dataclass(frozen=True, slots=True)
class ReplicationSet:
    """The healthy replicas of one token and how many of them may fail.

    ``min_success`` is derived (``len(instances) - max_errors``), as in dskit, so the two numbers
    can never disagree.
    """

    instances: tuple[model.InstanceDesc, ...]
    max_errors: int

    @property
    def min_success(self) -> int:
        """How many of ``instances`` must succeed for the operation to succeed."""
        return len(self.instances) - self.max_errors

    def addrs(self) -> list[str]:
        """The replicas' addresses, in walk order."""
        return [instance.addr for instance in self.instances]


def quorum(replication_factor: int, set_size: int) -> int:
    """dskit's minSuccess: a majority of the larger of the replication factor and the set."""
    return max(replication_factor, set_size) // 2 + 1


def filter_replicas(
    instances: Sequence[model.InstanceDesc],
    op: Operation,
    replication_factor: int,
    heartbeat_timeout: float,
    now: float,
    *,
    zone_aware: bool = False,
) -> ReplicationSet:
    """Apply dskit's default strategy to the instances found by the ring walk.

    Unhealthy instances (wrong state for ``op`` or a heartbeat older than ``heartbeat_timeout``
    seconds; 0 disables that check) are dropped but still count toward the replication factor
    used for the quorum, so losing replicas can only make the requirement stricter.
    """
    min_success = quorum(replication_factor, len(instances))
    healthy_states = _HEALTHY_STATES[op]
    healthy: list[model.InstanceDesc] = []
    unhealthy: list[str] = []
    for instance in instances:
        if instance.state in healthy_states and (
            heartbeat_timeout <= 0 or now - instance.heartbeat <= heartbeat_timeout
        ):
            healthy.append(instance)
        else:
            unhealthy.append(instance.addr)
    if len(healthy) < min_success:
        raise QuorumError(min_success, len(healthy), unhealthy, zone_aware=zone_aware)
    return ReplicationSet(instances=tuple(healthy), max_errors=len(healthy) - min_success)
