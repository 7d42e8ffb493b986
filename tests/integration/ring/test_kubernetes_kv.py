"""The Lease ring store against a real API server: writes, the watch cache, forgetting, and a
lifecycler on top of it."""

from __future__ import annotations

import datetime
import pathlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from lokistack.ring import lifecycler, model
from lokistack.ring.kv import kubernetes as kube_kv
from lokistack.ring.kv import kubernetes_api, lease_codec

from tests.support import polling

T = TypeVar("T")
StoreFactory = Callable[..., Awaitable[kube_kv.LeaseRingStore]]
td = datetime.timedelta


@pytest.fixture
async def new_store(kubeconfig: pathlib.Path, namespace: str) -> AsyncIterator[StoreFactory]:
    """Start LeaseRingStores on the test namespace; all are stopped after the test."""
    started: list[kube_kv.LeaseRingStore] = []

    async def make(
        ring_name: str = "ingester",
        forget_after: td | None = None,
        source: kubernetes_api.KubeSource = None,
        **options: object,
    ) -> kube_kv.LeaseRingStore:
        store = kube_kv.LeaseRingStore(
            source if source is not None else kubeconfig,
            namespace=namespace,
            ring_name=ring_name,
            lease_prefix="test-ring",
            forget_after=forget_after if forget_after is not None else td(minutes=2),
            **options,  # type: ignore[arg-type]
        )
        await store.start()
        started.append(store)
        return store

    yield make
    for store in started:
        await store.stop()


def member(
    instance_id: str, heartbeat: float | None = None, **changes: object
) -> model.InstanceDesc:
    now = time.time()
    desc = model.InstanceDesc.create(
        instance_id,
        f"{instance_id}.ingesters:9095",
        zone="zone-a",
        tokens=range(7, 7 * 129, 7),
        heartbeat=now if heartbeat is None else heartbeat,
        registered=now - 30,
    )
    return desc.replace(**changes) if changes else desc


def coordination(kube_api: kube_client.ApiClient) -> kube_client.CoordinationV1Api:
    return kube_client.CoordinationV1Api(kube_api)


async def test_put_snapshot_and_delete(
    new_store: StoreFactory, kube_api: kube_client.ApiClient, namespace: str
) -> None:
    store = await new_store()
    instance = member("Ingester_0")  # not a DNS name: gets a sanitized Lease name
    await store.put(instance)

    _same(store.snapshot().get("Ingester_0"), instance)  # from the write's answer, no waiting
    name = lease_codec.lease_name("test-ring", "ingester", "Ingester_0")
    lease = coordination(kube_api).read_namespaced_lease(name, namespace)
    assert lease.spec.holder_identity == "Ingester_0"
    assert lease.spec.lease_duration_seconds == 60
    assert (lease.metadata.labels or {})[lease_codec.LABEL_RING] == "ingester"
    assert (lease.metadata.annotations or {})[lease_codec.ANNOTATION_STATE] == "ACTIVE"
    assert lease.spec.renew_time.timestamp() == pytest.approx(instance.heartbeat, abs=1e-5)

    await store.delete("Ingester_0")
    assert store.snapshot().get("Ingester_0") is None
    leases = coordination(kube_api).list_namespaced_lease(namespace).items
    assert [lease.metadata.name for lease in leases] == []
    await store.delete("Ingester_0")  # deleting twice is not an error


def _same(got: model.InstanceDesc | None, want: model.InstanceDesc) -> bool:
    """Equal up to the microsecond rounding of Kubernetes MicroTime."""
    assert got is not None
    assert got.replace(heartbeat=0.0, registered=0.0) == want.replace(heartbeat=0.0, registered=0.0)
    assert got.heartbeat == pytest.approx(want.heartbeat, abs=1e-5)
    assert got.registered == pytest.approx(want.registered, abs=1e-5)
    return True


