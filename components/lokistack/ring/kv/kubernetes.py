"""Ring membership as ``coordination.k8s.io/v1`` Leases: one Lease per member, listed and watched.

docs/ring.md is the specification of the stored form (names, labels, annotations, encodings);
:mod:`lokistack.ring.kv.lease_codec` implements it, :mod:`lokistack.ring.kv.kubernetes_api`
talks to the API server, and this module keeps the ring.  Decisions, and why:

- **aiohttp, not the official client's calls** (:mod:`~lokistack.ring.kv.kubernetes_api`): the
  official client only loads configuration, in a thread; every API call is an aiohttp request on
  the event loop, and cancelling the watch task closes its connection at once.
- **Writes are server-side apply** (``PATCH`` with ``application/apply-patch+yaml``, field
  manager ``lokistack-ring``, ``force=true``): one request creates or replaces a member, with no
  read-modify-write race and no 409 handling.
- **The cache is LIST then WATCH** (with bookmarks) from the list's resourceVersion, filtered by
  the ring's labels.  A watch that ends is resumed from the last resourceVersion; 410 Gone,
  errors and unexpected responses lead to a new LIST after an exponential backoff (0.2 s to
  10 s).  A store's own ``put``/``delete`` update its cache from the response immediately, so a
  lifecycler sees its own state without waiting for the watch; an event older than the cached
  version (resourceVersions compared as integers, as etcd issues them) is ignored.
- **Forgetting.** A member whose heartbeat (``renewTime``) is older than ``forget_after`` is
  dropped from the view, and *any* store that sees it deletes its Lease, with the cached
  resourceVersion as a precondition so that a member that came back in the meantime is not
  deleted.  This is Loki's distributor auto-forget, applied to every ring client: in Kubernetes a
  pod that vanished without unregistering (node loss, kill -9 and rescheduled under another name)
  would otherwise hold its tokens forever, and several clients deleting the same stale Lease is
  harmless (404/409 are ignored).  A check runs every ``min(forget_after / 4, 15 s)``, because a
  silent member produces no watch event.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import os
import pathlib
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import aiohttp

from lokistack.ring import model
from lokistack.ring.kv import kubernetes_api, lease_codec

_log = logging.getLogger(__name__)

FIELD_MANAGER: Final = "lokistack-ring"

_MIN_BACKOFF: Final = 0.2
_MAX_BACKOFF: Final = 10.0
_MAX_SWEEP: Final = 15.0


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    instance: model.InstanceDesc
    resource_version: str


# --- the store -------------------------------------------------------------------------------


class LeaseRingStore:
    """A :class:`~lokistack.ring.kv.RingStore` backed by one Lease per member (module doc)."""

    def __init__(
        self,
        source: kubernetes_api.KubeSource,
        namespace: str,
        ring_name: str,
        lease_prefix: str,
        forget_after: datetime.timedelta,
        *,
        lease_duration: datetime.timedelta = datetime.timedelta(minutes=1),
        sweep_interval: datetime.timedelta | None = None,
        request_timeout: datetime.timedelta = datetime.timedelta(seconds=10),
        start_timeout: datetime.timedelta = datetime.timedelta(seconds=30),
        watch_timeout: datetime.timedelta = datetime.timedelta(minutes=5),
    ) -> None:
        self.ring_name = ring_name
        self.lease_prefix = lease_prefix
        self.namespace = namespace
        self.forget_after = forget_after
        self.lease_duration = lease_duration
        self._source = source
        self._forget = forget_after.total_seconds()
        if sweep_interval is None:
            sweep = min(self._forget / 4, _MAX_SWEEP) if self._forget > 0 else _MAX_SWEEP
        else:
            sweep = sweep_interval.total_seconds()
        self._sweep_interval = max(0.05, sweep)
        self._request_timeout = request_timeout.total_seconds()
        self._start_timeout = start_timeout.total_seconds()
        self._watch_timeout = max(1, round(watch_timeout.total_seconds()))
        self._selector = lease_codec.label_selector(lease_prefix, ring_name)
        self._connection: kubernetes_api.Connection | None = None
        self._session: aiohttp.ClientSession | None = None
        self._leases: dict[str, _Entry] = {}
        self._resource_version: str | None = None
        self._snapshot = model.RingDesc()
        self._subscribers: list[Callable[[model.RingDesc], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._forgetting: set[str] = set()

    @classmethod
    def from_environment(
        cls,
        namespace: str,
        ring_name: str,
        lease_prefix: str,
        forget_after: datetime.timedelta,
        **options: Any,
    ) -> LeaseRingStore:
        """A store for wherever this process runs: the pod's service account inside a cluster
        (``KUBERNETES_SERVICE_HOST`` is set), else ``$KUBECONFIG`` (its first file) or
        ``~/.kube/config``.  ``options`` are the constructor's keyword arguments."""
        source: kubernetes_api.KubeSource = None
        if not os.environ.get("KUBERNETES_SERVICE_HOST"):
            kubeconfig = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
            source = pathlib.Path(kubeconfig or "~/.kube/config").expanduser()
        return cls(source, namespace, ring_name, lease_prefix, forget_after, **options)

    # -- lifecycle

    async def start(self) -> None:
        """Connect, LIST until it succeeds (or ``start_timeout`` passes), then watch and sweep."""
        if self._session is not None:
            raise RuntimeError("LeaseRingStore already started")
        self._connection = await asyncio.to_thread(kubernetes_api.connect, self._source)
        if not self.namespace:
            self.namespace = self._connection.namespace or "default"
        self._session = kubernetes_api.open_session(self._connection)
        deadline = time.monotonic() + self._start_timeout
        delay = _MIN_BACKOFF
        while True:
            try:
                await self._list()
                break
            except Exception as error:
                if time.monotonic() + delay > deadline:
                    await self.stop()
                    raise
                _log.warning("listing %s ring Leases failed, retrying: %s", self.ring_name, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF)
        self._spawn(self._watch_loop(), f"ring-watch-{self.ring_name}")
        self._spawn(self._sweep_loop(), f"ring-sweep-{self.ring_name}")

    async def stop(self) -> None:
        """Stop watching and close connections; the cache keeps its last view."""
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        self._resource_version = None
        self._forgetting.clear()

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        # Looks up ``self._tasks`` at call time: stop() swaps in a new set.
        self._tasks.discard(task)

    # -- the RingStore interface

    def snapshot(self) -> model.RingDesc:
        return self._snapshot

    def subscribe(self, callback: Callable[[model.RingDesc], None]) -> None:
        self._subscribers.append(callback)

    async def put(self, instance: model.InstanceDesc) -> None:
        body = lease_codec.lease_manifest(
            instance,
            namespace=self.namespace,
            lease_prefix=self.lease_prefix,
            ring_name=self.ring_name,
            lease_duration=self.lease_duration,
        )
        name = body["metadata"]["name"]
        stored = await self._call(
            "PATCH",
            f"/{name}",
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
            body=body,
            content_type="application/apply-patch+yaml",
        )
        if stored is not None:
            self._apply("MODIFIED", stored)
            self._publish()

    async def delete(self, instance_id: str) -> None:
        name = lease_codec.lease_name(self.lease_prefix, self.ring_name, instance_id)
        await self._call("DELETE", f"/{name}", ignore=(404,))
        self._leases.pop(name, None)
        self._publish()

    # -- API calls

    def _collection_path(self) -> str:
        return f"{kubernetes_api.API_PATH}/namespaces/{self.namespace}/leases"

    def _started(self) -> tuple[aiohttp.ClientSession, kubernetes_api.Connection]:
        session, connection = self._session, self._connection
        if session is None or connection is None:
            raise RuntimeError("LeaseRingStore is not started")
        return session, connection

    async def _call(
        self,
        method: str,
        suffix: str = "",
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
        ignore: tuple[int, ...] = (),
    ) -> dict[str, Any] | None:
        session, connection = self._started()
        return await kubernetes_api.request(
            session,
            connection,
            method,
            self._collection_path() + suffix,
            request_timeout=self._request_timeout,
            params=params,
            body=body,
            content_type=content_type,
            ignore=ignore,
        )

    async def _list(self) -> None:
        listed = await self._call("GET", params={"labelSelector": self._selector})
        if listed is None:  # pragma: no cover - GET ignores no status
            return
        leases: dict[str, _Entry] = {}
        for item in listed.get("items") or []:
            name, entry = self._entry(item)
            if entry is None:
                continue
            cached = self._leases.get(name)
            if cached is not None and not kubernetes_api.newer_or_equal(
                entry.resource_version, cached.resource_version
            ):
                entry = cached  # our own put answered after the LIST was taken
            leases[name] = entry
        self._leases = leases
        self._resource_version = str(listed.get("metadata", {}).get("resourceVersion") or "")
        self._publish()

    async def _watch(self) -> None:
        session, connection = self._started()
        await kubernetes_api.watch(
            session,
            connection,
            self._collection_path(),
            label_selector=self._selector,
            resource_version=self._resource_version or "",
            timeout_seconds=self._watch_timeout,
            connect_timeout=self._request_timeout,
            on_event=self._event,
        )

    def _event(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise kubernetes_api.GoneError()
            raise kubernetes_api.KubernetesApiError(
                int(obj.get("code") or 500), str(obj.get("message"))
            )
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if version:
            self._resource_version = str(version)
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self._apply(str(kind), obj)
            self._publish()

    def _entry(self, lease: Mapping[str, Any]) -> tuple[str, _Entry | None]:
        metadata = lease.get("metadata") or {}
        name = str(metadata.get("name", ""))
        try:
            instance = lease_codec.instance_from_lease(lease)
        except (ValueError, TypeError) as error:
            _log.warning("ignoring Lease %s in %s ring: %s", name, self.ring_name, error)
            return name, None
        return name, _Entry(instance, str(metadata.get("resourceVersion", "")))

    def _apply(self, kind: str, lease: Mapping[str, Any]) -> None:
        """Fold one Lease version into the cache unless the cache already holds a newer one."""
        name, entry = self._entry(lease)
        version = str((lease.get("metadata") or {}).get("resourceVersion", ""))
        cached = self._leases.get(name)
        if cached is not None and not kubernetes_api.newer_or_equal(
            version, cached.resource_version
        ):
            return
        if kind == "DELETED" or entry is None:
            self._leases.pop(name, None)
        else:
            self._leases[name] = entry

    def _publish(self) -> None:
        now = time.time()
        visible = [
            entry.instance
            for entry in self._leases.values()
            if self._forget <= 0 or now - entry.instance.heartbeat <= self._forget
        ]
        snapshot = model.RingDesc.of(sorted(visible, key=lambda i: i.id))
        if snapshot == self._snapshot:
            return
        self._snapshot = snapshot
        for callback in list(self._subscribers):
            try:
                callback(snapshot)
            except Exception:
                _log.exception("ring subscriber failed")

    # -- background loops

    async def _watch_loop(self) -> None:
        delay = _MIN_BACKOFF
        while True:
            try:
                if self._resource_version is None:
                    await self._list()
                began = time.monotonic()
                await self._watch()
                # A watch that ran its course resumes from its last version at once; one the
                # server ended straight away waits first, so a misbehaving server is not hammered.
                if time.monotonic() - began < 1.0:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _MAX_BACKOFF)
                else:
                    delay = _MIN_BACKOFF
            except kubernetes_api.GoneError:
                _log.info("%s ring watch expired (410 Gone); listing again", self.ring_name)
                self._resource_version = None
            except Exception as error:
                _log.warning(
                    "%s ring watch failed, listing again in %.1fs: %s", self.ring_name, delay, error
                )
                self._resource_version = None
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, _MAX_BACKOFF)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            self._publish()  # members that went stale since the last event leave the view
            if self._forget <= 0:
                continue
            now = time.time()
            for name, entry in list(self._leases.items()):
                stale = now - entry.instance.heartbeat > self._forget
                if stale and name not in self._forgetting:
                    self._forgetting.add(name)
                    self._spawn(self._forget_lease(name, entry), f"ring-forget-{name}")

    async def _forget_lease(self, name: str, entry: _Entry) -> None:
        """Delete a stale Lease unless it changed since we saw it (resourceVersion precondition)."""
        try:
            deleted = await self._call(
                "DELETE",
                f"/{name}",
                body={
                    "apiVersion": "v1",
                    "kind": "DeleteOptions",
                    "preconditions": {"resourceVersion": entry.resource_version},
                },
                ignore=(404, 409),  # already gone, or the member came back
            )
            if deleted is None:
                return
            _log.info(
                "forgot %s ring member %s: no heartbeat for more than %ss",
                self.ring_name,
                entry.instance.id,
                self._forget,
            )
        except Exception as error:
            _log.warning("cannot forget stale %s ring member %s: %s", self.ring_name, name, error)
        finally:
            self._forgetting.discard(name)
