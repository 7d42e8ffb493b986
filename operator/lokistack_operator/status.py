"""The LokiStack status as pure functions of what the operator observed.

Nothing here talks to Kubernetes: the reconciler gathers the pods, the ingester ring's Leases and
the outcome of the storage checks, and these functions turn them into ``status``. The condition
types, reasons and messages are the Loki Operator's (``Ready``, ``Pending``, ``Failed``,
``Degraded``, ``Warning``), so dashboards and alerts written for it keep working; additions are
``ObjectStorageUnreachable``, ``ScalingDownIngesters``, ``UnhealthyRingMembers`` and
``ManagementStateUnmanaged``, plus the ring summary under ``status.ring``.

Conditions merge like the Loki Operator's: the active ones are ``True``; earlier ones with another
(type, reason) stay in the list flipped to ``False``, so the list is a short history keyed by type
and reason. ``lastTransitionTime`` changes only when a condition's status flips.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

READY: Final = "Ready"
PENDING: Final = "Pending"
FAILED: Final = "Failed"
DEGRADED: Final = "Degraded"
WARNING: Final = "Warning"

REASON_READY: Final = "ReadyComponents"
REASON_PENDING: Final = "PendingComponents"
REASON_FAILED: Final = "FailedComponents"
REASON_MISSING_SECRET: Final = "MissingObjectStorageSecret"
REASON_INVALID_SECRET: Final = "InvalidObjectStorageSecret"
REASON_UNREACHABLE: Final = "ObjectStorageUnreachable"
REASON_INVALID_SPEC: Final = "InvalidLokiStackSpec"
REASON_INSUFFICIENT_INGESTERS: Final = "InsufficientIngesterReplicas"
REASON_SCALING_DOWN: Final = "ScalingDownIngesters"
REASON_UNHEALTHY_RING: Final = "UnhealthyRingMembers"
REASON_UNMANAGED: Final = "ManagementStateUnmanaged"

MESSAGE_READY: Final = "All components ready"
MESSAGE_PENDING: Final = "Some LokiStack components pending on dependencies"
MESSAGE_NOT_READY: Final = "All components are running, but some readiness checks are failing"
MESSAGE_FAILED: Final = "Some LokiStack components failed"
MESSAGE_MISSING_SECRET: Final = "Missing object storage secret"
MESSAGE_UNMANAGED: Final = (
    "managementState is Unmanaged: the operator leaves this LokiStack's objects alone"
)

POD_STATES: Final = ("Pending", "Running", "Ready", "Failed")
COMPONENT_LABEL: Final = "app.kubernetes.io/component"
RING_STATE_ANNOTATION: Final = "ring.lokistack.dev/state"


@dataclasses.dataclass(frozen=True)
class Condition:
    type: str
    reason: str
    message: str


def missing_secret() -> Condition:
    return Condition(DEGRADED, REASON_MISSING_SECRET, MESSAGE_MISSING_SECRET)


def invalid_secret(detail: str) -> Condition:
    return Condition(
        DEGRADED, REASON_INVALID_SECRET, f"Invalid object storage secret contents: {detail}"
    )


def unreachable_storage(detail: str) -> Condition:
    return Condition(DEGRADED, REASON_UNREACHABLE, f"Object storage unreachable: {detail}")


def invalid_spec(detail: str) -> Condition:
    return Condition(DEGRADED, REASON_INVALID_SPEC, f"Invalid LokiStack spec: {detail}")


def insufficient_ingesters(replicas: int, factor: int) -> Condition:
    return Condition(
        WARNING,
        REASON_INSUFFICIENT_INGESTERS,
        f"ingester replicas ({replicas}) are less than or equal to the replication factor "
        f"({factor}): ingestion stops when ingester pods get restarted",
    )


def scaling_down(pod: str, current: int, desired: int) -> Condition:
    return Condition(
        WARNING,
        REASON_SCALING_DOWN,
        f"Scaling ingesters down from {current} to {desired}: waiting for {pod} to flush "
        "and leave the ring",
    )


def unmanaged() -> Condition:
    return Condition(WARNING, REASON_UNMANAGED, MESSAGE_UNMANAGED)


# Pods ------------------------------------------------------------------------------------------


def status_key(component: str) -> str:
    """``query-frontend`` → ``queryFrontend``: the Loki Operator's ``status.components`` keys."""
    head, *rest = component.split("-")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def pod_state(pod: Mapping[str, Any]) -> str:
    """Failed/Pending by phase; Running pods are Ready when every container is ready."""
    status = pod.get("status") or {}
    phase = status.get("phase")
    if phase in ("Failed", "Pending"):
        return str(phase)
    if phase == "Running":
        containers = status.get("containerStatuses") or []
        if containers and all(container.get("ready") for container in containers):
            return "Ready"
        return "Running"
    return "Unknown"


