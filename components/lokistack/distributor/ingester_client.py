"""gRPC clients for the ingesters, one channel per address, reused across requests.

An ingester's refusal comes back as a gRPC status whose code carries the HTTP status Loki would
answer (INVALID_ARGUMENT 400, RESOURCE_EXHAUSTED 429) and whose details are Loki's message; any
other failure (unreachable, timeout, shutting down) is a 500 for the client, as in Loki.
"""

from __future__ import annotations

import asyncio
import datetime

import grpc

from lokistack.model import tenant as model_tenant
from lokistack.proto import push_pb2, push_pb2_grpc
from lokistack.ring import client

_STATUS_FOR_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
}


class IngesterError(Exception):
    def __init__(self, addr: str, status: int, message: str) -> None:
        super().__init__(message)
        self.addr = addr
        self.status = status
        self.message = message


class IngesterClients:
    """A pool of Pusher stubs keyed by ingester address."""

    def __init__(self, timeout: datetime.timedelta) -> None:
        self.timeout = timeout.total_seconds()
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, push_pb2_grpc.PusherStub] = {}

    def _stub(self, addr: str) -> push_pb2_grpc.PusherStub:
        stub = self._stubs.get(addr)
        if stub is None:
            channel = client.ingester_channel(addr)
            self._channels[addr] = channel
            stub = push_pb2_grpc.PusherStub(channel)
            self._stubs[addr] = stub
        return stub

    async def push(self, addr: str, tenant: str, request: push_pb2.PushRequest) -> None:
        try:
            # wait_for_ready: an ingester that restarts at the same address is ACTIVE in the ring
            # before this channel's reconnect backoff ends; a fail-fast call would fail in between.
            # A dead ingester then costs the timeout, which matters only when quorum is lost.
            await self._stub(addr).Push(
                request,
                metadata=((model_tenant.GRPC_METADATA_KEY, tenant),),
                timeout=self.timeout,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as error:
            code = error.code()
            status = _STATUS_FOR_CODE.get(code, 500)
            if status == 500:
                message = (
                    f"rpc error: code = {code.name.title().replace('_', '')} desc = "
                    f"{error.details()}"
                )
            else:
                message = error.details() or ""
            raise IngesterError(addr, status, message) from error

    async def close(self) -> None:
        channels = list(self._channels.values())
        self._channels.clear()
        self._stubs.clear()
        await asyncio.gather(*(channel.close() for channel in channels), return_exceptions=True)
