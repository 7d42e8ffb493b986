"""Log and sample queries over flushed chunks: the index, the chunk cache and the object store.

A query finds its series' chunk refs in the index and reads them in the time windows that
:mod:`lokistack.querier.store_plan` cuts (Loki's batch iterator, reference §3.5), so every entry
of a window is final and the windows come out in global order. A chunk that spans several
windows is fetched and decoded once per query and re-read in each window. A log query stops at
the window that reaches its ``limit``. Sample queries read a few series at a time (at most
``batch_size`` chunks, or one big series in windows) and yield one batch per window, so memory
stays bounded however long the range.

Fetching is async, the next window's chunks downloading while the current one is processed;
decoding, the pipeline and dropping replica copies (:mod:`lokistack.querier.store_scan`) are
CPU work and run in a worker thread, one call per window, so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from typing import Final

import prometheus_client

from lokistack.chunk import chunk as chunk_mod
from lokistack.iter import chunks as iter_chunks
from lokistack.iter import entries
from lokistack.loghttp import encoding
from lokistack.logql.log import pipeline as log_pipeline
from lokistack.logql.syntax import ast
from lokistack.model import labels as model_labels
from lokistack.querier import chunk_cache, store_plan, store_scan
from lokistack.storage import chunk_store, index_reader

SampleRow = iter_chunks.SampleRow
DEFAULT_BATCH_SIZE: Final = 50  # Loki's -store.max-chunk-batch-size

CHUNKS_DOWNLOADED: Final = prometheus_client.Counter(
    "loki_store_chunks_downloaded_total", "Chunks read by queries, from the cache or the store."
)
CHUNKS_PER_BATCH: Final = prometheus_client.Histogram(
    "loki_store_chunks_per_batch",
    "Chunks read per query window.",
    buckets=[1, 5, 10, 20, 50, 100, 200, 500, 1000],
)

_OPS: Final[dict[ast.MatchOp, index_reader.MatchOp]] = {
    ast.MatchOp.EQ: "=",
    ast.MatchOp.NEQ: "!=",
    ast.MatchOp.RE: "=~",
    ast.MatchOp.NRE: "!~",
}


class StoreQuerier:
    """Answers queries from the index and the chunks in the object store."""

    def __init__(
        self,
        index: index_reader.IndexReader,
        chunks: chunk_store.ChunkStore,
        cache: chunk_cache.ChunkCache,
        fetch_parallelism: int = 16,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.index = index
        self.chunks = chunks
        self.cache = cache
        self.fetch_parallelism = fetch_parallelism
        self.batch_size = batch_size

    async def select_logs(  # noqa: PLR0917 - the querier's StoreSource signature
        self,
        tenant: str,
        query: ast.LogQueryExpr,
        from_ns: int,
        through_ns: int,
        direction: entries.Direction,
        limit: int,
        stats: encoding.Stats,
    ) -> list[entries.Entry]:
        """Entries in ``[from_ns, through_ns)`` in ``direction`` order, at most ``limit`` (0:
        all), each distinct entry once."""
        found = await self._chunks(tenant, query.matchers, from_ns, through_ns, stats)
        pipeline = log_pipeline.Pipeline.from_ast(query.stages)
        plan = store_plan.plan(found, from_ns, through_ns, direction, self.batch_size)
        decoded: dict[str, chunk_mod.MemChunk] = {}
        out: list[entries.Entry] = []
        fetched = self._fetched(plan, stats, lazy_first=limit > 0)
        async with contextlib.aclosing(fetched) as windows:
            async for window in windows:
                remaining = limit - len(out) if limit > 0 else 0
                scan = iter_chunks.ScanStats()
                got, duplicates = await asyncio.to_thread(
                    store_scan.scan_logs, window, decoded, pipeline, direction, remaining, scan
                )
                _add_scan(stats, scan)
                stats.store.total_duplicates += duplicates
                out.extend(got)
                if 0 < limit <= len(out):
                    break
        return out

    async def select_samples(  # noqa: PLR0917 - the querier's StoreSource signature
        self,
        tenant: str,
        query: ast.LogQueryExpr,
        unwrap: ast.Unwrap | None,
        from_ns: int,
        through_ns: int,
        stats: encoding.Stats,
    ) -> AsyncIterator[list[SampleRow]]:
        """Batches of ``(labels, ts, value)``, one per line in ``[from_ns, through_ns)`` that
        passes the pipeline (the line's UTF-8 length, or the unwrapped value). Each series'
        samples come in time order; series interleave between batches."""
        found = await self._chunks(tenant, query.matchers, from_ns, through_ns, stats)
        pipeline = log_pipeline.Pipeline.from_ast(query.stages, unwrap)
        plan = (
            window
            for group in store_plan.series_groups(found, self.batch_size)
            for window in store_plan.plan(group, from_ns, through_ns, "forward", self.batch_size)
        )
        decoded: dict[str, chunk_mod.MemChunk] = {}
        async with contextlib.aclosing(self._fetched(plan, stats, lazy_first=False)) as windows:
            async for window in windows:
                scan = iter_chunks.ScanStats()
                rows, duplicates = await asyncio.to_thread(
                    store_scan.scan_samples, window, decoded, pipeline, unwrap is not None, scan
                )
                _add_scan(stats, scan)
                stats.store.total_duplicates += duplicates
                if rows:
                    yield rows

    async def label_names(
        self, tenant: str, from_ns: int, through_ns: int, matchers: Sequence[ast.Matcher]
    ) -> list[str]:
        """Names of the labels of the matching series with data in the range, sorted."""
        found = await self._series(tenant, from_ns, through_ns, matchers)
        return sorted({name for labels in found for name, _ in labels})

    async def label_values(
        self,
        tenant: str,
        name: str,
        from_ns: int,
        through_ns: int,
        matchers: Sequence[ast.Matcher],
    ) -> list[str]:
        """Values of label ``name`` among the matching series with data in the range, sorted."""
        found = await self._series(tenant, from_ns, through_ns, matchers)
        return sorted({value for labels in found for key, value in labels if key == name})

    async def series(
        self,
        tenant: str,
        from_ns: int,
        through_ns: int,
        matcher_sets: Sequence[Sequence[ast.Matcher]],
    ) -> list[model_labels.Labels]:
        """Label sets of the series matching any matcher set (none given: every series) with
        data in the range, sorted and unique."""
        sets = list(matcher_sets) or [()]
        found = await asyncio.gather(
            *(self._series(tenant, from_ns, through_ns, matchers) for matchers in sets)
        )
        return sorted({labels for labels_list in found for labels in labels_list})

    async def index_stats(
        self, tenant: str, from_ns: int, through_ns: int, matchers: Sequence[ast.Matcher]
    ) -> tuple[int, int, int, int]:
        """``(streams, chunks, bytes, entries)`` of the chunk refs overlapping the range.

        Approximate, as Loki's ``/index/stats``: no chunk is opened, so every entry of a chunk
        that only partly overlaps counts; ``bytes`` is the size of the stored (compressed)
        objects; and replicas that cut a stream's chunks at different points store each entry
        up to replication-factor times, each copy counted (identical cuts share one key and
        count once).
        """
        found = await self._lookup(tenant, matchers, from_ns, through_ns)
        refs = {ref.key: ref for series in found for ref in series.chunks}
        streams = sum(1 for series in found if series.chunks)
        size = sum(ref.size for ref in refs.values())
        return streams, len(refs), size, sum(ref.entries for ref in refs.values())

    # Index ------------------------------------------------------------------------------------

    async def _lookup(
        self, tenant: str, matchers: Sequence[ast.Matcher], from_ns: int, through_ns: int
    ) -> list[index_reader.SeriesRef]:
        if through_ns <= from_ns:
            return []
        converted = [index_reader.Matcher(m.name, _OPS[m.op], m.value) for m in matchers]
        # The index range is inclusive at both ends; ours excludes through_ns.
        return await self.index.series(tenant, from_ns, through_ns - 1, converted)

    async def _series(
        self, tenant: str, from_ns: int, through_ns: int, matchers: Sequence[ast.Matcher]
    ) -> list[model_labels.Labels]:
        found = await self._lookup(tenant, matchers, from_ns, through_ns)
        return [model_labels.parse_labels(series.labels) for series in found if series.chunks]

    async def _chunks(
        self,
        tenant: str,
        matchers: Sequence[ast.Matcher],
        from_ns: int,
        through_ns: int,
        stats: encoding.Stats,
    ) -> list[list[store_plan.Chunk]]:
        """The chunks overlapping ``[from_ns, through_ns)``, grouped by series."""
        found: list[list[store_plan.Chunk]] = []
        for series in await self._lookup(tenant, matchers, from_ns, through_ns):
            labels = model_labels.parse_labels(series.labels)
            refs = [c for c in series.chunks if c.from_ns < through_ns and c.through_ns >= from_ns]
            if refs:
                found.append([store_plan.Chunk(ref, series.fingerprint, labels) for ref in refs])
                stats.store.total_chunks_ref += len(refs)
        return found

    # Fetching ---------------------------------------------------------------------------------

    async def _fetched(
        self, plan: Iterator[store_plan.Window], stats: encoding.Stats, *, lazy_first: bool
    ) -> AsyncGenerator[store_plan.Window]:
        """The planned windows with the bytes of their chunks not in the previous window.

        The next window's chunks download while the caller processes the current one, except
        after the first window when ``lazy_first`` (a limited query, which often needs only
        that window: it should not download a second one for nothing).
        """
        plan_next = iter(plan)
        upcoming = next(plan_next, None)
        task = None if upcoming is None else self._start_load(upcoming, set(), stats)
        first = True
        try:
            while upcoming is not None and task is not None:
                current = upcoming
                current.raw = await task
                task = None
                upcoming = next(plan_next, None)
                held = {c.ref.key for c in current.live}
                if upcoming is not None and not (lazy_first and first):
                    task = self._start_load(upcoming, held, stats)
                CHUNKS_PER_BATCH.observe(len(current.live))
                yield current
                if upcoming is not None and task is None:
                    task = self._start_load(upcoming, held, stats)
                first = False
        finally:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    def _start_load(
        self, window: store_plan.Window, held: set[str], stats: encoding.Stats
    ) -> asyncio.Task[dict[str, bytes]]:
        keys = [c.ref.key for c in window.live if c.ref.key not in held]
        return asyncio.create_task(self._load(keys, stats))

    async def _load(self, keys: list[str], stats: encoding.Stats) -> dict[str, bytes]:
        if not keys:
            return {}
        started = time.perf_counter_ns()
        data, hits = await self.cache.fetch_with_hits(keys, self._get)
        stats.store.chunks_download_time_ns += time.perf_counter_ns() - started
        stats.store.total_chunks_downloaded += len(data)
        _count_cache(stats, len(data), hits)
        stats.store.compressed_bytes += sum(len(blob) for blob in data.values())
        CHUNKS_DOWNLOADED.inc(len(data))
        return data

    async def _get(self, keys: list[str]) -> dict[str, bytes]:
        return await self.chunks.get_chunks(keys, self.fetch_parallelism)


def _add_scan(stats: encoding.Stats, scan: iter_chunks.ScanStats) -> None:
    """A scan's counts into ``stats.querier.store``: lines and bytes include replica copies,
    as Loki's ``decompressedLines`` do."""
    stats.store.decompressed_lines += scan.lines
    stats.store.decompressed_bytes += scan.bytes
    stats.store.post_filter_lines += scan.post_filter_lines


def _count_cache(stats: encoding.Stats, requested: int, hits: int) -> None:
    cache = stats.cache("chunk")
    cache.requests += 1
    cache.entries_requested += requested
    cache.entries_found += hits
