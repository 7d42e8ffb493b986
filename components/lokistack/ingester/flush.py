"""Flushing chunks to the object store and recording them in the index.

Every ``flush_check_period`` a sweep looks at every stream and queues those with a chunk that is
full (closed), idle for ``chunk_idle_period``, or spanning more than ``max_chunk_age``; an
immediate flush (``/flush``, shutdown, replay over the memory ceiling) queues every stream.
``concurrent_flushes`` workers take streams oldest data first. A chunk is closed before it is
stored (new entries go to a new chunk), encoded off the event loop, written to the object store,
then added to the index head: the object first, so an index row never points at nothing. A
failed attempt is retried with backoff; a chunk that still fails stays in memory and in the WAL
and is tried again by the next sweep, so a storage outage loses nothing. Flushed chunks are
dropped from memory after ``chunk_retain_period``; a stream with no chunks left is removed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import random
import time
from collections.abc import Callable, Mapping

import prometheus_client

from lokistack import config
from lokistack.ingester import instance as tenant_instance
from lokistack.ingester import stream as stream_mod
from lokistack.storage import chunk_keys, chunk_store, index_shipper

log = logging.getLogger(__name__)

CHUNKS_FLUSHED = prometheus_client.Counter(
    "loki_ingester_chunks_flushed_total", "Total flushed chunks per reason.", ["reason"]
)
FLUSH_REQUESTS = prometheus_client.Counter(
    "loki_ingester_chunks_flush_requests_total", "Total number of chunk flush requests."
)
FLUSH_FAILURES = prometheus_client.Counter(
    "loki_ingester_chunks_flush_failures_total", "Total number of failed chunk flush attempts."
)
CHUNKS_STORED = prometheus_client.Counter(
    "loki_ingester_chunks_stored_total", "Total stored chunks per tenant.", ["tenant"]
)
CHUNK_STORED_BYTES = prometheus_client.Counter(
    "loki_ingester_chunk_stored_bytes_total", "Total bytes stored in chunks per tenant.", ["tenant"]
)
FLUSH_QUEUE_LENGTH = prometheus_client.Gauge(
    "loki_ingester_flush_queue_length", "The total number of series pending in the flush queue."
)
MEMORY_CHUNKS = prometheus_client.Gauge(
    "loki_ingester_memory_chunks", "The total number of chunks in memory."
)
CHUNK_UTILIZATION = prometheus_client.Histogram(
    "loki_ingester_chunk_utilization",
    "Distribution of stored chunk utilization.",
    buckets=(0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.2),
)
CHUNK_ENTRIES = prometheus_client.Histogram(
    "loki_ingester_chunk_entries",
    "Distribution of stored lines per chunk.",
    buckets=(10, 100, 1000, 5000, 10000, 50000, 100000),
)
CHUNK_SIZE = prometheus_client.Histogram(
    "loki_ingester_chunk_size_bytes",
    "Distribution of stored chunk sizes (when stored).",
    buckets=(1024, 16384, 65536, 262144, 1048576, 1572864, 2097152, 4194304),
)
CHUNK_COMPRESSION = prometheus_client.Histogram(
    "loki_ingester_chunk_compression_ratio",
    "Compression ratio of chunks (when stored).",
    buckets=(1, 2, 4, 6, 8, 10, 15, 20, 30),
)


@dataclasses.dataclass(frozen=True)
class FlushPolicy:
    idle_seconds: float
    max_age_ns: int
    retain_seconds: float
    check_period: float
    workers: int
    op_timeout: float
    backoff_min: float = 10.0
    backoff_max: float = 60.0
    max_retries: int = 10

    @classmethod
    def from_config(cls, cfg: config.Ingester) -> FlushPolicy:
        return cls(
            idle_seconds=cfg.chunk_idle_period.total_seconds(),
            max_age_ns=int(cfg.max_chunk_age.total_seconds() * 1e9),
            retain_seconds=cfg.chunk_retain_period.total_seconds(),
            check_period=cfg.flush_check_period.total_seconds(),
            workers=cfg.concurrent_flushes,
            op_timeout=cfg.flush_op_timeout.total_seconds(),
            backoff_min=cfg.flush_op_backoff.min_period.total_seconds(),
            backoff_max=cfg.flush_op_backoff.max_period.total_seconds(),
            max_retries=cfg.flush_op_backoff.max_retries,
        )


def flush_reason(
    desc: stream_mod.ChunkDesc, is_last: bool, policy: FlushPolicy, now: float, immediate: bool
) -> str | None:
    """Why this chunk should be flushed now, in Loki's order, or None to keep it."""
    if desc.flushed_at:
        return None
    if desc.closed or not is_last:
        return "full"
    if now - desc.last_updated > policy.idle_seconds:
        return "idle"
    chunk = desc.chunk
    if chunk.num_entries and chunk.maxt - chunk.mint > policy.max_age_ns:
        return "max_age"
    if immediate:
        return "forced"
    return None


