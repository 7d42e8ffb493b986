"""What every manifest shares: the stack being built, names, labels, metadata, ownership.

Objects are named ``<stack>-<component>`` (Services ``<stack>-<component>-http`` and
``<stack>-<component>-grpc``), carry the standard ``app.kubernetes.io/*`` labels, and are owned by
their LokiStack (``controller: true``, ``blockOwnerDeletion: true``), so deleting the LokiStack
garbage-collects them.  Selectors use only the name, instance and component labels, which never
change for the life of an object (Deployment and StatefulSet selectors are immutable).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final, Literal

from lokistack_operator.spec import Component, LokiStackSpec
from lokistack_operator.storage import StorageSecret

API_GROUP: Final = "lokistack.dev"
API_VERSION: Final = f"{API_GROUP}/v1"
KIND: Final = "LokiStack"

LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
APP_NAME: Final = "lokistack"
MANAGED_BY: Final = "lokistack-operator"

ANNOTATION_CONFIG_HASH: Final = f"{API_GROUP}/config-hash"
ANNOTATION_STORAGE_SECRET_HASH: Final = f"{API_GROUP}/storage-secret-hash"

HTTP_PORT: Final = 3100
GRPC_PORT: Final = 9095
HTTP_PORT_NAME: Final = "http"
GRPC_PORT_NAME: Final = "grpc"

DEFAULT_IMAGE: Final = "lokistack:latest"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Operator-wide settings that are not part of a LokiStack (flags or environment)."""

    image: str = DEFAULT_IMAGE
    image_pull_policy: str = "IfNotPresent"
    cluster_domain: str = "cluster.local"


@dataclasses.dataclass(frozen=True)
class Stack:
    """One LokiStack as the builders need it: identity, parsed spec and validated storage."""

    name: str
    namespace: str
    uid: str
    spec: LokiStackSpec
    storage: StorageSecret
    secret_name: str
    secret_hash: str


def object_name(stack: Stack, component: Component) -> str:
    return f"{stack.name}-{component}"


def http_service_name(stack: Stack, component: Component) -> str:
    return f"{stack.name}-{component}-http"


def grpc_service_name(stack: Stack, component: Component) -> str:
    return f"{stack.name}-{component}-grpc"


def config_map_name(stack: Stack) -> str:
    return f"{stack.name}-config"


def runtime_config_map_name(stack: Stack) -> str:
    return f"{stack.name}-runtime-config"


def service_account_name(stack: Stack) -> str:
    return stack.name


def lease_prefix(stack: Stack, ring: Literal["ring", "distributor"]) -> str:
    """Prefix of the ring's Lease names: ``<stack>-ring`` (ingesters), ``<stack>-distributor``."""
    return f"{stack.name}-{ring}"


def service_address(stack: Stack, settings: Settings, service: str, port: int) -> str:
    """``<service>.<namespace>.svc.<cluster domain>:<port>``."""
    return f"{service}.{stack.namespace}.svc.{settings.cluster_domain}:{port}"


def selector_labels(stack: Stack, component: Component) -> dict[str, str]:
    """The labels that select a component's pods; fixed for the life of the stack."""
    return {
        LABEL_NAME: APP_NAME,
        LABEL_INSTANCE: stack.name,
        LABEL_COMPONENT: component,
    }


def labels(stack: Stack, component: Component | None = None) -> dict[str, str]:
    """The standard labels of an object (without ``component`` for stack-wide objects)."""
    result = {
        LABEL_NAME: APP_NAME,
        LABEL_INSTANCE: stack.name,
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_PART_OF: APP_NAME,
    }
    if component is not None:
        result[LABEL_COMPONENT] = component
    return dict(sorted(result.items()))


def owner_reference(stack: Stack) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": stack.name,
        "uid": stack.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(stack: Stack, name: str, component: Component | None = None) -> dict[str, Any]:
    """``metadata`` of an owned object: name, namespace, labels and the owner reference."""
    return {
        "name": name,
        "namespace": stack.namespace,
        "labels": labels(stack, component),
        "ownerReferences": [owner_reference(stack)],
    }


def manifest(
    api_version: str,
    kind: str,
    stack: Stack,
    name: str,
    component: Component | None = None,
    **body: Any,
) -> dict[str, Any]:
    """An apply-ready object: ``apiVersion``, ``kind``, owned ``metadata``, then ``body``."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": metadata(stack, name, component),
        **body,
    }
