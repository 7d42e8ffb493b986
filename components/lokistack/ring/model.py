"""Immutable descriptions of ring members and of the whole ring.

These mirror dskit's ``InstanceDesc`` and ``Desc`` protobufs (reference/loki-write-path.md 4.3)
with only the fields Lokistack uses.  They are frozen so that a snapshot handed to many readers
(the distributor's hot path, the status page, metrics) can never be changed under them: a store
publishes a new :class:`RingDesc` for every change instead of mutating the old one.
"""

from __future__ import annotations

import dataclasses
import enum
import types
from collections.abc import Iterable, Mapping
from typing import Final

MAX_TOKEN: Final = 2**32 - 1
"""Tokens are unsigned 32-bit values, like the FNV-1 32-bit stream tokens they are compared with."""


class InstanceState(enum.IntEnum):
    """A member's state, with dskit's numeric values (``ring.proto``)."""

    ACTIVE = 0
    LEAVING = 1
    PENDING = 2
    JOINING = 3
    LEFT = 4  # used only by gossip tombstones in Loki; accepted, never written by Lokistack


@dataclasses.dataclass(frozen=True, slots=True)
class InstanceDesc:
    """One ring member as every client sees it.

    ``heartbeat`` and ``registered`` are Unix seconds (floats: Loki keeps whole seconds, the Lease
    store keeps microseconds, and nothing depends on the difference).  ``tokens`` is sorted and
    free of duplicates; :meth:`create` normalises any iterable into that form.
    """

    id: str
    addr: str
    zone: str
    state: InstanceState
    tokens: tuple[int, ...] = dataclasses.field(repr=False)  # 128 numbers drown a log line
    heartbeat: float
    registered: float

    @classmethod
    def create(
        cls,
        id: str,  # the field's name in Loki's protobuf
        addr: str,
        *,
        zone: str = "",
        state: InstanceState = InstanceState.ACTIVE,
        tokens: Iterable[int] = (),
        heartbeat: float = 0.0,
        registered: float = 0.0,
    ) -> InstanceDesc:
        """Build a description, sorting and de-duplicating the tokens and checking their range."""
        normalised = tuple(sorted(set(tokens)))
        if normalised and (normalised[0] < 0 or normalised[-1] > MAX_TOKEN):
            raise ValueError(f"ring tokens must be 32-bit unsigned integers (instance {id!r})")
        return cls(
            id=id,
            addr=addr,
            zone=zone,
            state=InstanceState(state),
            tokens=normalised,
            heartbeat=heartbeat,
            registered=registered,
        )

    def replace(self, **changes: object) -> InstanceDesc:
        """A copy with some fields changed (``dataclasses.replace`` with a shorter name)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def heartbeat_healthy(self, timeout: float, now: float) -> bool:
        """Whether the last heartbeat is recent enough; a timeout of 0 disables the check."""
        return timeout <= 0 or now - self.heartbeat <= timeout


_EMPTY: Final[Mapping[str, InstanceDesc]] = types.MappingProxyType({})


@dataclasses.dataclass(frozen=True, slots=True)
class RingDesc:
    """The whole ring at one moment: members keyed by instance ID.

    Build it with :meth:`of`, which copies the members into a read-only mapping, so a snapshot
    stays valid however the store changes afterwards.
    """

    instances: Mapping[str, InstanceDesc] = dataclasses.field(default_factory=lambda: _EMPTY)

    @classmethod
    def of(cls, instances: Iterable[InstanceDesc]) -> RingDesc:
        """A snapshot of these members; a later member with the same ID replaces an earlier one."""
        return cls(types.MappingProxyType({instance.id: instance for instance in instances}))

    def __len__(self) -> int:
        return len(self.instances)

    def get(self, instance_id: str) -> InstanceDesc | None:
        """The member with this ID, if it is in the ring."""
        return self.instances.get(instance_id)

    def taken_tokens(self, excluding: str | None = None) -> set[int]:
        """Every token some member owns, optionally ignoring one member (the caller itself)."""
        taken: set[int] = set()
        for instance_id, instance in self.instances.items():
            if instance_id != excluding:
                taken.update(instance.tokens)
        return taken

    def tokens_total(self) -> int:
        """How many tokens the ring holds, counted per member."""
        return sum(len(instance.tokens) for instance in self.instances.values())