def component_pods(
    pods: Iterable[Mapping[str, Any]], components: Iterable[str]
) -> dict[str, dict[str, list[str]]]:
    """``{component: {Pending: [...], Running: [...], Ready: [...], Failed: [...]}}``.

    Every listed component is present with the four lists, empty when it has no pods; an
    ``Unknown`` list appears only when some pod is in an unknown phase. Names are sorted.
    """
    result: dict[str, dict[str, list[str]]] = {
        status_key(component): {state: [] for state in POD_STATES} for component in components
    }
    for pod in pods:
        metadata = pod.get("metadata") or {}
        component = (metadata.get("labels") or {}).get(COMPONENT_LABEL)
        if not component or metadata.get("deletionTimestamp"):
            continue
        states = result.setdefault(status_key(component), {state: [] for state in POD_STATES})
        states.setdefault(pod_state(pod), []).append(str(metadata.get("name")))
    for states in result.values():
        for names in states.values():
            names.sort()
    return result


def components_condition(
    components: Mapping[str, Mapping[str, Sequence[str]]],
    desired: Mapping[str, int],
) -> Condition:
    """Failed > Pending > running but not ready > Ready, as the Loki Operator ranks them.

    A component with fewer Ready pods than its ``desired`` replicas (keys are component names or
    status keys) also counts as pending, so a stack whose pods do not exist yet is not Ready.
    """
    if any(states.get("Failed") for states in components.values()):
        return Condition(FAILED, REASON_FAILED, MESSAGE_FAILED)
    if any(states.get("Pending") or states.get("Unknown") for states in components.values()):
        return Condition(PENDING, REASON_PENDING, MESSAGE_PENDING)
    if any(states.get("Running") for states in components.values()):
        return Condition(PENDING, REASON_PENDING, MESSAGE_NOT_READY)
    for component, replicas in desired.items():
        ready = components.get(status_key(component), {}).get("Ready", ())
        if len(ready) < replicas:
            return Condition(PENDING, REASON_PENDING, MESSAGE_PENDING)
    return Condition(READY, REASON_READY, MESSAGE_READY)


# Ring ------------------------------------------------------------------------------------------


