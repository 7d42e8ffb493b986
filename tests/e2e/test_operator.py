"""The operator end to end: a LokiStack on the real control plane, reconciled by the real process.

Kubernetes runs no containers here (kwok marks pods Running and Ready), so the scale-down test
starts a real ``lokistack`` ingester on the IP kwok gave the pod that is about to be removed: the
operator reaches it at ``http://<podIP>:3100`` exactly as it would in a cluster.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import pathlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client as kube_client
from lokistack_operator import kube, manifests, spec, storage
from testinfra import minio as minio_infra
from testinfra import processes

from tests.support import lokistack_process, polling

REPO = pathlib.Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "lokistack.dev", "v1", "lokistacks"
CONFIG_HASH = "lokistack.dev/config-hash"
WAIT = 60.0


@dataclasses.dataclass
class Cluster:
    """Synchronous helpers over the API for one namespace."""

    api: kube_client.ApiClient
    namespace: str

    @property
    def custom(self) -> kube_client.CustomObjectsApi:
        return kube_client.CustomObjectsApi(self.api)

    @property
    def core(self) -> kube_client.CoreV1Api:
        return kube_client.CoreV1Api(self.api)

    def get(self, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
        return asyncio.run(kube.Kube(self.api).get(api_version, kind, self.namespace, name))

    def list_objects(self, api_version: str, kind: str, selector: str) -> list[dict[str, Any]]:
        return asyncio.run(kube.Kube(self.api).list(api_version, kind, self.namespace, selector))

    def stack(self, name: str) -> dict[str, Any]:
        found = self.get(f"{GROUP}/{VERSION}", "LokiStack", name)
        assert found is not None, f"LokiStack {name} is gone"
        return found

    def create_stack(self, body: dict[str, Any]) -> dict[str, Any]:
        created = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, body
        )
        assert isinstance(created, dict)
        return created

    def patch_stack(self, name: str, patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, patch,
            _content_type="application/merge-patch+json",
        )  # fmt: skip

    def conditions(self, name: str) -> list[dict[str, Any]]:
        return list((self.stack(name).get("status") or {}).get("conditions") or [])

    def active(self, name: str, kind: str, reason: str) -> bool:
        return any(
            c["type"] == kind and c.get("reason") == reason and c["status"] == "True"
            for c in self.conditions(name)
        )

    def wait_active(self, name: str, kind: str, reason: str, timeout: float = WAIT) -> None:
        polling.wait_until(
            lambda: self.active(name, kind, reason),
            timeout=timeout,
            describe=lambda: f"{kind}/{reason} never became True: {self.conditions(name)}",
        )

    def pods(self, stack: str, component: str) -> list[dict[str, Any]]:
        selector = f"app.kubernetes.io/instance={stack},app.kubernetes.io/component={component}"
        return [
            pod
            for pod in self.list_objects("v1", "Pod", selector)
            if not pod["metadata"].get("deletionTimestamp")
        ]

    def put_secret(self, name: str, data: dict[str, str]) -> None:
        body = kube_client.V1Secret(metadata=kube_client.V1ObjectMeta(name=name), string_data=data)
        try:
            self.core.create_namespaced_secret(self.namespace, body)
        except kube_client.ApiException as error:
            if error.status != 409:
                raise
            self.core.replace_namespaced_secret(name, self.namespace, body)


@pytest.fixture
def cluster(kube_api: kube_client.ApiClient, e2e_namespace: str) -> Cluster:
    return Cluster(kube_api, e2e_namespace)


@pytest.fixture
def storage_data(minio_server: minio_infra.MinioServer, minio_bucket: str) -> dict[str, str]:
    """A storage Secret's data for a fresh bucket of the test MinIO."""
    return {
        "endpoint": f"http://{minio_server.endpoint}",
        "bucketnames": minio_bucket,
        "access_key_id": minio_server.access_key,
        "access_key_secret": minio_server.secret_key,
        "region": minio_infra.REGION,
        "forcepathstyle": "true",
    }


