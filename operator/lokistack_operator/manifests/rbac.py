"""The stack's identity: ServiceAccount ``<stack>``, and a Role that allows only ring Leases.

Ring membership is one ``coordination.k8s.io`` Lease per member, so that is all the pods may
touch, and only in their own namespace: no Secrets (credentials arrive as environment
variables), no pods, nothing cluster-wide.
"""

from __future__ import annotations

from typing import Any, Final

from lokistack_operator.manifests import common
from lokistack_operator.manifests.common import Stack

LEASE_VERBS: Final = ("get", "list", "watch", "create", "update", "patch", "delete")


def service_account(stack: Stack) -> dict[str, Any]:
    return common.manifest(
        "v1",
        "ServiceAccount",
        stack,
        common.service_account_name(stack),
        automountServiceAccountToken=True,  # the ring client talks to the API server
    )


def role(stack: Stack) -> dict[str, Any]:
    return common.manifest(
        "rbac.authorization.k8s.io/v1",
        "Role",
        stack,
        common.service_account_name(stack),
        rules=[
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "verbs": list(LEASE_VERBS),
            }
        ],
    )


def role_binding(stack: Stack) -> dict[str, Any]:
    name = common.service_account_name(stack)
    return common.manifest(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        stack,
        name,
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        subjects=[{"kind": "ServiceAccount", "name": name, "namespace": stack.namespace}],
    )


def build(stack: Stack) -> list[dict[str, Any]]:
    return [service_account(stack), role(stack), role_binding(stack)]