async def test_watcher_follows_writer(new_store: StoreFactory, kubeconfig: pathlib.Path) -> None:
    writer = await new_store()
    watcher = await new_store(
        source=lambda: kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig)
        )
    )
    other_ring = await new_store(ring_name="distributor")
    seen: list[model.RingDesc] = []
    watcher.subscribe(seen.append)

    first = member("ingester-0", heartbeat=time.time() - 5)
    await writer.put(first)
    await other_ring.put(member("distributor-0"))
    got = await polling.eventually(lambda: watcher.snapshot().get("ingester-0"), lambda: str(seen))
    _same(got, first)

    beat = first.replace(heartbeat=time.time())
    await writer.put(beat)
    await polling.eventually(
        lambda: (i := watcher.snapshot().get("ingester-0")) and i.heartbeat > first.heartbeat + 1,
        lambda: repr(watcher.snapshot()),
    )
    await writer.put(beat.replace(state=model.InstanceState.LEAVING))
    await polling.eventually(
        lambda: (
            (i := watcher.snapshot().get("ingester-0")) and i.state is model.InstanceState.LEAVING
        ),
        lambda: repr(watcher.snapshot()),
    )

    await writer.delete("ingester-0")
    await polling.eventually(lambda: len(watcher.snapshot()) == 0, lambda: repr(watcher.snapshot()))
    assert set(other_ring.snapshot().instances) == {"distributor-0"}, "rings are separate"
    assert seen, "subscribers are called"


async def test_stale_members_are_forgotten(
    new_store: StoreFactory, kube_api: kube_client.ApiClient, namespace: str
) -> None:
    writer = await new_store(forget_after=td(0))  # never forgets by itself
    await writer.put(member("stale", heartbeat=time.time() - 120))
    await writer.put(member("fresh"))
    assert set(writer.snapshot().instances) == {"stale", "fresh"}

    watcher = await new_store(forget_after=td(seconds=60), sweep_interval=td(milliseconds=100))
    assert set(watcher.snapshot().instances) == {"fresh"}, "dropped from the view at once"

    def lease_names() -> set[str]:
        leases = coordination(kube_api).list_namespaced_lease(namespace).items
        return {str(lease.metadata.name) for lease in leases}

    stale_name = lease_codec.lease_name("test-ring", "ingester", "stale")
    await polling.eventually(
        lambda: stale_name not in lease_names(), lambda: f"Leases: {lease_names()}"
    )
    await polling.eventually(
        lambda: "stale" not in writer.snapshot().instances, lambda: "writer view"
    )
    assert set(writer.snapshot().instances) == {"fresh"}


async def test_restarted_watcher_lists_again(new_store: StoreFactory) -> None:
    writer = await new_store()
    watcher = await new_store()
    await writer.put(member("ingester-a"))
    await polling.eventually(lambda: watcher.snapshot().get("ingester-a"), lambda: "first member")

    await watcher.stop()
    await writer.put(member("ingester-b"))
    await writer.delete("ingester-a")
    assert set(watcher.snapshot().instances) == {"ingester-a"}, "a stopped store keeps its view"

    await watcher.start()
    assert set(watcher.snapshot().instances) == {"ingester-b"}


async def test_lifecycler_joins_heartbeats_and_leaves(
    new_store: StoreFactory, tmp_path: pathlib.Path
) -> None:
    store = await new_store()
    watcher = await new_store()
    member_lifecycler = lifecycler.Lifecycler(
        store,
        "ingester-0",
        "10.0.0.1:9095",
        "zone-a",
        128,
        td(milliseconds=200),
        tmp_path / "tokens.json",
    )
    await member_lifecycler.start()
    try:

        def active() -> model.InstanceDesc | None:
            found = watcher.snapshot().get("ingester-0")
            return (
                found if found is not None and found.state is model.InstanceState.ACTIVE else None
            )

        joined = await polling.eventually(active, lambda: repr(watcher.snapshot()))
        assert len(joined.tokens) == 128
        await polling.eventually(
            lambda: (i := watcher.snapshot().get("ingester-0")) and i.heartbeat > joined.heartbeat,
            lambda: "heartbeat did not advance",
        )
        await member_lifecycler.leave()
        await polling.eventually(
            lambda: (
                (i := watcher.snapshot().get("ingester-0"))
                and i.state is model.InstanceState.LEAVING
            ),
            lambda: repr(watcher.snapshot()),
        )
    finally:
        await member_lifecycler.stop()
    await polling.eventually(lambda: len(watcher.snapshot()) == 0, lambda: repr(watcher.snapshot()))
