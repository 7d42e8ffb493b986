"""The ingester: the gRPC Push entry point, its WAL, flushing, readiness and shutdown.

A push is appended to the tenant's streams and acknowledged only after the records describing
what was stored are in the WAL, so a killed process loses no acknowledged entry. On start the
ingester replays its WAL (latest checkpoint, then later segments) before it joins the ring; a
checkpoint every ``checkpoint_duration`` bounds the replay. Chunks are flushed to the object
store by :mod:`lokistack.ingester.flush`, and the index files are sealed and shipped by the
index shipper. On shutdown it refuses pushes, flushes everything (``flush_on_shutdown``), seals
the index, and leaves the ring.

Refusals travel back to the distributor as gRPC status codes that carry Loki's HTTP meaning
(:data:`GRPC_CODE_FOR_STATUS`) with Loki's body text as details.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
import time
from collections.abc import Callable
from typing import Protocol

import grpc
import prometheus_client
from aiohttp import web

from lokistack import config, limits
from lokistack.chunk import codec as chunk_codec
from lokistack.ingester import flush
from lokistack.ingester import instance as tenant_instance
from lokistack.ingester import query as ingester_query
from lokistack.ingester import stream as stream_mod
from lokistack.model import tenant as model_tenant
from lokistack.proto import push_pb2, push_pb2_grpc
from lokistack.storage import chunk_store, index_shipper, objstore
from lokistack.wal import checkpoint as wal_checkpoint
from lokistack.wal import log as wal_log
from lokistack.wal import record as wal_record
from lokistack.wal import replay as wal_replay

log = logging.getLogger(__name__)

REPLAY_YIELD_EVERY = 500  # records between yields to the event loop during replay

GRPC_CODE_FOR_STATUS: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}

REPLAY_ACTIVE = prometheus_client.Gauge(
    "loki_ingester_wal_replay_active", "Whether the WAL is being replayed."
)
REPLAY_FLUSHING = prometheus_client.Gauge(
    "loki_ingester_wal_replay_flushing", "Whether a flush is running during WAL replay."
)


class RingMember(Protocol):
    def is_active(self) -> bool: ...


class Ingester(push_pb2_grpc.PusherServicer):
    def __init__(
        self,
        cfg: config.Config,
        *,
        overrides: limits.Overrides,
        member: RingMember,
        healthy_ingesters: Callable[[], int],
        store: objstore.ObjectStore,
        instance_id: str,
    ) -> None:
        self.cfg = cfg
        self.overrides = overrides
        self.member = member
        self.healthy_ingesters = healthy_ingesters
        ingester_cfg = cfg.ingester
        self.shape = stream_mod.ChunkShape(
            chunk_codec.Encoding(ingester_cfg.chunk_encoding),
            ingester_cfg.chunk_block_size,
            ingester_cfg.chunk_target_size,
            int(ingester_cfg.max_chunk_age.total_seconds() * 1e9),
        )
        self.instances: dict[str, tenant_instance.TenantInstance] = {}
        self.query_service = ingester_query.QueryService(self.instances)
        self.wal_dir = pathlib.Path(ingester_cfg.wal.dir)
        wal_cfg = ingester_cfg.wal
        self.wal: wal_log.WAL | None = (
            wal_log.WAL(self.wal_dir, wal_cfg.segment_size, wal_cfg.fsync, wal_cfg.fsync_period)
            if wal_cfg.enabled
            else None
        )
        self.shipper = index_shipper.IndexShipper(
            store, ingester_cfg.index_dir, instance_id, ingester_cfg.index_seal_period
        )
        self.flusher = flush.Flusher(
            self.instances,
            chunk_store.ChunkStore(store),
            self.shipper,
            flush.FlushPolicy.from_config(ingester_cfg),
        )
        self.flush_on_shutdown = ingester_cfg.flush_on_shutdown
        self.read_only = False
        self.replayed = False
        self._tasks: list[asyncio.Task[None]] = []
        self._flush_task: asyncio.Task[None] | None = None
        self.request_stop: Callable[[bool], None] = lambda terminate: None
        """Set by the process: stop this ingester (leave the ring), and exit if ``terminate``."""

    def instance(self, tenant: str) -> tenant_instance.TenantInstance:
        found = self.instances.get(tenant)
        if found is None:
            found = tenant_instance.TenantInstance(
                tenant,
                self.overrides,
                self.healthy_ingesters,
                self.cfg.ring.replication_factor,
                self.shape,
            )
            self.instances[tenant] = found
        return found

    # Lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Replay the WAL, open it for writing, and start flushing; then the ring may be joined."""
        self.flusher.start()
        if self.wal is not None:
            await self._replay()
            await self.wal.open()
            self._tasks.append(asyncio.create_task(self._checkpoint_loop(), name="checkpoint"))
        self.replayed = True
        self._tasks.append(asyncio.create_task(self.flusher.run(), name="flush-loop"))
        self._tasks.append(asyncio.create_task(self.shipper.run(), name="index-shipper"))

    async def _replay(self) -> None:
        if not self.wal_dir.exists():
            return
        REPLAY_ACTIVE.set(1)
        ceiling = self.cfg.ingester.wal.replay_memory_ceiling * 0.9
        in_memory = 0
        records = wal_replay.replay(self.wal_dir)
        try:
            for count, item in enumerate(records, 1):
                if isinstance(item, wal_record.CheckpointStreamRecord):
                    self.instance(item.tenant).replay_checkpoint(item)
                    in_memory += len(item.payload)
                elif isinstance(item, wal_record.SeriesRecord):
                    self.instance(item.tenant).replay_series(item)
                elif isinstance(item, wal_record.EntriesRecord):
                    self.instance(item.tenant).replay_entries(item)
                    in_memory += len(item.lines_blob)
                if in_memory > ceiling:
                    in_memory = await self._flush_during_replay()
                if count % REPLAY_YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        finally:
            REPLAY_ACTIVE.set(0)
        stats = records.stats
        log.info(
            "WAL replayed",
            extra={
                "records": stats.records,
                "entries": stats.entries,
                "bytes": stats.bytes,
                "seconds": round(stats.seconds, 3),
                "corruptions": stats.corruptions,
                "streams": sum(len(i.streams) for i in self.instances.values()),
            },
        )

    async def _flush_during_replay(self) -> int:
        """Over the replay memory ceiling: store what is in memory and drop it (streams stay)."""
        REPLAY_FLUSHING.set(1)
        try:
            if not await self.flusher.flush_all():
                raise RuntimeError("WAL replay is over its memory ceiling and flushing failed")
            # The ingester serves no query before replay ends; the memory ceiling comes first,
            # and the next seal makes these chunks findable in the store.
            self.flusher.remove_flushed(keep_streams=True, only_shipped=False)
        finally:
            REPLAY_FLUSHING.set(0)
        return sum(
            stream.unflushed_bytes()
            for i in self.instances.values()
            for stream in i.streams.values()
        )

    async def _checkpoint_loop(self) -> None:
        period = self.cfg.ingester.wal.checkpoint_duration.total_seconds()
        while True:
            await asyncio.sleep(period)
            try:
                await self.checkpoint()
            except Exception:
                log.exception("checkpoint failed; the WAL segments stay until the next one")

    async def checkpoint(self) -> None:
        """Snapshot every stream into a new checkpoint covering the segments written so far."""
        assert self.wal is not None
        started = time.monotonic()
        covers = self.wal.rotate()
        records: list[wal_record.CheckpointStreamRecord] = []
        for tenant in list(self.instances.values()):
            records.extend(tenant.checkpoint_records())
            await asyncio.sleep(0)
        await asyncio.to_thread(
            wal_checkpoint.write_checkpoint,
            self.wal_dir,
            records,
            covers,
            segment_size=self.cfg.ingester.wal.segment_size,
        )
        log.info(
            "checkpoint written",
            extra={
                "streams": len(records),
                "covers_segment": covers,
                "seconds": round(time.monotonic() - started, 3),
            },
        )

    def begin_shutdown(self) -> None:
        """Refuse new pushes from now on."""
        self.read_only = True

    async def stop(self) -> None:
        """Flush (unless disabled), seal and ship the index, stop the loops, close the WAL."""
        self.read_only = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.flush_on_shutdown and self.replayed:
            if not await self.flusher.flush_all():
                log.warning("some chunks could not be flushed at shutdown; they stay in the WAL")
            try:
                await self.shipper.seal_and_upload()
            except Exception as error:
                log.warning(
                    "index upload at shutdown failed; sealed files stay on disk",
                    extra={"err": str(error)},
                )
        await self.flusher.stop()
        if self.wal is not None and self.replayed:
            await self.wal.close()

    # Serving ----------------------------------------------------------------------------------

    async def Push(  # noqa: N802 (the gRPC method name)
        self,
        request: push_pb2.PushRequest,
        context: grpc.aio.ServicerContext[push_pb2.PushRequest, push_pb2.PushResponse],
    ) -> push_pb2.PushResponse:
        tenant = dict(context.invocation_metadata() or ()).get(model_tenant.GRPC_METADATA_KEY)
        if not tenant or not isinstance(tenant, str):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no org id")
        if self.read_only or not self.replayed:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "Ingester is shutting down")
        records, refusal = self.instance(str(tenant)).push(request)
        if records and self.wal is not None:
            try:
                await self.wal.log(records)
            except wal_log.WALWriteError as error:
                await context.abort(grpc.StatusCode.INTERNAL, f"WAL write failed: {error}")
        if records:
            self.query_service.on_records(str(tenant), records)
        if refusal is not None:
            await context.abort(
                GRPC_CODE_FOR_STATUS.get(refusal.status, grpc.StatusCode.INTERNAL),
                refusal.message,
            )
        return push_pb2.PushResponse()

    def readiness(self) -> str | None:
        """None when ready: the WAL is replayed and this member is ACTIVE in the ring."""
        if self.read_only:
            return "Ingester is shutting down"
        if not self.replayed:
            return "replaying the WAL"
        if not self.member.is_active():
            return "this instance is not ACTIVE in the ring"
        return None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.route("*", "/flush", self._flush_handler),
            web.route("*", "/ingester/shutdown", self._shutdown_handler),
        ]

    async def flush_and_ship(self) -> None:
        """Flush every chunk, then seal and upload the index so the flushed data is findable."""
        if not await self.flusher.flush_all():
            log.warning("a requested flush left chunks unflushed; the flush loop retries them")
        await self.shipper.seal_and_upload()

    async def _flush_handler(self, request: web.Request) -> web.Response:
        if request.method not in ("GET", "POST"):
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.create_task(self.flush_and_ship(), name="flush-request")
        return web.Response(status=204)

    async def _shutdown_handler(self, request: web.Request) -> web.Response:
        if request.method not in ("GET", "POST"):
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])
        if self.read_only:
            return web.Response(status=503, text="Ingester is stopping or already stopped.\n")
        self.flush_on_shutdown = request.query.get("flush", "true").lower() != "false"
        self.request_stop(request.query.get("terminate", "true").lower() != "false")
        return web.Response(status=204)
