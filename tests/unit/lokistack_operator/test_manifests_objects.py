"""build_all: apply-ready, deterministic objects with the conventions the runtime relies on."""

from __future__ import annotations

import copy
import hashlib
import typing
from typing import Any

import pytest
from lokistack_operator import manifests, spec
from lokistack_operator.manifests import common

from tests.support.operator_stacks import MEDIUM_SPEC, make_stack

Objects = list[dict[str, Any]]


def by_kind(objects: Objects, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def workloads(objects: Objects) -> dict[spec.Component, dict[str, Any]]:
    return {
        typing.cast("spec.Component", o["metadata"]["labels"][common.LABEL_COMPONENT]): o
        for o in objects
        if o["kind"] in {"Deployment", "StatefulSet"}
    }


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    found: dict[str, Any] = containers[0]
    return found


@pytest.fixture(params=["demo", "medium"])
def stack(request: pytest.FixtureRequest) -> manifests.Stack:
    built: manifests.Stack = request.getfixturevalue(f"{request.param}_stack")
    return built


@pytest.fixture
def objects(stack: manifests.Stack, settings: manifests.Settings) -> Objects:
    return manifests.build_all(stack, settings)


def test_every_object_is_apply_ready_and_owned(stack: manifests.Stack, objects: Objects) -> None:
    for obj in objects:
        assert obj["apiVersion"] and obj["kind"]
        meta = obj["metadata"]
        assert meta["namespace"] == stack.namespace
        assert meta["name"].startswith(stack.name)
        assert meta["labels"][common.LABEL_NAME] == "lokistack"
        assert meta["labels"][common.LABEL_INSTANCE] == stack.name
        assert meta["labels"][common.LABEL_MANAGED_BY] == "lokistack-operator"
        assert meta["labels"][common.LABEL_PART_OF] == "lokistack"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "lokistack.dev/v1",
                "kind": "LokiStack",
                "name": stack.name,
                "uid": stack.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    keys = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys))


def test_object_inventory_and_order(stack: manifests.Stack, objects: Objects) -> None:
    n = stack.name
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("ServiceAccount", n),
        ("Role", n),
        ("RoleBinding", n),
        ("ConfigMap", f"{n}-config"),
        ("ConfigMap", f"{n}-runtime-config"),
        *[
            ("Service", f"{n}-{c}-{kind}")
            for c in spec.COMPONENTS
            for kind in ("http", "grpc")
        ],
        ("Deployment", f"{n}-distributor"),
        ("StatefulSet", f"{n}-ingester"),
        ("Deployment", f"{n}-querier"),
        ("Deployment", f"{n}-query-frontend"),
        ("StatefulSet", f"{n}-compactor"),
        *[
            ("PodDisruptionBudget", f"{n}-{c}")
            for c in ("distributor", "ingester", "querier", "query-frontend")
        ],
    ]  # fmt: skip


def test_build_all_is_pure_and_deterministic(
    stack: manifests.Stack, settings: manifests.Settings
) -> None:
    before = copy.deepcopy(stack)
    first = manifests.build_all(stack, settings)
    first[0]["metadata"]["labels"]["changed"] = "yes"  # results share nothing with the input
    second = manifests.build_all(stack, settings)
    assert stack == before
    assert "changed" not in second[0]["metadata"]["labels"]
    assert manifests.build_all(stack, settings) == second


def test_workloads(stack: manifests.Stack, objects: Objects, settings: manifests.Settings) -> None:
    found = workloads(objects)
    assert set(found) == set(spec.COMPONENTS)
    config_map = by_kind(objects, "ConfigMap")[f"{stack.name}-config"]
    config_hash = hashlib.sha256(config_map["data"]["config.yaml"].encode()).hexdigest()
    for component, workload in found.items():
        assert workload["spec"]["replicas"] == spec.effective_replicas(stack.spec, component)
        selector = workload["spec"]["selector"]["matchLabels"]
        template = workload["spec"]["template"]
        assert selector == common.selector_labels(stack, component)
        assert selector.items() <= template["metadata"]["labels"].items()
        annotations = template["metadata"]["annotations"]
        assert annotations["lokistack.dev/config-hash"] == config_hash
        uses_storage = component in {"ingester", "querier", "compactor"}
        assert ("lokistack.dev/storage-secret-hash" in annotations) == uses_storage
        pod = template["spec"]
        assert pod["serviceAccountName"] == stack.name
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        main = container(workload)
        assert main["image"] == settings.image
        assert main["args"] == [
            f"--target={component}",
            "--config.file=/etc/lokistack/config/config.yaml",
            "--runtime-config.file=/etc/lokistack/runtime/runtime-config.yaml",
        ]
        assert {p["name"]: p["containerPort"] for p in main["ports"]} == {
            "http": 3100,
            "grpc": 9095,
        }
        assert main["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert main["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert main["livenessProbe"]["httpGet"]["path"] == "/metrics"
        assert main["startupProbe"]["httpGet"]["path"] == "/metrics"
        env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in main.get("env", [])}
        if uses_storage:
            assert env == {
                "AWS_ACCESS_KEY_ID": {"name": stack.secret_name, "key": "access_key_id"},
                "AWS_SECRET_ACCESS_KEY": {"name": stack.secret_name, "key": "access_key_secret"},
            }
        else:
            assert env == {}
        mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
        volumes = {v["name"] for v in pod["volumes"]}
        claims = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
        assert set(mounts.values()) == volumes | claims
        assert mounts["/var/lokistack"] == ("wal" if component == "ingester" else "data")


