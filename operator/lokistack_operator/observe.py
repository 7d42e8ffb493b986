"""What the reconciler reads before it decides: the spec, the storage Secret, pods and the ring.

:func:`check_storage` decodes the spec and the storage Secret (the Loki Operator's
``storage.BuildOptions`` step) and probes the bucket; :func:`workloads` reads the stack's pods,
its workloads' replica counts and the ingester ring's Leases for the status.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Mapping
from typing import Any

from lokistack_operator import kube, manifests, scaledown, spec, status
from lokistack_operator import storage as storage_mod


@dataclasses.dataclass(frozen=True)
class StorageCheck:
    """``stack`` is None when a spec or Secret problem blocks rendering (``degraded`` says which);
    with a stack, ``degraded`` may still report an unreachable bucket."""

    stack: manifests.Stack | None
    degraded: status.Condition | None
    warnings: tuple[status.Condition, ...] = ()


@dataclasses.dataclass(frozen=True)
class Workloads:
    components: dict[str, dict[str, list[str]]]
    desired: dict[str, int]
    ring: dict[str, Any]


def unmanaged(body: Mapping[str, Any]) -> bool:
    return (body.get("spec") or {}).get("managementState") == "Unmanaged"


def secret_name(body: Mapping[str, Any]) -> str | None:
    """The storage Secret's name as written in the spec (no decoding: used by the index)."""
    found = ((body.get("spec") or {}).get("storage") or {}).get("secret") or {}
    name = found.get("name")
    return str(name) if name else None


def replica_warnings(parsed: spec.LokiStackSpec) -> tuple[status.Condition, ...]:
    factor = spec.effective_replication_factor(parsed)
    replicas = spec.effective_replicas(parsed, "ingester")
    if replicas <= factor:
        return (status.insufficient_ingesters(replicas, factor),)
    return ()


async def check_storage(client: kube.Kube, body: Mapping[str, Any]) -> StorageCheck:
    metadata = body["metadata"]
    try:
        parsed = spec.parse_spec(body.get("spec") or {})
    except spec.SpecError as error:
        return StorageCheck(None, status.invalid_spec(str(error)))
    warnings = replica_warnings(parsed)
    name = parsed.storage.secret.name
    secret = await client.get("v1", "Secret", metadata["namespace"], name)
    if secret is None:
        return StorageCheck(None, status.missing_secret(), warnings)
    try:
        data = storage_mod.decode_secret_data(secret.get("data"))
        storage = storage_mod.parse_storage_secret(data)
    except storage_mod.InvalidStorageSecret as error:
        invalid = status.Condition(status.DEGRADED, error.reason, error.message)
        return StorageCheck(None, invalid, warnings)
    stack = manifests.Stack(
        name=metadata["name"],
        namespace=metadata["namespace"],
        uid=metadata["uid"],
        spec=parsed,
        storage=storage,
        secret_name=name,
        secret_hash=storage_mod.secret_hash(data),
    )
    problem = await storage_mod.probe_bucket(storage)
    unreachable = status.unreachable_storage(problem) if problem else None
    return StorageCheck(stack, unreachable, warnings)


def ingester_member(stack: str) -> re.Pattern[str]:
    """Ring members of this stack: its ingester pods, ``<stack>-ingester-<ordinal>``."""
    return re.compile(re.escape(f"{stack}-ingester-") + r"[0-9]+")


async def workloads(client: kube.Kube, body: Mapping[str, Any]) -> Workloads:
    metadata = body["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    pods = await client.list("v1", "Pod", namespace, f"app.kubernetes.io/instance={name}")
    pods = [pod for pod in pods if _owned_by_workload(pod)]
    desired: dict[str, int] = {}
    for api_version, kind in (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet")):
        for workload in await client.list(
            api_version, kind, namespace, f"app.kubernetes.io/instance={name}"
        ):
            component = (workload["metadata"].get("labels") or {}).get(status.COMPONENT_LABEL)
            if component:
                replicas = (workload.get("spec") or {}).get("replicas", 1)
                desired[component] = desired.get(component, 0) + int(replicas or 0)
    member = ingester_member(name)
    leases = [
        lease
        for lease in await client.list(
            "coordination.k8s.io/v1",
            "Lease",
            namespace,
            f"{scaledown.RING_LABEL}={scaledown.INGESTER_RING}",
        )
        if member.fullmatch(str((lease.get("spec") or {}).get("holderIdentity") or ""))
    ]
    ingester_pods = [
        str(pod["metadata"]["name"])
        for pod in pods
        if (pod["metadata"].get("labels") or {}).get(status.COMPONENT_LABEL) == "ingester"
    ]
    return Workloads(
        components=status.component_pods(pods, spec.COMPONENTS),
        desired=desired,
        ring=status.ring_health(leases, datetime.datetime.now(datetime.UTC), ingester_pods),
    )


def _owned_by_workload(pod: Mapping[str, Any]) -> bool:
    """Pods created by a ReplicaSet or StatefulSet (not a test's or a user's stray pod)."""
    references = (pod.get("metadata") or {}).get("ownerReferences") or ()
    return any(reference.get("kind") in ("ReplicaSet", "StatefulSet") for reference in references)
