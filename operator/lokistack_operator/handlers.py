"""The kopf handlers: thin wrappers that hand every cause to :mod:`reconcile`.

- create, update and resume of a ``lokistacks.lokistack.dev/v1`` run a full reconcile (kopf
  reports an update for spec, label and annotation changes, so touching an annotation forces one);
- a background task started with the operator refreshes the status (pods, ring Leases, bucket
  probe) of every stack every ``status_interval`` seconds (not a kopf timer: kopf puts a
  finalizer on every object with a timer, and a stopped operator would then block deletions);
- the operator's own watch of LokiStacks tells which stacks name which storage Secret, and any
  change to such a Secret (created, modified, deleted) reconciles those stacks: a missing Secret
  that appears heals the stack without waiting for the refresh;
- ``managementState: Unmanaged`` stacks are left alone, apart from a status condition saying so.

kopf keeps its own progress and diff base in annotations under ``lokistack.dev/``, so it never
writes into ``status``, whose shape is the CRD's. No deletion handler exists, hence no finalizer:
owned objects go with the stack through ownerReference garbage collection, and a stopped operator
never blocks a deletion.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any, Final

import kopf

from lokistack_operator import kube, observe, reconcile

GROUP: Final = "lokistack.dev"
VERSION: Final = "v1"
PLURAL: Final = "lokistacks"
ANNOTATION_PREFIX: Final = "lokistack.dev"


def configure_settings(settings: kopf.OperatorSettings) -> None:
    """Operator-wide kopf settings: bookkeeping in annotations, watch timeouts."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/finalizer"
    settings.posting.level = logging.INFO
    # Silent watch stalls: ask the server to end each watch within 5 minutes, and give up on a
    # connection that says nothing for longer than that.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60


@dataclasses.dataclass
class Known:
    """The LokiStacks the operator sees, from its own watch, for the periodic status refresh and
    for finding the stacks that use a Secret."""

    stacks: dict[tuple[str, str], Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def using_secret(self, namespace: str | None, secret: str) -> list[str]:
        return sorted(
            name
            for (stack_namespace, name), body in self.stacks.items()
            if stack_namespace == namespace and observe.secret_name(body) == secret
        )


async def refresh_forever(
    ctx: reconcile.Context, known: Known, interval: float, logger: logging.Logger
) -> None:
    """Every ``interval`` seconds, refresh the status of every known stack, one at a time."""
    while True:
        await asyncio.sleep(interval)
        for body in list(known.stacks.values()):
            try:
                await reconcile.refresh(ctx, body, logger)
            except Exception:  # one stack's trouble must not stop the others' refreshes
                logger.exception(
                    "status refresh of LokiStack %s/%s failed",
                    body["metadata"].get("namespace"),
                    body["metadata"].get("name"),
                )


def register(
    registry: kopf.OperatorRegistry,
    ctx: reconcile.Context,
    *,
    status_interval: float = 30.0,
) -> Known:
    """Register every handler in ``registry``, bound to ``ctx``; returns the stack cache."""
    known = Known()
    tasks: list[asyncio.Task[None]] = []

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kube.connection_info(ctx.kube.api.configuration)

    @kopf.on.startup(registry=registry)
    async def start_refresher(**_: Any) -> None:
        logger = logging.getLogger("lokistack_operator.status")
        task = asyncio.create_task(refresh_forever(ctx, known, status_interval, logger))
        tasks.append(task)

    @kopf.on.cleanup(registry=registry)
    async def stop_refresher(**_: Any) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    def track(type: str, event: kopf.RawEvent, namespace: str | None, name: str, **_: Any) -> None:
        key = (namespace or "", name)
        if type == "DELETED":
            known.stacks.pop(key, None)
        elif isinstance(event.get("object"), Mapping):
            known.stacks[key] = event["object"]

    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    async def reconcile_stack(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
        await run(ctx, body, logger)

    def referenced(namespace: str | None, name: str, **_: Any) -> bool:
        return bool(known.using_secret(namespace, name))

    @kopf.on.event("", "v1", "secrets", registry=registry, when=referenced)
    async def storage_secret_changed(
        type: str, namespace: str | None, name: str, logger: kopf.Logger, **_: Any
    ) -> None:
        if not type or namespace is None:  # the initial listing: resume handlers cover it
            return
        for stack in known.using_secret(namespace, name):
            found = await ctx.kube.get(f"{GROUP}/{VERSION}", "LokiStack", namespace, stack)
            if found is None:
                continue
            logger.info("storage secret %s changed: reconciling LokiStack %s", name, stack)
            await run(ctx, found, logger)

    return known


async def run(ctx: reconcile.Context, body: Mapping[str, Any], logger: kopf.Logger) -> None:
    """Reconcile, turning API failures into kopf retries."""
    try:
        await reconcile.reconcile(ctx, body, logger)
    except kube.KubeError as error:
        raise kopf.TemporaryError(f"reconcile failed: {error}", delay=10) from error
