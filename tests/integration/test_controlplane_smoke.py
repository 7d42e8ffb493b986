"""The control-plane fixture is a real Kubernetes: controllers, scheduler, kwok nodes, volumes,
and the Lease API the ring is built on."""

from __future__ import annotations

import datetime

from kubernetes import client as kube_client
from kubernetes import watch as kube_watch

from tests.support import polling

IMAGE = "lokistack.invalid/not-pulled:0"  # kwok runs no containers; the image is never fetched
LABELS = {"app": "smoke"}


def _pod_template() -> kube_client.V1PodTemplateSpec:
    return kube_client.V1PodTemplateSpec(
        metadata=kube_client.V1ObjectMeta(labels=LABELS),
        spec=kube_client.V1PodSpec(containers=[kube_client.V1Container(name="main", image=IMAGE)]),
    )


def _running_ready(pods: list[kube_client.V1Pod]) -> list[kube_client.V1Pod]:
    return [
        pod
        for pod in pods
        if pod.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    ]


def test_nodes_are_ready(kube_api: kube_client.ApiClient) -> None:
    nodes = kube_client.CoreV1Api(kube_api).list_node().items
    ready = [
        node.metadata.name
        for node in nodes
        if any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
    ]
    assert len(ready) == 3, ready


def test_deployment_reaches_running_pods(kube_api: kube_client.ApiClient, namespace: str) -> None:
    apps = kube_client.AppsV1Api(kube_api)
    core = kube_client.CoreV1Api(kube_api)
    apps.create_namespaced_deployment(
        namespace,
        kube_client.V1Deployment(
            metadata=kube_client.V1ObjectMeta(name="smoke"),
            spec=kube_client.V1DeploymentSpec(
                replicas=2,
                selector=kube_client.V1LabelSelector(match_labels=LABELS),
                template=_pod_template(),
            ),
        ),
    )

    def ready_pods() -> list[kube_client.V1Pod]:
        return _running_ready(core.list_namespaced_pod(namespace).items)

    def two_ready_pods() -> list[kube_client.V1Pod] | None:
        pods = ready_pods()
        return pods if len(pods) == 2 else None

    pods = polling.wait_until(
        two_ready_pods,
        timeout=60,
        describe=lambda: f"ready pods: {[p.metadata.name for p in ready_pods()]}",
    )
    assert {pod.spec.node_name for pod in pods} <= {f"kwok-node-{i}" for i in range(3)}
    assert len(apps.list_namespaced_replica_set(namespace).items) == 1
    polling.wait_until(
        lambda: apps.read_namespaced_deployment("smoke", namespace).status.ready_replicas == 2,
        timeout=30,
        describe="deployment status never reported 2 ready replicas",
    )


def test_statefulset_gets_bound_volumes_and_running_pods(
    kube_api: kube_client.ApiClient, namespace: str
) -> None:
    apps = kube_client.AppsV1Api(kube_api)
    core = kube_client.CoreV1Api(kube_api)
    core.create_namespaced_service(
        namespace,
        kube_client.V1Service(
            metadata=kube_client.V1ObjectMeta(name="smoke"),
            spec=kube_client.V1ServiceSpec(
                cluster_ip="None",
                selector=LABELS,
                ports=[kube_client.V1ServicePort(name="grpc", port=9095)],
            ),
        ),
    )
    apps.create_namespaced_stateful_set(
        namespace,
        kube_client.V1StatefulSet(
            metadata=kube_client.V1ObjectMeta(name="smoke"),
            spec=kube_client.V1StatefulSetSpec(
                replicas=2,
                service_name="smoke",
                selector=kube_client.V1LabelSelector(match_labels=LABELS),
                template=_pod_template(),
                volume_claim_templates=[
                    kube_client.V1PersistentVolumeClaim(
                        metadata=kube_client.V1ObjectMeta(name="wal"),
                        spec=kube_client.V1PersistentVolumeClaimSpec(
                            access_modes=["ReadWriteOnce"],
                            resources=kube_client.V1VolumeResourceRequirements(
                                requests={"storage": "1Gi"}
                            ),
                        ),
                    )
                ],
            ),
        ),
    )

    def claim_phases() -> dict[str, str]:
        return {
            str(claim.metadata.name): str(claim.status.phase)
            for claim in core.list_namespaced_persistent_volume_claim(namespace).items
        }

    polling.wait_until(
        lambda: claim_phases() == {"wal-smoke-0": "Bound", "wal-smoke-1": "Bound"},
        timeout=90,
        describe=lambda: f"claims: {claim_phases()}",
    )
    polling.wait_until(
        lambda: (
            {p.metadata.name for p in _running_ready(core.list_namespaced_pod(namespace).items)}
            == {"smoke-0", "smoke-1"}
        ),
        timeout=90,
        describe=lambda: (
            "pods: "
            + str(
                {p.metadata.name: p.status.phase for p in core.list_namespaced_pod(namespace).items}
            )
        ),
    )


def test_lease_create_renew_and_watch(kube_api: kube_client.ApiClient, namespace: str) -> None:
    leases = kube_client.CoordinationV1Api(kube_api)
    # renewTime is a MicroTime: the API server insists on six fractional digits, and the client
    # writes datetime.isoformat(), which drops the fraction when it is zero.
    first_renew = datetime.datetime.now(datetime.UTC).replace(microsecond=250_000)
    created = leases.create_namespaced_lease(
        namespace,
        kube_client.V1Lease(
            metadata=kube_client.V1ObjectMeta(
                name="ring-ingester-0", annotations={"lokistack.dev/state": "JOINING"}
            ),
            spec=kube_client.V1LeaseSpec(
                holder_identity="ingester-0",
                lease_duration_seconds=60,
                renew_time=first_renew,
            ),
        ),
    )

    renewed = created
    renewed.spec.renew_time = first_renew + datetime.timedelta(seconds=5)
    renewed.metadata.annotations = {"lokistack.dev/state": "ACTIVE"}
    leases.replace_namespaced_lease("ring-ingester-0", namespace, renewed)

    watcher = kube_watch.Watch()  # type: ignore[no-untyped-call]
    events = watcher.stream(  # type: ignore[no-untyped-call]
        leases.list_namespaced_lease,
        namespace,
        resource_version=created.metadata.resource_version,
        timeout_seconds=10,
    )
    for event in events:
        lease = event["object"]
        if event["type"] == "MODIFIED" and lease.metadata.name == "ring-ingester-0":
            assert lease.spec.renew_time == first_renew + datetime.timedelta(seconds=5)
            assert lease.metadata.annotations["lokistack.dev/state"] == "ACTIVE"
            break
    else:
        raise AssertionError("the watch never delivered the renewal")