def demo_stack(name: str, secret: str, **spec_changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((REPO / "examples" / "lokistack-demo.yaml").read_text())
    body["metadata"]["name"] = name
    body["spec"]["storage"]["secret"]["name"] = secret
    body["spec"].update(spec_changes)
    return body


def expected_objects(created: dict[str, Any], data: dict[str, str]) -> list[tuple[str, str, str]]:
    """(apiVersion, kind, name) of every object the operator must create for ``created``."""
    parsed = spec.parse_spec(created["spec"])
    secret = storage.parse_storage_secret({k: v.encode() for k, v in data.items()})
    stack = manifests.Stack(
        name=created["metadata"]["name"],
        namespace=created["metadata"]["namespace"],
        uid=created["metadata"]["uid"],
        spec=parsed,
        storage=secret,
        secret_name=parsed.storage.secret.name,
        secret_hash="",
    )
    return [
        (obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
        for obj in manifests.build_all(stack, manifests.Settings())
    ]


def resource_versions(cluster: Cluster, keys: list[tuple[str, str, str]]) -> dict[str, str]:
    versions: dict[str, str] = {}
    for api_version, kind, name in keys:
        found = cluster.get(api_version, kind, name)
        versions[f"{kind}/{name}"] = found["metadata"]["resourceVersion"] if found else "missing"
    return versions


def template_annotations(cluster: Cluster, stack: str) -> dict[str, dict[str, str]]:
    selector = f"app.kubernetes.io/instance={stack}"
    return {
        f"{kind}/{workload['metadata']['name']}": dict(
            workload["spec"]["template"]["metadata"].get("annotations") or {}
        )
        for kind in ("Deployment", "StatefulSet")
        for workload in cluster.list_objects("apps/v1", kind, selector)
    }


def pod_names(cluster: Cluster, stack: str) -> set[str]:
    pods = cluster.list_objects("v1", "Pod", f"app.kubernetes.io/instance={stack}")
    return {pod["metadata"]["name"] for pod in pods if not pod["metadata"].get("deletionTimestamp")}


def test_demo_stack_lifecycle(
    operator: processes.ManagedProcess, cluster: Cluster, storage_data: dict[str, str]
) -> None:
    name, secret = "lokistack-demo", "lokistack-demo-storage"
    data = storage_data
    cluster.put_secret(secret, data)
    created = cluster.create_stack(demo_stack(name, secret))
    keys = expected_objects(created, data)
    assert {kind for _, kind, _ in keys} >= {"ConfigMap", "Deployment", "StatefulSet", "Service"}

    # Every object exists, every pod runs, the bucket probe passes: Ready.
    polling.wait_until(
        lambda: all(cluster.get(*key) for key in keys),
        timeout=WAIT,
        describe=lambda: f"missing: {[k for k in keys if not cluster.get(*k)]}",
    )
    cluster.wait_active(name, "Ready", "ReadyComponents")
    status = cluster.stack(name)["status"]
    assert status["observedGeneration"] == created["metadata"]["generation"]
    assert status["components"]["ingester"]["Ready"] == [f"{name}-ingester-0"]
    assert not any(c["type"] == "Degraded" and c["status"] == "True" for c in status["conditions"])
    for key in keys:
        found = cluster.get(*key)
        assert found is not None
        assert found["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]

    # A second reconcile (an annotation touch makes kopf report an update) changes nothing.
    time.sleep(2)  # let the controllers finish their own status writes
    before = resource_versions(cluster, keys)
    cluster.patch_stack(name, {"metadata": {"annotations": {"e2e.lokistack.dev/touch": "1"}}})
    polling.wait_until(
        lambda: (
            "e2e.lokistack.dev/touch"
            in cluster.stack(name)["metadata"]["annotations"].get(
                "lokistack.dev/last-handled-configuration", ""
            )
        ),
        timeout=WAIT,
        describe="the operator never handled the annotation change",
    )
    time.sleep(1)
    assert resource_versions(cluster, keys) == before

    # The Secret goes away: Degraded, objects kept; it comes back: Ready again.
    cluster.core.delete_namespaced_secret(secret, cluster.namespace)
    cluster.wait_active(name, "Degraded", "MissingObjectStorageSecret")
    assert all(cluster.get(*key) for key in keys)
    cluster.put_secret(secret, data)
    cluster.wait_active(name, "Ready", "ReadyComponents")

    # A per-tenant limit: only the runtime ConfigMap changes; no pod template, no restart.
    runtime = f"{name}-runtime-config"
    runtime_before = cluster.get("v1", "ConfigMap", runtime)
    annotations_before = template_annotations(cluster, name)
    pods_before = pod_names(cluster, name)
    cluster.patch_stack(
        name, {"spec": {"limits": {"tenants": {"team-b": {"ingestion": {"ingestionRate": 3}}}}}}
    )
    polling.wait_until(
        lambda: "team-b" in str((cluster.get("v1", "ConfigMap", runtime) or {}).get("data")),
        timeout=WAIT,
        describe=lambda: f"runtime config unchanged: {cluster.get('v1', 'ConfigMap', runtime)}",
    )
    assert runtime_before is not None
    time.sleep(1)
    assert template_annotations(cluster, name) == annotations_before
    assert pod_names(cluster, name) == pods_before

    # A config field: the config hash changes and the pods roll.
    cluster.patch_stack(
        name, {"spec": {"limits": {"global": {"ingestion": {"maxLineSize": 123456}}}}}
    )
    polling.wait_until(
        lambda: all(
            annotations.get(CONFIG_HASH) != annotations_before[workload].get(CONFIG_HASH)
            for workload, annotations in template_annotations(cluster, name).items()
        ),
        timeout=WAIT,
        describe=lambda: f"config hashes: {template_annotations(cluster, name)}",
    )
    distributor_before = {p for p in pods_before if p.startswith(f"{name}-distributor-")}
    polling.wait_until(
        lambda: (
            {p["metadata"]["name"] for p in cluster.pods(name, "distributor")} - distributor_before
        ),
        timeout=WAIT,
        describe="the distributor pods did not roll",
    )

    # Unmanaged: the operator says so and leaves the objects alone.
    cluster.patch_stack(name, {"spec": {"managementState": "Unmanaged"}})
    cluster.wait_active(name, "Warning", "ManagementStateUnmanaged")
    runtime_unmanaged = cluster.get("v1", "ConfigMap", runtime)
    cluster.patch_stack(
        name, {"spec": {"limits": {"tenants": {"team-c": {"ingestion": {"ingestionRate": 2}}}}}}
    )
    time.sleep(2)
    assert cluster.get("v1", "ConfigMap", runtime) == runtime_unmanaged

    # Deleting the stack garbage-collects everything it owned.
    cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, cluster.namespace, PLURAL, name)
    polling.wait_until(
        lambda: not any(cluster.get(*key) for key in keys),
        timeout=WAIT,
        describe=lambda: f"still there: {[k for k in keys if cluster.get(*k)]}",
    )


@dataclasses.dataclass
class PodIngester(lokistack_process.LokistackProcess):
    """A lokistack process serving on a pod's (loopback) IP instead of 127.0.0.1."""

    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"


@dataclasses.dataclass
class Timeline:
    """When things happened, seen by a watcher thread polling every 50 ms."""

    lease_gone: float | None = None
    shrunk: float | None = None
    exited: float | None = None
    scaling_seen: bool = False


def watch(
    cluster: Cluster, stack: str, pod: str, ingester: PodIngester, stop: threading.Event
) -> Timeline:
    timeline = Timeline()

    def loop() -> None:
        while not stop.is_set():
            now = time.monotonic()
            leases = cluster.list_objects(
                "coordination.k8s.io/v1", "Lease", "lokistack.dev/ring=ingester"
            )
            holders = {lease["spec"].get("holderIdentity") for lease in leases}
            if timeline.lease_gone is None and pod not in holders:
                timeline.lease_gone = now
            statefulset = cluster.get("apps/v1", "StatefulSet", f"{stack}-ingester")
            if timeline.shrunk is None and statefulset and statefulset["spec"]["replicas"] == 2:
                timeline.shrunk = now
            if timeline.exited is None and not ingester.running():
                timeline.exited = now
            if cluster.active(stack, "Warning", "ScalingDownIngesters"):
                timeline.scaling_seen = True
            time.sleep(0.05)

    threading.Thread(target=loop, daemon=True).start()
    return timeline


@dataclasses.dataclass
class PodIngesters:
    """Starts lokistack ingesters on pod IPs, in a namespace's Lease ring; stops them after."""

    workdir: pathlib.Path
    kubeconfig: pathlib.Path
    started: list[PodIngester] = dataclasses.field(default_factory=list)

    def start(self, namespace: str, stack: str, pod: str, address: str) -> PodIngester:
        ring = {
            "instance_id": pod,
            "instance_addr": address,
            "heartbeat_period": "1s",
            "replication_factor": 1,
            "kvstore": {
                "store": "kubernetes",
                "kubernetes": {"namespace": namespace, "lease_prefix": f"{stack}-ring"},
            },
        }
        ingester = PodIngester(
            pod,
            self.workdir / pod,
            {
                "target": "ingester",
                "server": {"http_listen_address": address, "grpc_listen_address": address},
                "ring": ring,
            },
            env={"KUBECONFIG": str(self.kubeconfig)},
            http_port=3100,
            grpc_port=9095,
            host=address,
        )
        self.started.append(ingester)
        ingester.start()
        return ingester


@pytest.fixture
def pod_ingesters(tmp_path: pathlib.Path, kubeconfig: pathlib.Path) -> Iterator[PodIngesters]:
    ingesters = PodIngesters(tmp_path, kubeconfig)
    yield ingesters
    for process in ingesters.started:
        process.stop()


def test_scale_down_flushes_the_ingester_before_removing_it(
    operator: processes.ManagedProcess,
    cluster: Cluster,
    storage_data: dict[str, str],
    pod_ingesters: PodIngesters,
) -> None:
    name, secret = "scale", "scale-storage"
    cluster.put_secret(secret, storage_data)
    body = demo_stack(name, secret)
    body["spec"]["template"] = {"ingester": {"replicas": 3}}
    cluster.create_stack(body)
    cluster.wait_active(name, "Ready", "ReadyComponents")
    pod = f"{name}-ingester-2"
    found = cluster.get("v1", "Pod", pod)
    assert found is not None
    address = found["status"]["podIP"]
    assert address.startswith("127.244."), address

    # A real ingester on that pod's IP, in the stack's Lease ring, as the pod would run it.
    ingester = pod_ingesters.start(cluster.namespace, name, pod, address)
    polling.wait_until(
        lambda: any(
            lease["spec"].get("holderIdentity") == pod
            for lease in cluster.list_objects(
                "coordination.k8s.io/v1", "Lease", "lokistack.dev/ring=ingester"
            )
        ),
        timeout=20,
        describe="the ingester never registered its Lease",
    )

    stop = threading.Event()
    timeline = watch(cluster, name, pod, ingester, stop)
    try:
        cluster.patch_stack(name, {"spec": {"template": {"ingester": {"replicas": 2}}}})
        polling.wait_until(
            lambda: timeline.shrunk is not None and timeline.exited is not None,
            timeout=WAIT,
            describe=lambda: f"timeline: {timeline}",
        )
    finally:
        stop.set()
    assert ingester.process is not None and ingester.process.popen is not None
    assert ingester.process.popen.wait(10) == 0
    log = ingester.log_path.read_text()
    assert "lokistack stopping" in log
    # The ingester flushed and left the ring before the StatefulSet lost its pod.
    assert timeline.lease_gone is not None and timeline.shrunk is not None
    assert timeline.lease_gone <= timeline.shrunk, timeline
    polling.wait_until(
        lambda: len(cluster.pods(name, "ingester")) == 2,
        timeout=WAIT,
        describe=lambda: (
            f"ingester pods: {[p['metadata']['name'] for p in cluster.pods(name, 'ingester')]}"
        ),
    )
    reasons = {c["reason"]: c for c in cluster.conditions(name)}
    assert pod in reasons["ScalingDownIngesters"]["message"]
    events = cluster.core.list_namespaced_event(
        cluster.namespace, field_selector=f"involvedObject.name={name}"
    )
    retired = [e.message for e in events.items if e.reason == "IngesterRetired"]
    assert any(f"{pod} flushed and left the ring" in (m or "") for m in retired), retired
    cluster.wait_active(name, "Ready", "ReadyComponents")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"size": "2x.huge"}, "spec.size"),
        ({"replication": {"factor": 3}}, "replication factor must not exceed"),
        ({"storage": {"secret": {"type": "s3"}}}, "spec.storage.secret.name"),
    ],
    ids=["unknown-size", "replication-above-ingesters", "missing-secret-name"],
)
def test_invalid_stacks_are_rejected_by_the_api_server(
    lokistack_crd: dict[str, Any], cluster: Cluster, change: dict[str, Any], message: str
) -> None:
    body = demo_stack("invalid", "whatever")
    body["spec"] = copy.deepcopy(body["spec"]) | change
    with pytest.raises(kube_client.ApiException) as rejected:
        cluster.create_stack(body)
    assert rejected.value.status == 422
    assert message in str(rejected.value.body), rejected.value.body
