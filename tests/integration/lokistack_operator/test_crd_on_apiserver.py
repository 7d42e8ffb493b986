"""The CRD and the manifests on a real API server: CEL and schema rejections with readable
messages, defaulting, and build_all output that server-side applies and re-applies as a no-op."""

from __future__ import annotations

import json
import pathlib
from typing import Any, cast

import pytest
import yaml
from kubernetes import client as kube_client
from kubernetes import dynamic
from lokistack_operator import manifests, spec

from tests.support import crd
from tests.support.operator_stacks import MEDIUM_SPEC, SECRET_DATA, make_stack

ROOT = pathlib.Path(__file__).resolve().parents[3]
GROUP, VERSION, PLURAL = "lokistack.dev", "v1", "lokistacks"
FIELD_MANAGER = "lokistack-operator"


@pytest.fixture(scope="module")
def installed_crd(kube_api: kube_client.ApiClient) -> dict[str, Any]:
    """crds/lokistack.yaml, server-side applied (left installed: other tests may share it)."""
    return crd.install(kube_api, field_manager="lokistack-crd-test")


def lokistack(name: str, stack_spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LokiStack",
        "metadata": {"name": name},
        "spec": stack_spec,
    }


def create(kube_api: kube_client.ApiClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    created = kube_client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )
    return cast(dict[str, Any], created)


SECRET = {"secret": {"name": "storage"}}


@pytest.mark.parametrize(
    ("name", "stack_spec", "fragment"),
    [
        ("unknown-size", {"size": "2x.huge", "storage": SECRET}, 'Unsupported value: "2x.huge"'),
        (
            "factor-above-replicas",
            {"size": "1x.small", "storage": SECRET, "replication": {"factor": 3},
             "template": {"ingester": {"replicas": 2}}},
            "spec.replication.factor: Invalid value: "
            "replication factor must not exceed the number of ingester replicas",
        ),
        (
            "factor-above-preset",
            {"size": "1x.demo", "storage": SECRET, "replication": {"factor": 2}},
            "replication factor must not exceed the number of ingester replicas",
        ),
        (
            "replicas-below-preset-factor",
            {"size": "1x.small", "storage": SECRET, "template": {"ingester": {"replicas": 1}}},
            "replication factor must not exceed the number of ingester replicas",
        ),
        ("no-secret-name", {"size": "1x.demo", "storage": {"secret": {}}},
         "spec.storage.secret.name: Required value"),
        ("no-size", {"storage": SECRET}, "spec.size: Required value"),
        ("bad-timeout", {"size": "1x.demo", "storage": SECRET,
                         "limits": {"global": {"queries": {"queryTimeout": "soon"}}}},
         "spec.limits.global.queries.queryTimeout"),
        ("bad-toleration", {"size": "1x.demo", "storage": SECRET,
                            "template": {"querier": {"tolerations": [{"operator": "Exists", "value": "x"}]}}},  # noqa: E501
         "a toleration with operator Exists must not have a value"),
        ("x" * 44, {"size": "1x.demo", "storage": SECRET}, "at most 43 characters"),
    ],
)  # fmt: skip
def test_invalid_lokistacks_are_rejected_with_a_readable_message(  # noqa: PLR0917
    installed_crd: dict[str, Any],
    kube_api: kube_client.ApiClient,
    namespace: str,
    name: str,
    stack_spec: dict[str, Any],
    fragment: str,
) -> None:
    with pytest.raises(kube_client.ApiException) as raised:
        create(kube_api, namespace, lokistack(name, stack_spec))
    assert raised.value.status == 422
    message = json.loads(raised.value.body or "{}")["message"]
    assert fragment in message, message


def test_the_example_is_accepted_and_defaulted(
    installed_crd: dict[str, Any], kube_api: kube_client.ApiClient, namespace: str
) -> None:
    example = yaml.safe_load((ROOT / "examples" / "lokistack-demo.yaml").read_text())
    created = create(kube_api, namespace, example)
    assert created["spec"]["managementState"] == "Managed"
    assert created["spec"]["storage"]["secret"]["type"] == "s3"
    parsed = spec.parse_spec(created["spec"])
    assert parsed.limits.tenants["team-a"].ingestion.ingestion_rate == 8
    minimal = create(
        kube_api, namespace, lokistack("minimal", {"size": "1x.pico", "storage": SECRET})
    )
    assert minimal["spec"]["storage"]["schemas"] == [
        {"version": "v13", "effectiveDate": "2020-10-11"}
    ]
    assert (
        spec.parse_spec(minimal["spec"]).storage.schemas
        == spec.parse_spec({"size": "1x.pico", "storage": SECRET}).storage.schemas
    )


@pytest.fixture
def owned_stack(
    installed_crd: dict[str, Any], kube_api: kube_client.ApiClient, namespace: str
) -> manifests.Stack:
    core = kube_client.CoreV1Api(kube_api)
    core.create_namespaced_secret(
        namespace,
        kube_client.V1Secret(
            metadata=kube_client.V1ObjectMeta(name="logs-storage"), string_data=dict(SECRET_DATA)
        ),
    )
    raw = {k: v for k, v in MEDIUM_SPEC.items() if k != "storageClassName"}
    created = create(kube_api, namespace, lokistack("logs", raw))
    stack = make_stack(created["spec"], name="logs", namespace=namespace)
    return manifests.Stack(
        name=stack.name,
        namespace=namespace,
        uid=created["metadata"]["uid"],
        spec=stack.spec,
        storage=stack.storage,
        secret_name=stack.secret_name,
        secret_hash=stack.secret_hash,
    )


def _apply(client: dynamic.DynamicClient, obj: dict[str, Any]) -> str:
    """Apply ``obj``; returns what changes when its desired state does: the generation of
    objects that have one (controllers update their status, which bumps resourceVersion),
    else the resourceVersion."""
    resource = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    applied = client.server_side_apply(  # type: ignore[no-untyped-call]
        resource,
        body=obj,
        name=obj["metadata"]["name"],
        namespace=obj["metadata"]["namespace"],
        field_manager=FIELD_MANAGER,
        force_conflicts=True,
    )
    generation = applied.metadata.generation
    return f"generation {generation}" if generation else str(applied.metadata.resourceVersion)


def test_build_all_applies_and_reapplying_changes_nothing(
    kube_api: kube_client.ApiClient, owned_stack: manifests.Stack
) -> None:
    client = dynamic.DynamicClient(kube_api)  # type: ignore[no-untyped-call]
    objects = manifests.build_all(owned_stack, manifests.Settings(image="lokistack.invalid/x:0"))
    first = [_apply(client, obj) for obj in objects]
    second = [
        _apply(client, obj)
        for obj in manifests.build_all(
            owned_stack, manifests.Settings(image="lokistack.invalid/x:0")
        )
    ]
    assert first == second, "a second apply of the same manifests changed objects"
    apps = kube_client.AppsV1Api(kube_api)
    ingester = apps.read_namespaced_stateful_set("logs-ingester", owned_stack.namespace)
    assert ingester.spec.replicas == 4
    assert [ref.uid for ref in ingester.metadata.owner_references or []] == [owned_stack.uid]
    assert ingester.spec.template.spec.termination_grace_period_seconds == 300
