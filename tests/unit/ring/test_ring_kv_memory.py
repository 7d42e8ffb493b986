"""The in-memory store and the store factory."""

from __future__ import annotations

import datetime
import logging
import pathlib
import uuid

import pytest
from lokistack import config
from lokistack.ring import kv, model
from lokistack.ring.kv import kubernetes as kube_kv
from lokistack.ring.kv import memory


async def test_put_snapshot_delete_and_subscribe() -> None:
    store: kv.RingStore = memory.MemoryRingStore()
    seen: list[model.RingDesc] = []
    store.subscribe(seen.append)
    await store.start()
    a = model.InstanceDesc.create("a", "a:9095", tokens=[1])
    await store.put(a)
    before = store.snapshot()
    await store.put(a.replace(state=model.InstanceState.LEAVING))
    assert before.instances["a"].state is model.InstanceState.ACTIVE, "snapshots never change"
    assert store.snapshot().instances["a"].state is model.InstanceState.LEAVING
    await store.delete("a")
    await store.delete("a")  # absent: no error, no notification
    assert len(store.snapshot()) == 0
    assert [len(desc) for desc in seen] == [1, 1, 0]
    await store.stop()


async def test_failing_subscriber_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = memory.MemoryRingStore()
    seen: list[int] = []

    def broken(desc: model.RingDesc) -> None:
        raise RuntimeError("boom")

    store.subscribe(broken)
    store.subscribe(lambda desc: seen.append(len(desc)))
    with caplog.at_level(logging.ERROR):
        await store.put(model.InstanceDesc.create("a", "a:9095"))
    assert seen == [1]
    assert "ring subscriber failed" in caplog.text


def test_shared_store_per_ring_name() -> None:
    name = f"ring-{uuid.uuid4().hex[:6]}"
    assert memory.shared(name) is memory.shared(name)
    assert memory.shared(name) is not memory.shared(name + "-other")


def test_new_store_from_config() -> None:
    name = f"ring-{uuid.uuid4().hex[:6]}"
    minute = datetime.timedelta(minutes=1)
    assert kv.new_store(config.KVStore(), name, minute) is memory.shared(name)
    lease_store = kv.new_store(
        config.KVStore(
            store="kubernetes",
            kubernetes=config.KubernetesKV(namespace="loki", lease_prefix="stack-ring"),
        ),
        "ingester",
        minute,
    )
    assert isinstance(lease_store, kube_kv.LeaseRingStore)
    assert (lease_store.namespace, lease_store.lease_prefix) == ("loki", "stack-ring")
    assert lease_store.forget_after == datetime.timedelta(minutes=2)
    assert lease_store.lease_duration == minute


def test_lease_store_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    minute = datetime.timedelta(minutes=1)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", "/tmp/a.yaml:/tmp/b.yaml")
    store = kube_kv.LeaseRingStore.from_environment("ns", "ingester", "p", minute)
    assert store._source == pathlib.Path("/tmp/a.yaml")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    in_cluster = kube_kv.LeaseRingStore.from_environment("ns", "ingester", "p", minute)
    assert in_cluster._source is None
