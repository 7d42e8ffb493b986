"""Safe ingester scale-down: flush each ingester and let it leave the ring before it is removed.

A StatefulSet that shrinks sends SIGTERM to its highest pods; an ingester that cannot finish its
flush within the grace period leaves unflushed chunks in a WAL that no pod will replay again. So
before lowering ``replicas`` the operator retires the pods one at a time, highest ordinal first:

1. ``POST http://<podIP>:3100/ingester/shutdown?flush=true&terminate=true`` (a 503 means the
   ingester is already stopping, which is as good);
2. wait, bounded, until the pod's ring Lease (the one it held when asked) is gone, or, for a pod
   that was not in the ring, until its ``/ready`` stops answering 200;
3. apply the StatefulSet with one replica fewer.

A pod that is not running or does not answer has nothing to flush over HTTP (its WAL stays on its
volume, which the StatefulSet keeps); it is removed at once, with a warning. A pod that does not
finish in time is removed too, after a warning: the StatefulSet's own SIGTERM path flushes as well.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import aiohttp
import kopf

from lokistack_operator import kube

RING_LABEL: Final = "lokistack.dev/ring"
INGESTER_RING: Final = "ingester"
HTTP_PORT: Final = 3100


@dataclasses.dataclass(frozen=True)
class Timing:
    """How long to wait for one ingester, how often to look, and the HTTP client's limits."""

    shutdown_timeout: float = 300.0
    poll_interval: float = 1.0
    request_timeout: float = 10.0
    http_port: int = HTTP_PORT


@dataclasses.dataclass(frozen=True)
class Outcome:
    pod: str
    left: bool
    detail: str


Progress = Callable[[str, int, int], Awaitable[None]]
"""Called with (pod, current replicas, desired replicas) before a pod is retired."""

Apply = Callable[[int], Awaitable[None]]
"""Applies the ingester StatefulSet with the given replica count."""


def pod_name(statefulset: str, ordinal: int) -> str:
    return f"{statefulset}-{ordinal}"


def with_replicas(manifest: Mapping[str, Any], replicas: int) -> dict[str, Any]:
    """A copy of a workload manifest with another ``spec.replicas``."""
    copy = dict(manifest)
    copy["spec"] = {**dict(manifest.get("spec") or {}), "replicas": replicas}
    return copy


async def ring_lease_uid(client: kube.Kube, namespace: str, member: str) -> str | None:
    """The uid of the ingester ring Lease held by ``member`` (a pod name), if there is one."""
    leases = await client.list(
        "coordination.k8s.io/v1", "Lease", namespace, f"{RING_LABEL}={INGESTER_RING}"
    )
    for lease in leases:
        if (lease.get("spec") or {}).get("holderIdentity") == member:
            return str((lease.get("metadata") or {}).get("uid"))
    return None


async def _ready(session: aiohttp.ClientSession, base: str) -> bool:
    try:
        async with session.get(f"{base}/ready") as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


async def retire(
    client: kube.Kube,
    namespace: str,
    pod: str,
    timing: Timing,
    logger: kopf.Logger,
) -> Outcome:
    """Ask one ingester pod to flush and leave the ring, and wait until it has (bounded)."""
    found = await client.get("v1", "Pod", namespace, pod)
    status = (found or {}).get("status") or {}
    address = status.get("podIP")
    if found is None or not address or status.get("phase") != "Running":
        return Outcome(pod, False, f"{pod} is not running; nothing to flush over HTTP")
    lease_uid = await ring_lease_uid(client, namespace, pod)
    base = f"http://{address}:{timing.http_port}"
    timeout = aiohttp.ClientTimeout(total=timing.request_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            async with session.post(
                f"{base}/ingester/shutdown", params={"flush": "true", "terminate": "true"}
            ) as response:
                if response.status not in (200, 204, 503):
                    detail = (await response.text())[:200]
                    return Outcome(
                        pod, False, f"{pod} refused the shutdown: {response.status} {detail}"
                    )
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            return Outcome(pod, False, f"{pod} did not answer the shutdown request: {error}")
        logger.info("asked ingester %s to flush and leave the ring", pod)
        deadline = time.monotonic() + timing.shutdown_timeout
        while time.monotonic() < deadline:
            if lease_uid is not None:
                if await ring_lease_uid(client, namespace, pod) != lease_uid:
                    return Outcome(pod, True, f"{pod} flushed and left the ring")
            elif not await _ready(session, base):
                return Outcome(pod, True, f"{pod} flushed and stopped")
            await asyncio.sleep(timing.poll_interval)
    return Outcome(
        pod,
        False,
        f"{pod} did not leave the ring within {timing.shutdown_timeout:.0f}s; removing it "
        "anyway (it flushes again on SIGTERM and its WAL volume is kept)",
    )


async def scale_down(
    client: kube.Kube,
    namespace: str,
    statefulset: str,
    current: int,
    desired: int,
    *,
    apply: Apply,
    progress: Progress,
    timing: Timing,
    logger: kopf.Logger,
) -> list[Outcome]:
    """Retire ingesters ``current-1`` down to ``desired``, shrinking the StatefulSet after each."""
    outcomes: list[Outcome] = []
    for ordinal in range(current - 1, desired - 1, -1):
        name = pod_name(statefulset, ordinal)
        await progress(name, current, desired)
        outcome = await retire(client, namespace, name, timing, logger)
        if outcome.left:
            logger.info("%s", outcome.detail)
        else:
            logger.warning("%s", outcome.detail)
        outcomes.append(outcome)
        await apply(ordinal)
    return outcomes
