"""Log and sample queries over flushed chunks: the index, the chunk cache and the object store.

Log queries follow Loki's batch iterator (reference §3.5). Chunk refs are sorted for the
direction (by start forward, by end descending backward) and read in time *windows*: a window
takes the next ``batch_size`` chunks and ends where the next unread chunk could begin to
contribute (its start forward, its end backward), so every entry of a window is final and the
windows come out in global order. A chunk that spans several windows is carried: it is fetched
and decoded once per query and re-read in each window. A query stops at the window that reaches
its ``limit``; within that window a limited query reads in steps sized from the blocks' entry
counts (growing fourfold), so ``limit=100`` over a busy window decodes a few blocks, not all.

With replication factor 3 each stream is flushed up to three times, cut at different points, so
a series' chunks overlap and each entry is read up to three times. The copies are dropped per
series with the rule of :func:`lokistack.iter.entries.merge` (identical timestamp, line and
labels), done with a dict and a stable sort instead of a Python-level heap. Sample queries read
a few series at a time (at most ``batch_size`` chunks, or one big series in windows) and yield
one batch per window, so memory stays bounded however long the range.

Fetching is async, the next window's chunks downloading while the current one is processed;
decoding and the pipeline are CPU work and run in a worker thread, one call per window, so the
event loop keeps serving. A chunk that fails to decode fails the query with
:class:`CorruptChunkError` naming its key: silently skipping it would return wrong results.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import operator
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Sequence
from typing import Final

import prometheus_client

from lokistack.chunk import block as chunk_block
from lokistack.chunk import chunk as chunk_mod
from lokistack.iter import chunks as iter_chunks
from lokistack.iter import entries
from lokistack.loghttp import encoding
from lokistack.logql.log import pipeline as log_pipeline
from lokistack.logql.syntax import ast
from lokistack.model import labels as model_labels
from lokistack.querier import chunk_cache
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
_TS: Final = operator.itemgetter(0)
_TS_LABELS: Final = operator.itemgetter(0, 2)  # (ts, labels) of a ProcessedEntry: merge order


class CorruptChunkError(RuntimeError):
    """A stored chunk that does not decode; the query fails (a server error, not a 4xx)."""

    def __init__(self, key: str, cause: Exception) -> None:
        super().__init__(f"chunk {key} is corrupt: {cause}")
        self.key = key


@dataclasses.dataclass(frozen=True, slots=True)
class _Chunk:
    ref: index_reader.ChunkRef
    fingerprint: int
    labels: model_labels.Labels


@dataclasses.dataclass(slots=True)
class _Window:
    """``[lo, hi)`` and the chunks overlapping it; ``raw`` holds those not read before."""

    lo: int
    hi: int
    live: list[_Chunk]
    raw: dict[str, bytes] = dataclasses.field(default_factory=dict)


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
        plan = _plan(found, from_ns, through_ns, direction, self.batch_size)
        decoded: dict[str, chunk_mod.MemChunk] = {}
        out: list[entries.Entry] = []
        fetched = self._fetched(plan, stats, lazy_first=limit > 0)
        async with contextlib.aclosing(fetched) as windows:
            async for window in windows:
                remaining = limit - len(out) if limit > 0 else 0
                scan = iter_chunks.ScanStats()
                got, duplicates = await asyncio.to_thread(
                    _scan_logs, window, decoded, pipeline, direction, remaining, scan
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
            for group in _series_groups(found, self.batch_size)
            for window in _plan(group, from_ns, through_ns, "forward", self.batch_size)
        )
        decoded: dict[str, chunk_mod.MemChunk] = {}
        async with contextlib.aclosing(self._fetched(plan, stats, lazy_first=False)) as windows:
            async for window in windows:
                scan = iter_chunks.ScanStats()
                rows, duplicates = await asyncio.to_thread(
                    _scan_samples, window, decoded, pipeline, unwrap is not None, scan
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
    ) -> list[list[_Chunk]]:
        """The chunks overlapping ``[from_ns, through_ns)``, grouped by series."""
        found: list[list[_Chunk]] = []
        for series in await self._lookup(tenant, matchers, from_ns, through_ns):
            labels = model_labels.parse_labels(series.labels)
            refs = [c for c in series.chunks if c.from_ns < through_ns and c.through_ns >= from_ns]
            if refs:
                found.append([_Chunk(ref, series.fingerprint, labels) for ref in refs])
                stats.store.total_chunks_ref += len(refs)
        return found

    # Fetching ---------------------------------------------------------------------------------

    async def _fetched(
        self, plan: Iterator[_Window], stats: encoding.Stats, *, lazy_first: bool
    ) -> AsyncGenerator[_Window]:
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
        self, window: _Window, held: set[str], stats: encoding.Stats
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


# Planning (pure) --------------------------------------------------------------------------------


def _plan(
    series: Iterable[list[_Chunk]],
    from_ns: int,
    through_ns: int,
    direction: entries.Direction,
    batch_size: int,
) -> Iterator[_Window]:
    """Windows over ``[from_ns, through_ns)`` in ``direction`` order, each with the chunks that
    overlap it; together they cover every chunk's entries in the range exactly once."""
    forward = direction == "forward"
    flat = [chunk for chunks in series for chunk in chunks]
    if forward:
        flat.sort(key=lambda c: (c.ref.from_ns, c.ref.key))
    else:
        flat.sort(key=lambda c: (-c.ref.through_ns, c.ref.key))
    pending: list[_Chunk] = []
    position = 0
    cursor = from_ns if forward else through_ns
    while position < len(flat):
        # Take at least as many new chunks as are carried: each window re-reads the carried
        # chunks' blocks at its edges, and many streams alive at once would otherwise make
        # windows so short that every block is decompressed in window after window.
        take = max(batch_size, len(pending))
        pending.extend(flat[position : position + take])
        position = min(position + take, len(flat))
        # No unread chunk has entries before its start (forward) or after its end (backward).
        if forward:
            lo = cursor
            hi = min(flat[position].ref.from_ns, through_ns) if position < len(flat) else through_ns
        else:
            lo = (
                max(flat[position].ref.through_ns + 1, from_ns) if position < len(flat) else from_ns
            )
            hi = cursor
        if hi <= lo:
            continue  # the next chunk starts before the cursor: read it in this window too
        live = [c for c in pending if _overlaps(c.ref, lo, hi)]
        if live:
            yield _Window(lo, hi, live)
        cursor = hi if forward else lo
        if forward:
            pending = [c for c in pending if c.ref.through_ns >= cursor]
        else:
            pending = [c for c in pending if c.ref.from_ns < cursor]


