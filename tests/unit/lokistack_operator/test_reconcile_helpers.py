"""The reconciler's pure helpers: ownership, keys, replica overrides, API paths, credentials."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import kopf
import pytest
from kubernetes import client as kube_client
from lokistack_operator import handlers, kube, manifests, reconcile, scaledown

LOG = logging.getLogger("test")

STACK: dict[str, Any] = {
    "apiVersion": "lokistack.dev/v1",
    "kind": "LokiStack",
    "metadata": {"name": "logs", "namespace": "ns", "uid": "uid-1"},
}


def test_with_owner_adds_namespace_and_one_controller_reference() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "logs-config"}}
    owned = reconcile.with_owner(obj, STACK)
    assert owned["metadata"]["namespace"] == "ns"
    assert owned["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "lokistack.dev/v1",
            "kind": "LokiStack",
            "name": "logs",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert "namespace" not in obj["metadata"]  # the input is not modified
    assert reconcile.with_owner(owned, STACK) == owned  # already owned: unchanged
    assert reconcile.owned(owned, "uid-1")
    assert not reconcile.owned(owned, "uid-2")
    assert not reconcile.owned(obj, "uid-1")


def test_object_key_and_selector() -> None:
    obj = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "logs-ingester"}}
    assert reconcile.object_key(obj) == ("apps/v1", "StatefulSet", "logs-ingester")
    assert reconcile.selector("logs") == (
        "app.kubernetes.io/instance=logs,app.kubernetes.io/managed-by=lokistack-operator"
    )


def test_ingester_statefulset_is_found_by_kind_and_component() -> None:
    labels = {"app.kubernetes.io/component": "ingester"}
    assert reconcile.is_ingester_statefulset(
        {"kind": "StatefulSet", "metadata": {"name": "x", "labels": labels}}
    )
    assert not reconcile.is_ingester_statefulset(
        {"kind": "Service", "metadata": {"name": "x", "labels": labels}}
    )
    assert not reconcile.is_ingester_statefulset(
        {"kind": "StatefulSet", "metadata": {"name": "x", "labels": {}}}
    )


def test_with_replicas_copies() -> None:
    manifest: dict[str, Any] = {"kind": "StatefulSet", "spec": {"replicas": 2, "serviceName": "s"}}
    assert scaledown.with_replicas(manifest, 3) == {
        "kind": "StatefulSet",
        "spec": {"replicas": 3, "serviceName": "s"},
    }
    assert manifest["spec"]["replicas"] == 2
    assert scaledown.pod_name("logs-ingester", 2) == "logs-ingester-2"


@pytest.mark.parametrize(
    ("api_version", "kind", "namespace", "name", "path"),
    [
        ("v1", "ConfigMap", "ns", "c", "/api/v1/namespaces/ns/configmaps/c"),
        ("apps/v1", "StatefulSet", "ns", None, "/apis/apps/v1/namespaces/ns/statefulsets"),
        (
            "lokistack.dev/v1",
            "LokiStack",
            "ns",
            "s",
            "/apis/lokistack.dev/v1/namespaces/ns/lokistacks/s",
        ),
        (
            "coordination.k8s.io/v1",
            "Lease",
            "ns",
            None,
            "/apis/coordination.k8s.io/v1/namespaces/ns/leases",
        ),
    ],
)
def test_resource_path(
    api_version: str, kind: str, namespace: str, name: str | None, path: str
) -> None:
    assert kube.resource_path(api_version, kind, namespace, name) == path


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(kube.KubeError, match="does not know"):
        kube.resource_path("example.com/v1", "Widget", "ns")


def test_connection_info_uses_the_client_configuration() -> None:
    configuration = kube_client.Configuration(host="https://10.0.0.1:6443")
    configuration.api_key = {"BearerToken": "abc"}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    configuration.ssl_ca_cert = "/tmp/ca.crt"
    info = kube.connection_info(configuration)
    assert info.server == "https://10.0.0.1:6443"
    assert (info.scheme, info.token) == ("Bearer", "abc")
    assert info.ca_path == "/tmp/ca.crt"
    assert info.insecure is False
    anonymous = kube.connection_info(kube_client.Configuration(host="http://127.0.0.1:8080"))
    assert anonymous.token is None


@dataclasses.dataclass
class RecordingKube(kube.Kube):
    """Live objects in memory; records applies and deletes."""

    live: dict[tuple[str, str], list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    applied: list[str] = dataclasses.field(default_factory=list)
    deleted: list[str] = dataclasses.field(default_factory=list)

    async def list(
        self, api_version: str, kind: str, namespace: str, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        assert label_selector == reconcile.selector("logs")
        return self.live.get((api_version, kind), [])

    async def get(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        return None

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        if obj["metadata"]["name"] == "broken":
            raise kube.KubeError(422, "invalid")
        self.applied.append(f"{obj['kind']}/{obj['metadata']['name']}")
        return dict(obj)

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        self.deleted.append(f"{kind}/{name}")
        return True


def _object(kind: str, name: str, uid: str | None = "uid-1") -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "ns"}
    if uid is not None:
        metadata["ownerReferences"] = [{"uid": uid}]
    return {"apiVersion": "v1", "kind": kind, "metadata": metadata}


def _context(client: kube.Kube) -> reconcile.Context:
    return reconcile.Context(kube=client, settings=manifests.Settings())


async def test_prune_deletes_only_owned_objects_no_longer_rendered() -> None:
    client = RecordingKube(kube_client.ApiClient(kube_client.Configuration()))
    client.live[("v1", "ConfigMap")] = [
        _object("ConfigMap", "logs-config"),
        _object("ConfigMap", "logs-old"),
        _object("ConfigMap", "logs-foreign", uid="someone-else"),
        _object("ConfigMap", "logs-unowned", uid=None),
    ]
    rendered = [_object("ConfigMap", "logs-config")]
    await reconcile.prune(_context(client), STACK, rendered, LOG)
    assert client.deleted == ["ConfigMap/logs-old"]


async def test_apply_all_applies_everything_and_reports_failures_together() -> None:
    client = RecordingKube(kube_client.ApiClient(kube_client.Configuration()))
    rendered = [_object("ConfigMap", "a"), _object("ConfigMap", "broken"), _object("Service", "b")]
    with pytest.raises(kube.KubeError, match="ConfigMap broken"):
        await reconcile.apply_all(_context(client), STACK, rendered, LOG)
    assert client.applied == ["ConfigMap/a", "Service/b"]


def test_known_stacks_find_the_users_of_a_secret() -> None:
    known = handlers.Known()
    for namespace, name, secret in (("a", "s1", "x"), ("a", "s2", "x"), ("b", "s3", "x")):
        known.stacks[(namespace, name)] = {"spec": {"storage": {"secret": {"name": secret}}}}
    known.stacks[("a", "s4")] = {"spec": {}}
    assert known.using_secret("a", "x") == ["s1", "s2"]
    assert known.using_secret("a", "y") == []
    assert known.using_secret(None, "x") == []


def test_settings_keep_kopf_bookkeeping_out_of_status() -> None:
    settings = kopf.OperatorSettings()
    handlers.configure_settings(settings)
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert isinstance(settings.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
