"""The ingester: the gRPC Push entry point, per-tenant instances, readiness and shutdown.

Distributors call ``/logproto.Pusher/Push`` with the tenant in the ``x-scope-orgid`` metadata.
Refusals travel back as gRPC status codes that carry Loki's HTTP meaning (see
:data:`GRPC_CODE_FOR_STATUS`), and the message is Loki's body text, so the distributor can answer
the client exactly as Loki would. The ingester is ready only while its ring member is ACTIVE;
on shutdown it refuses pushes, goes LEAVING, and leaves the ring.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import grpc

from lokistack import limits
from lokistack.ingester import instance as tenant_instance
from lokistack.proto import push_pb2, push_pb2_grpc

log = logging.getLogger(__name__)

TENANT_METADATA_KEY = "x-scope-orgid"

# The HTTP status a refusal means to the client, carried as a gRPC code.
GRPC_CODE_FOR_STATUS: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


class RingMember(Protocol):
    """What the ingester needs of its ring lifecycler."""

    def is_active(self) -> bool: ...


class Ingester(push_pb2_grpc.PusherServicer):
    def __init__(
        self,
        overrides: limits.Overrides,
        member: RingMember,
        healthy_ingesters: Callable[[], int],
        replication_factor: int,
    ) -> None:
        self.overrides = overrides
        self.member = member
        self.healthy_ingesters = healthy_ingesters
        self.replication_factor = replication_factor
        self.instances: dict[str, tenant_instance.TenantInstance] = {}
        self.read_only = False

    def instance(self, tenant: str) -> tenant_instance.TenantInstance:
        found = self.instances.get(tenant)
        if found is None:
            found = tenant_instance.TenantInstance(
                tenant, self.overrides, self.healthy_ingesters, self.replication_factor
            )
            self.instances[tenant] = found
        return found

    async def Push(  # noqa: N802 (the gRPC method name)
        self,
        request: push_pb2.PushRequest,
        context: grpc.aio.ServicerContext[push_pb2.PushRequest, push_pb2.PushResponse],
    ) -> push_pb2.PushResponse:
        tenant = dict(context.invocation_metadata() or ()).get(TENANT_METADATA_KEY)
        if not tenant or not isinstance(tenant, str):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no org id")
        if self.read_only:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "Ingester is shutting down")
        try:
            self.instance(str(tenant)).push(request)
        except tenant_instance.PushError as error:
            await context.abort(
                GRPC_CODE_FOR_STATUS.get(error.status, grpc.StatusCode.INTERNAL), error.message
            )
        return push_pb2.PushResponse()

    def readiness(self) -> str | None:
        """None when ready; Loki's readiness rule reduced to: this member is ACTIVE in the ring."""
        if self.read_only:
            return "Ingester is shutting down"
        if not self.member.is_active():
            return "this instance is not ACTIVE in the ring"
        return None

    def begin_shutdown(self) -> None:
        """Refuse new pushes; what is in memory stays until the process ends."""
        self.read_only = True