def _overlaps(ref: index_reader.ChunkRef, lo: int, hi: int) -> bool:
    return ref.from_ns < hi and ref.through_ns >= lo


def _series_groups(series: list[list[_Chunk]], batch_size: int) -> Iterator[list[list[_Chunk]]]:
    """Consecutive series with at most ``batch_size`` chunks together (a bigger series alone,
    which :func:`_plan` then splits into windows)."""
    group: list[list[_Chunk]] = []
    count = 0
    for chunks in series:
        if group and count + len(chunks) > batch_size:
            yield group
            group, count = [], 0
        group.append(chunks)
        count += len(chunks)
    if group:
        yield group


# Reading (worker thread) ----------------------------------------------------------------------


@contextlib.contextmanager
def _reading(key: str) -> Iterator[None]:
    try:
        yield
    except chunk_block.ChunkCorruptError as error:
        raise CorruptChunkError(key, error) from error


def _decode(window: _Window, decoded: dict[str, chunk_mod.MemChunk]) -> list[chunk_mod.MemChunk]:
    """The window's chunks decoded, keeping in ``decoded`` only those (carried chunks were
    decoded by an earlier window)."""
    live = {chunk.ref.key for chunk in window.live}
    for key in [key for key in decoded if key not in live]:
        del decoded[key]
    for key, data in window.raw.items():
        with _reading(key):
            decoded[key] = chunk_mod.MemChunk.decode(data)
    window.raw = {}
    return [decoded[chunk.ref.key] for chunk in window.live]