def parse_time(value: object) -> datetime.datetime | None:
    """A Kubernetes Time or MicroTime (RFC 3339, UTC), or None when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed


def ring_health(
    leases: Iterable[Mapping[str, Any]],
    now: datetime.datetime,
    pods: Iterable[str] = (),
) -> dict[str, Any]:
    """The ingester ring as its Leases show it.

    ``members`` counts them, ``states`` lists instance IDs per ring state, ``unhealthy`` those
    whose last heartbeat (``renewTime``) is older than their ``leaseDurationSeconds`` (the ring's
    heartbeat timeout), and ``withoutPod`` members that match none of ``pods`` (left behind by a
    pod that is gone; the ring forgets them after ``forget_after``).
    """
    states: dict[str, list[str]] = {}
    unhealthy: list[str] = []
    members: list[str] = []
    for lease in leases:
        metadata = lease.get("metadata") or {}
        spec = lease.get("spec") or {}
        member = spec.get("holderIdentity")
        if not member:
            continue
        members.append(str(member))
        state = str((metadata.get("annotations") or {}).get(RING_STATE_ANNOTATION, "UNKNOWN"))
        states.setdefault(state, []).append(str(member))
        renewed = parse_time(spec.get("renewTime"))
        timeout = datetime.timedelta(seconds=int(spec.get("leaseDurationSeconds") or 60))
        if renewed is None or now - renewed > timeout:
            unhealthy.append(str(member))
    known = set(pods)
    for names in states.values():
        names.sort()
    return {
        "members": len(members),
        "states": dict(sorted(states.items())),
        "unhealthy": sorted(unhealthy),
        "withoutPod": sorted(member for member in members if known and member not in known),
    }


def ring_condition(ring: Mapping[str, Any]) -> Condition | None:
    unhealthy = list(ring.get("unhealthy") or ())
    if not unhealthy:
        return None
    return Condition(
        WARNING,
        REASON_UNHEALTHY_RING,
        "Ingester ring members with stale heartbeats: " + ", ".join(unhealthy),
    )


# Conditions ------------------------------------------------------------------------------------


def format_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    previous: Iterable[Mapping[str, Any]],
    active: Sequence[Condition],
    now: datetime.datetime,
    generation: int,
) -> list[dict[str, Any]]:
    """The new condition list: ``active`` ones True, every other earlier one False.

    A condition keyed by (type, reason) keeps its ``lastTransitionTime`` while its status stays
    the same; its message and ``observedGeneration`` are always the current ones.
    """
    stamp = format_time(now)
    earlier = list(previous)
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for old in earlier:
        key = (str(old.get("type")), str(old.get("reason")))
        if key in merged:
            continue
        merged[key] = {
            "type": key[0],
            "status": "False",
            "reason": key[1],
            "message": str(old.get("message", "")),
            "lastTransitionTime": (
                stamp if old.get("status") == "True" else old.get("lastTransitionTime", stamp)
            ),
            "observedGeneration": generation,
        }
    by_key = {(str(old.get("type")), str(old.get("reason"))): old for old in earlier}
    for condition in active:
        key = (condition.type, condition.reason)
        found = by_key.get(key)
        merged[key] = {
            "type": condition.type,
            "status": "True",
            "reason": condition.reason,
            "message": condition.message,
            "lastTransitionTime": (
                found.get("lastTransitionTime", stamp)
                if found is not None and found.get("status") == "True"
                else stamp
            ),
            "observedGeneration": generation,
        }
    return sorted(merged.values(), key=lambda item: (item["type"], item["reason"]))


def active_conditions(
    *,
    degraded: Condition | None,
    components: Condition,
    warnings: Iterable[Condition | None] = (),
) -> list[Condition]:
    """A storage or spec problem replaces the component condition; warnings go alongside."""
    main = degraded if degraded is not None else components
    return [main, *(warning for warning in warnings if warning is not None)]


def build_status(
    previous: Mapping[str, Any] | None,
    *,
    active: Sequence[Condition],
    generation: int,
    now: datetime.datetime,
    components: Mapping[str, Any] | None = None,
    ring: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole ``status``; ``components`` and ``ring`` keep their earlier value when None."""
    previous = dict(previous or {})
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": merge_conditions(previous.get("conditions") or (), active, now, generation),
    }
    if components is not None:
        status["components"] = dict(components)
    elif "components" in previous:
        status["components"] = previous["components"]
    if ring is not None:
        status["ring"] = {"ingester": dict(ring)}
    elif "ring" in previous:
        status["ring"] = previous["ring"]
    return status


def with_condition(
    previous: Mapping[str, Any] | None,
    condition: Condition,
    generation: int,
    now: datetime.datetime,
) -> dict[str, Any]:
    """``previous`` with one more active condition and the others untouched (Unmanaged stacks,
    scale-down progress written in the middle of a reconcile)."""
    previous = dict(previous or {})
    conditions = [
        dict(old)
        for old in previous.get("conditions") or ()
        if (old.get("type"), old.get("reason")) != (condition.type, condition.reason)
    ]
    kept = merge_conditions([], [condition], now, generation)[0]
    for old in previous.get("conditions") or ():
        if (old.get("type"), old.get("reason")) == (condition.type, condition.reason) and old.get(
            "status"
        ) == "True":
            kept["lastTransitionTime"] = old.get("lastTransitionTime", kept["lastTransitionTime"])
    conditions.append(kept)
    status = dict(previous)
    status["conditions"] = sorted(conditions, key=lambda item: (item["type"], item["reason"]))
    return status


def same_status(left: Mapping[str, Any] | None, right: Mapping[str, Any]) -> bool:
    """Whether writing ``right`` over ``left`` would change nothing the operator writes."""
    if left is None:
        return False
    return all(left.get(key) == value for key, value in right.items())
