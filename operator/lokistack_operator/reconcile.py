"""One reconcile of a LokiStack: storage checks, render, server-side apply, prune, status.

The order follows the Loki Operator's pipeline (reference §2.1): read and validate the storage
Secret (a missing or invalid one makes the stack ``Degraded`` and changes no object), probe the
bucket, render every object with :func:`manifests.build_all`, apply each with server-side apply,
delete the objects of this stack that are no longer rendered, and compute the status from the
pods and the ingester ring. Applying what is already there changes nothing, so a reconcile is
idempotent and resourceVersions stay put.

Fewer ingesters than running go through :mod:`scaledown` first: each ingester above the new count
is flushed and leaves the ring before the StatefulSet shrinks by one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

import kopf

from lokistack_operator import kube, manifests, observe, scaledown, status

Logger = kopf.Logger

INSTANCE_LABEL: Final = "app.kubernetes.io/instance"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "lokistack-operator"
# Kinds pruned even when the current render has none of them (an older render may have had).
PRUNED_KINDS: Final = (
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("policy/v1", "PodDisruptionBudget"),
)


@dataclasses.dataclass
class Context:
    """What every handler shares: the API, the manifest settings, timings, per-stack locks."""

    kube: kube.Kube
    settings: manifests.Settings
    timing: scaledown.Timing = dataclasses.field(default_factory=scaledown.Timing)
    locks: dict[str, asyncio.Lock] = dataclasses.field(default_factory=dict)

    def lock(self, uid: str) -> asyncio.Lock:
        return self.locks.setdefault(uid, asyncio.Lock())


def as_body(body: Mapping[str, Any]) -> kopf.Body:
    """For kopf's event posting, which reads only apiVersion, kind and metadata."""
    return cast(kopf.Body, body)


def selector(name: str) -> str:
    return f"{INSTANCE_LABEL}={name},{MANAGED_BY_LABEL}={MANAGED_BY}"


def object_key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(obj.get("apiVersion")), str(obj.get("kind")), str(obj["metadata"]["name"]))