def _scan_logs(  # noqa: PLR0917 - one call per window through asyncio.to_thread
    window: _Window,
    decoded: dict[str, chunk_mod.MemChunk],
    pipeline: log_pipeline.Pipeline,
    direction: entries.Direction,
    remaining: int,
    scan: iter_chunks.ScanStats,
) -> tuple[list[entries.Entry], int]:
    """The window's first ``remaining`` entries (0: all) and the duplicates dropped."""
    by_series = _by_series(window, decoded)
    out: list[iter_chunks.ProcessedEntry] = []
    duplicates = 0
    for lo, hi in _steps(by_series, window.lo, window.hi, direction, remaining):
        step: list[iter_chunks.ProcessedEntry] = []
        for members in by_series:
            duplicates += _unique_rows(members, pipeline, lo, hi, direction, scan, step)
        step.sort(key=_TS_LABELS, reverse=direction == "backward")
        out.extend(step)
        if 0 < remaining <= len(out):
            del out[remaining:]
            break
    return [entries.Entry(labels, ts, line) for ts, line, labels in out], duplicates


def _by_series(
    window: _Window, decoded: dict[str, chunk_mod.MemChunk]
) -> list[list[tuple[_Chunk, chunk_mod.MemChunk]]]:
    grouped: dict[int, list[tuple[_Chunk, chunk_mod.MemChunk]]] = {}
    for chunk, mem in zip(window.live, _decode(window, decoded), strict=True):
        grouped.setdefault(chunk.fingerprint, []).append((chunk, mem))
    return list(grouped.values())


def _unique_rows(  # noqa: PLR0917
    members: list[tuple[_Chunk, chunk_mod.MemChunk]],
    pipeline: log_pipeline.Pipeline,
    lo: int,
    hi: int,
    direction: entries.Direction,
    scan: iter_chunks.ScanStats,
    out: list[iter_chunks.ProcessedEntry],
) -> int:
    """Append one series' entries in ``[lo, hi)`` from all its chunks to ``out``, each distinct
    entry once, and return the number of copies dropped.

    This is :func:`lokistack.iter.entries.merge` done in C: a heap merge of sorted sources that
    prefers the earlier source on ties equals a stable sort of their concatenation, and
    dropping repeats of an identical entry equals keeping the first occurrence
    (``dict.fromkeys``). Identity is per series, as Loki's (its dedupe compares entries of one
    stream hash): two streams that a ``drop`` makes look alike are not merged.
    """
    stream = pipeline.for_stream(members[0][0].labels)
    rows: list[iter_chunks.ProcessedEntry] = []
    for chunk, mem in members:
        with _reading(chunk.ref.key):
            rows.extend(iter_chunks.query_chunk(mem, stream, lo, hi, direction, scan))
    if len(members) == 1:
        out.extend(rows)
        return 0
    before = len(out)
    out.extend(dict.fromkeys(rows))
    return len(rows) - (len(out) - before)