def test_ingester_statefulset(stack: manifests.Stack, objects: Objects) -> None:
    ingester = workloads(objects)["ingester"]
    assert ingester["kind"] == "StatefulSet"
    assert ingester["spec"]["serviceName"] == f"{stack.name}-ingester-grpc"
    assert ingester["spec"]["podManagementPolicy"] == "Parallel"
    assert ingester["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 300
    assert container(ingester)["startupProbe"]["failureThreshold"] * 10 >= 30 * 60
    (claim,) = ingester["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "wal"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    size = spec.SIZES[stack.spec.size].wal_volume_size
    assert claim["spec"]["resources"] == {"requests": {"storage": size}}
    assert claim["spec"].get("storageClassName") == stack.spec.storage_class_name


def test_compactor_runs_one_pod_without_a_budget(objects: Objects) -> None:
    compactor = workloads(objects)["compactor"]
    assert compactor["kind"] == "StatefulSet"
    assert compactor["spec"]["replicas"] == 1
    budgets = by_kind(objects, "PodDisruptionBudget")
    assert not any(name.endswith("-compactor") for name in budgets)
    for budget in budgets.values():
        assert budget["apiVersion"] == "policy/v1"
        assert budget["spec"]["maxUnavailable"] == 1
        component = budget["metadata"]["labels"][common.LABEL_COMPONENT]
        assert budget["spec"]["selector"]["matchLabels"] == {
            common.LABEL_NAME: "lokistack",
            common.LABEL_INSTANCE: budget["metadata"]["name"].removesuffix(f"-{component}"),
            common.LABEL_COMPONENT: component,
        }


def test_services(stack: manifests.Stack, objects: Objects) -> None:
    services = by_kind(objects, "Service")
    for component in spec.COMPONENTS:
        http = services[f"{stack.name}-{component}-http"]["spec"]
        grpc = services[f"{stack.name}-{component}-grpc"]["spec"]
        assert http["type"] == "ClusterIP"
        assert [(p["name"], p["port"], p["targetPort"]) for p in http["ports"]] == [
            ("http", 3100, "http")
        ]
        assert grpc["clusterIP"] == "None"
        assert grpc["publishNotReadyAddresses"] is True
        assert [(p["name"], p["port"]) for p in grpc["ports"]] == [("grpc", 9095)]
        assert http["selector"] == grpc["selector"] == common.selector_labels(stack, component)
    for name in services:
        assert len(name) <= 63


def test_rbac_allows_only_leases(stack: manifests.Stack, objects: Objects) -> None:
    (role,) = by_kind(objects, "Role").values()
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        }
    ]
    (binding,) = by_kind(objects, "RoleBinding").values()
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": stack.name,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": stack.name, "namespace": stack.namespace}
    ]


def test_scheduling_of_the_medium_stack(
    medium_stack: manifests.Stack, settings: manifests.Settings
) -> None:
    found = workloads(manifests.build_all(medium_stack, settings))
    ingester = found["ingester"]["spec"]["template"]["spec"]
    assert ingester["nodeSelector"] == {"node-role/logs": "true"}
    assert ingester["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "logs", "effect": "NoSchedule"}
    ]
    default_affinity = ingester["affinity"]["podAntiAffinity"]
    assert default_affinity["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"] == 100
    querier = found["querier"]["spec"]["template"]["spec"]
    assert (
        querier["affinity"]["podAntiAffinity"]
        == MEDIUM_SPEC["template"]["querier"]["podAntiAffinity"]
    )
    assert container(found["querier"])["resources"] == {"requests": {"cpu": "3", "memory": "8Gi"}}
    for workload in found.values():
        constraints = workload["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert constraints == [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": workload["spec"]["selector"]["matchLabels"]},
            }
        ]


def test_demo_pods_have_no_resources_or_scheduling_extras(
    demo_stack: manifests.Stack, settings: manifests.Settings
) -> None:
    for workload in workloads(manifests.build_all(demo_stack, settings)).values():
        pod = workload["spec"]["template"]["spec"]
        assert "resources" not in container(workload)
        assert not {"nodeSelector", "tolerations", "topologySpreadConstraints"} & set(pod)


def test_settings_reach_the_containers(demo_stack: manifests.Stack) -> None:
    settings = manifests.Settings(image="example/lokistack:1", image_pull_policy="Always")
    for workload in workloads(manifests.build_all(demo_stack, settings)).values():
        assert container(workload)["image"] == "example/lokistack:1"
        assert container(workload)["imagePullPolicy"] == "Always"


def test_a_stack_without_storage_class_leaves_it_to_the_cluster() -> None:
    raw = {**MEDIUM_SPEC}
    raw.pop("storageClassName")
    objects = manifests.build_all(make_stack(raw), manifests.Settings())
    for workload in workloads(objects).values():
        for claim in workload["spec"].get("volumeClaimTemplates", []):
            assert "storageClassName" not in claim["spec"]