def owner_reference(body: Mapping[str, Any]) -> dict[str, Any]:
    metadata = body["metadata"]
    return {
        "apiVersion": body.get("apiVersion", "lokistack.dev/v1"),
        "kind": body.get("kind", "LokiStack"),
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned(obj: Mapping[str, Any], uid: str) -> bool:
    references = (obj.get("metadata") or {}).get("ownerReferences") or ()
    return any(reference.get("uid") == uid for reference in references)


def with_owner(obj: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` in the stack's namespace, owned by the stack (garbage-collected with it)."""
    metadata = dict(obj.get("metadata") or {})
    metadata.setdefault("namespace", body["metadata"]["namespace"])
    if not owned(obj, body["metadata"]["uid"]):
        metadata["ownerReferences"] = [
            *(metadata.get("ownerReferences") or ()),
            owner_reference(body),
        ]
    return {**obj, "metadata": metadata}


def is_ingester_statefulset(obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return obj.get("kind") == "StatefulSet" and labels.get(status.COMPONENT_LABEL) == "ingester"


async def reconcile(ctx: Context, body: Mapping[str, Any], logger: Logger) -> None:
    """Bring the stack's objects to the rendered state and write its status."""
    async with ctx.lock(str(body["metadata"]["uid"])):
        await _reconcile(ctx, body, logger)


async def refresh(ctx: Context, body: Mapping[str, Any], logger: Logger) -> None:
    """Recompute the status only (timer); skipped while a reconcile of the stack runs."""
    lock = ctx.lock(str(body["metadata"]["uid"]))
    if lock.locked():
        return
    async with lock:
        if observe.unmanaged(body):
            await write_unmanaged(ctx, body)
            return
        checked = await observe.check_storage(ctx.kube, body)
        await write_status(ctx, body, checked)


async def _reconcile(ctx: Context, body: Mapping[str, Any], logger: Logger) -> None:
    if observe.unmanaged(body):
        await write_unmanaged(ctx, body)
        return
    checked = await observe.check_storage(ctx.kube, body)
    if checked.stack is None:
        # A problem only the user can fix: report it, change no object; the Secret watch
        # reconciles again when the Secret appears or changes.
        await write_status(ctx, body, checked)
        return
    rendered = [with_owner(obj, body) for obj in manifests.build_all(checked.stack, ctx.settings)]
    await apply_all(ctx, body, rendered, logger)
    await prune(ctx, body, rendered, logger)
    await write_status(ctx, body, checked)


async def apply_all(
    ctx: Context, body: Mapping[str, Any], rendered: Sequence[Mapping[str, Any]], logger: Logger
) -> None:
    """Apply everything; an ingester StatefulSet that must shrink is retired pod by pod.

    A failed object does not stop the others (as in the Loki Operator); the failures are raised
    together at the end, so kopf retries the whole reconcile.
    """
    namespace = body["metadata"]["namespace"]
    shrink: tuple[Mapping[str, Any], int, int] | None = None
    failures: list[str] = []
    for obj in rendered:
        if is_ingester_statefulset(obj):
            live = await ctx.kube.get("apps/v1", "StatefulSet", namespace, obj["metadata"]["name"])
            current = int(((live or {}).get("spec") or {}).get("replicas") or 0)
            desired = int((obj.get("spec") or {}).get("replicas", 1))
            if live is not None and current > desired:
                shrink = (obj, current, desired)
                obj = scaledown.with_replicas(obj, current)  # noqa: PLW2901 - shrunk below
        try:
            await ctx.kube.apply(obj)
        except kube.KubeError as error:
            failures.append(f"{obj['kind']} {obj['metadata']['name']}: {error}")
    if failures:
        raise kube.KubeError(0, "applying failed for " + "; ".join(failures))
    if shrink is None:
        return
    manifest, current, desired = shrink
    statefulset = manifest["metadata"]["name"]

    async def apply_replicas(replicas: int) -> None:
        await ctx.kube.apply(scaledown.with_replicas(manifest, replicas))

    async def progress(pod: str, current: int, desired: int) -> None:
        await write_condition(ctx, body, status.scaling_down(pod, current, desired))
        kopf.info(as_body(body), reason="ScalingDownIngesters", message=f"flushing {pod}")

    outcomes = await scaledown.scale_down(
        ctx.kube,
        namespace,
        statefulset,
        current,
        desired,
        apply=apply_replicas,
        progress=progress,
        timing=ctx.timing,
        logger=logger,
    )
    for outcome in outcomes:
        if outcome.left:
            kopf.info(as_body(body), reason="IngesterRetired", message=outcome.detail)
        else:
            kopf.warn(as_body(body), reason="IngesterRetired", message=outcome.detail)


async def prune(
    ctx: Context, body: Mapping[str, Any], rendered: Sequence[Mapping[str, Any]], logger: Logger
) -> None:
    """Delete objects this stack owns that the current render no longer has."""
    metadata = body["metadata"]
    wanted = {object_key(obj) for obj in rendered}
    kinds = {(str(obj["apiVersion"]), str(obj["kind"])) for obj in rendered} | set(PRUNED_KINDS)
    for api_version, kind in sorted(kinds):
        live = await ctx.kube.list(
            api_version, kind, metadata["namespace"], selector(metadata["name"])
        )
        for obj in live:
            key = (api_version, kind, obj["metadata"]["name"])
            if key in wanted or not owned(obj, metadata["uid"]):
                continue
            logger.info("deleting %s %s: no longer part of the stack", kind, key[2])
            await ctx.kube.delete(api_version, kind, metadata["namespace"], key[2])


# Status ----------------------------------------------------------------------------------------


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def current_status(ctx: Context, body: Mapping[str, Any]) -> dict[str, Any] | None:
    metadata = body["metadata"]
    fresh = await ctx.kube.get(
        "lokistack.dev/v1", "LokiStack", metadata["namespace"], metadata["name"]
    )
    if fresh is None:
        return None
    found = fresh.get("status")
    return dict(found) if isinstance(found, Mapping) else {}


async def put_status(ctx: Context, body: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    metadata = body["metadata"]
    try:
        await ctx.kube.json_patch(
            "lokistack.dev/v1",
            "LokiStack",
            metadata["namespace"],
            metadata["name"],
            [{"op": "add", "path": "/status", "value": dict(new)}],
            subresource="status",
        )
    except kube.KubeError as error:
        if error.status != 404:  # deleted meanwhile: nothing to report on
            raise


async def write_status(
    ctx: Context, body: Mapping[str, Any], checked: observe.StorageCheck
) -> None:
    previous = await current_status(ctx, body)
    if previous is None:
        return
    observed = await observe.workloads(ctx.kube, body)
    warnings = [*checked.warnings, status.ring_condition(observed.ring)]
    new = status.build_status(
        previous,
        active=status.active_conditions(
            degraded=checked.degraded,
            components=status.components_condition(observed.components, observed.desired),
            warnings=warnings,
        ),
        generation=int(body["metadata"].get("generation") or 0),
        now=now(),
        components=observed.components,
        ring=observed.ring,
    )
    if not status.same_status(previous, new):
        await put_status(ctx, body, new)


async def write_condition(
    ctx: Context, body: Mapping[str, Any], condition: status.Condition
) -> None:
    previous = await current_status(ctx, body)
    if previous is None:
        return
    generation = int(body["metadata"].get("generation") or 0)
    new = status.with_condition(previous, condition, generation, now())
    if not status.same_status(previous, new):
        await put_status(ctx, body, new)


async def write_unmanaged(ctx: Context, body: Mapping[str, Any]) -> None:
    await write_condition(ctx, body, status.unmanaged())
