"""A process-local ring store: several lifecyclers and rings in one process share one instance.

Used by ``--target=all`` and by unit tests.  Writes take effect immediately and subscribers are
called synchronously from ``put``/``delete`` (which run on the event loop), so after ``await
store.put(...)`` every ring built on this store already reflects the change.  There is no
expiry: members leave when their lifecycler deletes them, which in one process always happens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from lokistack.ring import model

_log = logging.getLogger(__name__)

_SHARED: dict[str, MemoryRingStore] = {}


class MemoryRingStore:
    """An in-memory :class:`~lokistack.ring.kv.RingStore`."""

    def __init__(self, initial: model.RingDesc | None = None) -> None:
        self._members: dict[str, model.InstanceDesc] = (
            dict(initial.instances) if initial is not None else {}
        )
        self._snapshot = model.RingDesc.of(self._members.values())
        self._subscribers: list[Callable[[model.RingDesc], None]] = []

    async def start(self) -> None:
        """Nothing to load: the store starts empty or with ``initial``."""

    async def stop(self) -> None:
        """Nothing to release; members stay, so another start sees them (like a KV store)."""

    def snapshot(self) -> model.RingDesc:
        return self._snapshot

    async def put(self, instance: model.InstanceDesc) -> None:
        self._members[instance.id] = instance
        self._publish()

    async def delete(self, instance_id: str) -> None:
        if self._members.pop(instance_id, None) is not None:
            self._publish()

    def subscribe(self, callback: Callable[[model.RingDesc], None]) -> None:
        self._subscribers.append(callback)

    def _publish(self) -> None:
        self._snapshot = model.RingDesc.of(self._members.values())
        for callback in list(self._subscribers):
            try:
                callback(self._snapshot)
            except Exception:
                # One broken subscriber must not stop the others from seeing the change.
                _log.exception("ring subscriber failed")


def shared(ring_name: str) -> MemoryRingStore:
    """The process-wide store for ``ring_name``, created on first use."""
    store = _SHARED.get(ring_name)
    if store is None:
        store = _SHARED[ring_name] = MemoryRingStore()
    return store