def _steps(
    by_series: list[list[tuple[_Chunk, chunk_mod.MemChunk]]],
    lo: int,
    hi: int,
    direction: entries.Direction,
    remaining: int,
) -> Iterator[tuple[int, int]]:
    """``[lo, hi)`` in one step, or for a limited query in steps from the query's start that
    the blocks' entry counts say hold about twice ``remaining`` entries, then four times as
    many each step (filters and replica copies make the estimate low, never the result)."""
    if remaining <= 0:
        yield lo, hi
        return
    forward = direction == "forward"
    target = 2 * remaining
    blocks = [b for members in by_series for _, mem in members for b in mem.blocks]
    while lo < hi:
        # Distances from the step's start: an entry at ts is inside a step of length d when
        # its distance is below d.
        spans = [
            (b.mint - lo, b.maxt + 1 - lo, b.num_entries)
            if forward
            else (hi - 1 - b.maxt, hi - b.mint, b.num_entries)
            for b in blocks
            if b.overlaps(lo, hi)
        ]
        distance = _distance_holding(spans, target, hi - lo)
        if forward:
            yield lo, lo + distance
            lo += distance
        else:
            yield hi - distance, hi
            hi -= distance
        target *= 4


def _distance_holding(spans: list[tuple[int, int, int]], target: int, limit: int) -> int:
    """The shortest distance in ``[1, limit]`` whose prefix holds ``target`` entries, reading
    each ``(start, end, count)`` span as ``count`` entries spread evenly over it."""
    events: list[tuple[int, float]] = []
    for start, end, count in spans:
        rate = count / (end - start)
        events.append((max(start, 0), rate))
        events.append((end, -rate))
    events.sort()
    held = 0.0
    rate = 0.0
    at = 0
    for point, delta in events:
        if point > at:
            if rate > 0 and held + rate * (point - at) >= target:
                return max(1, min(limit, at + math.ceil((target - held) / rate)))
            held += rate * (point - at)
            at = point
        rate += delta
    return limit


def _scan_samples(
    window: _Window,
    decoded: dict[str, chunk_mod.MemChunk],
    pipeline: log_pipeline.Pipeline,
    unwrap: bool,
    scan: iter_chunks.ScanStats,
) -> tuple[list[SampleRow], int]:
    """The window's samples, series by series, and the duplicate entries dropped."""
    rows: list[SampleRow] = []
    duplicates = 0
    lo, hi = window.lo, window.hi
    for members in _by_series(window, decoded):
        if len(members) == 1:
            chunk, mem = members[0]
            stream = pipeline.for_stream(chunk.labels)
            with _reading(chunk.ref.key):
                rows.extend(iter_chunks.chunk_samples(mem, stream, unwrap, lo, hi, scan))
        elif unwrap:
            duplicates += _unwrapped_samples(members, pipeline, lo, hi, scan, rows)
        else:
            found: list[iter_chunks.ProcessedEntry] = []
            duplicates += _unique_rows(members, pipeline, lo, hi, "forward", scan, found)
            found.sort(key=_TS)
            rows.extend((labels, ts, float(_utf8_len(line))) for ts, line, labels in found)
    return rows, duplicates


def _unwrapped_samples(  # noqa: PLR0917
    members: list[tuple[_Chunk, chunk_mod.MemChunk]],
    pipeline: log_pipeline.Pipeline,
    lo: int,
    hi: int,
    scan: iter_chunks.ScanStats,
    rows: list[SampleRow],
) -> int:
    """Append one series' unwrapped samples to ``rows`` in time order, de-duplicating the
    stored entries first (a sample carries no line to tell copies from distinct lines);
    returns the copies dropped."""
    stored: list[chunk_block.Entry] = []
    for chunk, mem in members:
        with _reading(chunk.ref.key):
            stored.extend(mem.iterate(lo, hi))
    unique = list(dict.fromkeys(stored))
    unique.sort(key=_TS)
    scan.lines += len(stored)
    scan.bytes += sum(len(line) for _, line, _ in stored)
    extract = pipeline.for_stream(members[0][0].labels).extract_sample
    before = len(rows)
    for ts, line, metadata in unique:
        sample = extract(ts, line, metadata)
        if sample is not None:
            rows.append((sample[1], ts, sample[0]))
    scan.post_filter_lines += len(rows) - before
    return len(stored) - len(unique)


def _utf8_len(line: str) -> int:
    return len(line) if line.isascii() else len(line.encode("utf-8", "surrogateescape"))


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
