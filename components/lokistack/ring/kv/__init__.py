"""Where ring membership is stored: the :class:`RingStore` protocol and a factory from config.

A store keeps a cached view of one ring (``snapshot``, no I/O, cheap enough to call often), writes
one member at a time (``put``/``delete``) and tells subscribers about every change.  Two
implementations exist:

- :mod:`lokistack.ring.kv.memory`: process-local, for ``--target=all`` and unit tests;
- :mod:`lokistack.ring.kv.kubernetes`: one ``coordination.k8s.io/v1`` Lease per member,
  listed and watched (docs/ring.md).

Lifecycle: ``await store.start()`` before a :class:`~lokistack.ring.lifecycler.Lifecycler` or a
:class:`~lokistack.ring.ring.Ring` uses it (the Kubernetes store returns once its first LIST is
cached, so a lifecycler sees its own entry left by a previous run), and ``await store.stop()``
after them.  Callbacks run on the event loop and must not block.
"""

from __future__ import annotations

import datetime
import pathlib
from collections.abc import Callable
from typing import Protocol

from lokistack import config
from lokistack.ring import model


class RingStore(Protocol):
    """The membership store one ring's clients and members share."""

    async def start(self) -> None:
        """Load the current membership and begin following changes."""

    async def stop(self) -> None:
        """Stop following changes and release connections; members are left as they are."""

    def snapshot(self) -> model.RingDesc:
        """The latest cached view of the ring, without I/O."""

    async def put(self, instance: model.InstanceDesc) -> None:
        """Create or replace one member."""

    async def delete(self, instance_id: str) -> None:
        """Remove one member; removing a member that is not there is not an error."""

    def subscribe(self, callback: Callable[[model.RingDesc], None]) -> None:
        """Call ``callback`` with the new view, on the event loop, after each change."""


def new_store(
    kvstore: config.KVStore,
    ring_name: str,
    lease_duration: datetime.timedelta,
    *,
    kubeconfig: pathlib.Path | None = None,
) -> RingStore:
    """The store a config block selects, for the ring called ``ring_name``.

    ``memory`` gives the process-wide store for that ring name, so every component of one process
    (``--target=all``) sees the same ring.  ``kubernetes`` gives a Lease store that uses
    ``kubeconfig`` when given, else ``LeaseRingStore.from_environment`` (in-cluster or
    ``$KUBECONFIG``); ``lease_duration`` (the ring's heartbeat timeout) is written into each Lease.
    """
    if kvstore.store == "memory":
        from lokistack.ring.kv import memory  # noqa: PLC0415 - keep the two backends independent

        return memory.shared(ring_name)
    from lokistack.ring.kv import kubernetes  # noqa: PLC0415 - imports aiohttp, loads lazily

    settings = kvstore.kubernetes
    if kubeconfig is None:
        return kubernetes.LeaseRingStore.from_environment(
            namespace=settings.namespace,
            ring_name=ring_name,
            lease_prefix=settings.lease_prefix,
            forget_after=settings.forget_after,
            lease_duration=lease_duration,
        )
    return kubernetes.LeaseRingStore(
        kubeconfig,
        namespace=settings.namespace,
        ring_name=ring_name,
        lease_prefix=settings.lease_prefix,
        forget_after=settings.forget_after,
        lease_duration=lease_duration,
    )
