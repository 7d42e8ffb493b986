"""The Lease ring store without a server: how watch events change its view."""

from __future__ import annotations

import datetime

import pytest
from lokistack.ring import model
from lokistack.ring.kv import kubernetes as kube_kv
from lokistack.ring.kv import kubernetes_api, lease_codec


def test_watch_events_update_the_view() -> None:
    """Event handling without a server (the store's internals: watch streams are not public)."""
    store = kube_kv.LeaseRingStore(
        None, "ns", "ingester", "lokistack-ring", datetime.timedelta(minutes=2)
    )
    seen: list[model.RingDesc] = []
    store.subscribe(seen.append)
    now = datetime.datetime.now(datetime.UTC).timestamp()

    def lease(version: str, state: model.InstanceState) -> dict[str, object]:
        manifest = lease_codec.lease_manifest(
            model.InstanceDesc.create("a", "a:1", state=state, heartbeat=now),
            namespace="ns",
            lease_prefix="lokistack-ring",
            ring_name="ingester",
            lease_duration=datetime.timedelta(minutes=1),
        )
        manifest["metadata"]["resourceVersion"] = version
        return manifest

    store._event({"type": "ADDED", "object": lease("10", model.InstanceState.ACTIVE)})
    store._event({"type": "MODIFIED", "object": lease("12", model.InstanceState.LEAVING)})
    store._event({"type": "MODIFIED", "object": lease("11", model.InstanceState.ACTIVE)})
    assert store.snapshot().instances["a"].state is model.InstanceState.LEAVING, "older ignored"
    store._event({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "20"}}})
    assert store._resource_version == "20"
    store._event({"type": "DELETED", "object": lease("21", model.InstanceState.LEAVING)})
    assert len(store.snapshot()) == 0
    assert [len(desc) for desc in seen] == [1, 1, 0]
    gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    with pytest.raises(kubernetes_api.GoneError):
        store._event({"type": "ERROR", "object": gone})
    with pytest.raises(kubernetes_api.KubernetesApiError, match="500"):
        store._event({"type": "ERROR", "object": {"code": 500, "message": "boom"}})