class Flusher:
    def __init__(
        self,
        instances: Mapping[str, tenant_instance.TenantInstance],
        chunks: chunk_store.ChunkStore,
        shipper: index_shipper.IndexShipper,
        policy: FlushPolicy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.instances = instances
        self.chunks = chunks
        self.shipper = shipper
        self.policy = policy
        self.clock = clock
        self._queue: asyncio.PriorityQueue[tuple[int, int, str, int, bool]] = (
            asyncio.PriorityQueue()
        )
        self._queued: set[tuple[str, int, bool]] = set()
        self._sequence = itertools.count()
        self._workers: list[asyncio.Task[None]] = []
        self.failed_ops = 0

    # Queueing ---------------------------------------------------------------------------------

    def sweep(self, immediate: bool) -> int:
        """Queue every stream that has something to flush; returns how many were queued."""
        now = self.clock()
        queued = 0
        chunk_count = 0
        for tenant, instance in list(self.instances.items()):
            for stream in list(instance.streams.values()):
                chunk_count += len(stream.chunks)
                if self._needs_flush(stream, now, immediate):
                    queued += self._enqueue(tenant, stream, immediate)
        MEMORY_CHUNKS.set(chunk_count)
        return queued

    def _needs_flush(self, stream: stream_mod.Stream, now: float, immediate: bool) -> bool:
        last = len(stream.chunks) - 1
        return any(
            flush_reason(desc, index == last, self.policy, now, immediate) is not None
            for index, desc in enumerate(stream.chunks)
        )

    def _enqueue(self, tenant: str, stream: stream_mod.Stream, immediate: bool) -> int:
        key = (tenant, stream.fingerprint, immediate)
        if key in self._queued:
            return 0
        self._queued.add(key)
        oldest = min(
            (desc.chunk.mint for desc in stream.chunks if desc.chunk.num_entries), default=0
        )
        self._queue.put_nowait(
            (oldest, next(self._sequence), tenant, stream.fingerprint, immediate)
        )
        FLUSH_QUEUE_LENGTH.set(self._queue.qsize())
        return 1

    # Workers ----------------------------------------------------------------------------------

    def start(self) -> None:
        for index in range(self.policy.workers):
            self._workers.append(asyncio.create_task(self._work(), name=f"flush-worker-{index}"))

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()

    async def _work(self) -> None:
        while True:
            _, _, tenant, fingerprint, immediate = await self._queue.get()
            try:
                await self._flush_with_retries(tenant, fingerprint, immediate)
            except Exception:
                log.exception("flush worker failed", extra={"tenant": tenant})
            finally:
                self._queued.discard((tenant, fingerprint, immediate))
                self._queue.task_done()
                FLUSH_QUEUE_LENGTH.set(self._queue.qsize())

    async def _flush_with_retries(self, tenant: str, fingerprint: int, immediate: bool) -> None:
        FLUSH_REQUESTS.inc()
        backoff = self.policy.backoff_min
        for attempt in range(1, self.policy.max_retries + 1):
            try:
                await asyncio.wait_for(
                    self.flush_stream(tenant, fingerprint, immediate), self.policy.op_timeout
                )
                return
            except Exception as error:
                FLUSH_FAILURES.inc()
                log.warning(
                    "flush failed; chunks stay in memory and the WAL",
                    extra={"tenant": tenant, "attempt": attempt, "err": str(error)},
                )
                if attempt == self.policy.max_retries:
                    self.failed_ops += 1
                    return
                await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, self.policy.backoff_max)

    async def flush_stream(self, tenant: str, fingerprint: int, immediate: bool) -> None:
        """Store every chunk of one stream that should be flushed now."""
        instance = self.instances.get(tenant)
        stream = instance.streams.get(fingerprint) if instance is not None else None
        if stream is None:
            return
        now = self.clock()
        last = len(stream.chunks) - 1
        for index, desc in enumerate(list(stream.chunks)):
            reason = flush_reason(desc, index == last, self.policy, now, immediate)
            if reason is None or not desc.chunk.num_entries:
                continue
            if not desc.closed:
                desc.closed = True  # new entries go to a new chunk from now on
                desc.chunk.close()
            await self._store(tenant, stream, desc, reason)

    async def _store(
        self, tenant: str, stream: stream_mod.Stream, desc: stream_mod.ChunkDesc, reason: str
    ) -> None:
        memchunk = desc.chunk
        data = await asyncio.to_thread(memchunk.encode)
        checksum = chunk_keys.chunk_checksum(data)
        key = await self.chunks.put_chunk(
            tenant, stream.fingerprint, memchunk.mint, memchunk.maxt, checksum, data
        )
        await self.shipper.head.add_chunk(
            tenant,
            stream.fingerprint,
            stream.labels,
            memchunk.mint,
            memchunk.maxt,
            key,
            len(data),
            memchunk.num_entries,
        )
        desc.flushed_at = self.clock()
        desc.flush_reason = reason
        CHUNKS_FLUSHED.labels(reason).inc()
        CHUNKS_STORED.labels(tenant).inc()
        CHUNK_STORED_BYTES.labels(tenant).inc(len(data))
        CHUNK_UTILIZATION.observe(memchunk.utilization)
        CHUNK_ENTRIES.observe(memchunk.num_entries)
        CHUNK_SIZE.observe(len(data))
        if len(data):
            CHUNK_COMPRESSION.observe(memchunk.uncompressed_size / len(data))

    # Memory ------------------------------------------------------------------------------------

    def remove_flushed(self, keep_streams: bool = False, only_shipped: bool = True) -> int:
        """Drop flushed chunks past the retain period, and streams left empty; returns the
        number of chunks dropped.

        With ``only_shipped`` a chunk is dropped only once its index row is in an uploaded
        index file (it was flushed before the last fully successful seal began): until then
        queriers can find it only here, in memory.
        """
        now = self.clock()
        shipped_before = self.shipper.shipped_before if only_shipped else float("inf")
        retain = self.policy.retain_seconds
        dropped = 0
        for instance in list(self.instances.values()):
            for stream in list(instance.streams.values()):
                kept = [
                    desc
                    for desc in stream.chunks
                    if not desc.flushed_at
                    or now - desc.flushed_at < retain
                    or desc.flushed_at >= shipped_before
                ]
                dropped += len(stream.chunks) - len(kept)
                stream.chunks = kept
                if not kept and not keep_streams:
                    instance.remove_stream(stream.fingerprint)
        return dropped

    async def flush_all(self) -> bool:
        """Flush every chunk now and wait; True when nothing unflushed remains."""
        self.sweep(immediate=True)
        await self._queue.join()
        return not any(
            not desc.flushed_at and desc.chunk.num_entries
            for instance in self.instances.values()
            for stream in instance.streams.values()
            for desc in stream.chunks
        )

    async def run(self) -> None:
        """Sweep every check period (the first after a random delay, as Loki spreads them)."""
        await asyncio.sleep(random.uniform(0, 0.8 * self.policy.check_period))
        while True:
            self.sweep(immediate=False)
            self.remove_flushed()
            await asyncio.sleep(self.policy.check_period * random.uniform(0.8, 1.2))
