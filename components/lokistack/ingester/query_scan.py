"""Reading the ingester's in-memory streams for a query: which streams match, which of their
chunks overlap the range, and their entries or samples in order, in response-sized batches.

Every chunk of a matching stream that overlaps the range is read, flushed or not (flushed
chunks stay in memory until their retain period ends), through the same per-chunk pipeline
code as the store path (:mod:`lokistack.iter.chunks`). A query must not stall pushes, which run
on the same event loop, so a log query reads about one block per stream at a time and returns
to the loop between reads: the k-way merge of streams here is asynchronous, unlike
:func:`lokistack.iter.entries.merge`, whose lazy sources could only read their next chunk
without yielding. Its order is the same, ``(timestamp, labels)`` in the query's direction, which
is what the querier's merge and replica de-duplication rely on; de-duplication itself happens
once, in the querier.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

from lokistack.chunk import chunk as chunk_mod
from lokistack.ingester import instance as tenant_instance
from lokistack.ingester import stream as stream_mod
from lokistack.iter import chunks as chunk_iter
from lokistack.iter import entries
from lokistack.logql.log import pipeline as log_pipeline
from lokistack.logql.syntax import ast
from lokistack.model import labels as model_labels
from lokistack.proto import push_pb2, querier_pb2

ENTRIES_PER_RESPONSE = 1000
SAMPLES_PER_RESPONSE = 10_000

Labels = model_labels.Labels
Row = chunk_iter.ProcessedEntry


# Stream selection -------------------------------------------------------------------------


class LabelCache:
    """Parsed label tuples of streams by fingerprint, checked against the label string (a
    fingerprint is a hash) and rebuilt from the live streams when removed ones pile up."""

    def __init__(self) -> None:
        self._parsed: dict[int, tuple[str, Labels]] = {}

    def get(self, stream: stream_mod.Stream) -> Labels:
        hit = self._parsed.get(stream.fingerprint)
        if hit is not None and hit[0] == stream.labels:
            return hit[1]
        parsed = model_labels.parse_labels(stream.labels)
        self._parsed[stream.fingerprint] = (stream.labels, parsed)
        return parsed

    def prune(self, instances: Iterable[tenant_instance.TenantInstance]) -> None:
        live = {fp: s for i in instances for fp, s in i.streams.items()}
        if len(self._parsed) > 2 * len(live) + 1024:
            self._parsed = {
                fp: hit
                for fp, hit in self._parsed.items()
                if fp in live and live[fp].labels == hit[0]
            }


def matches(matchers: Sequence[ast.Matcher], labels: Labels) -> bool:
    values = dict(labels)
    return all(m.matches(values.get(m.name, "")) for m in matchers)


class Selector:
    """Finds the streams of ``instances`` (tenant -> instance, read live) that a query's
    matchers select, and keeps their parsed labels in :attr:`labels` (shared with the tails)."""

    def __init__(self, instances: Mapping[str, tenant_instance.TenantInstance]) -> None:
        self._instances = instances
        self.labels = LabelCache()
        self._selections = 0

    def select(
        self, tenant: str, matchers: Sequence[ast.Matcher]
    ) -> list[tuple[stream_mod.Stream, Labels]]:
        """The tenant's streams matching every matcher, with their parsed labels.

        Postings of ``name="value"`` matchers (non-empty value) narrow the candidates; every
        other matcher is then checked on each candidate's labels.
        """
        instance = self._instances.get(tenant)
        if instance is None:
            return []
        self._selections += 1
        if self._selections % 256 == 0:
            self.labels.prune(list(self._instances.values()))
        indexed = [m for m in matchers if m.op is ast.MatchOp.EQ and m.value]
        rest = [m for m in matchers if not (m.op is ast.MatchOp.EQ and m.value)]
        if indexed:
            postings = [instance.postings.get(m.name, {}).get(m.value, set()) for m in indexed]
            postings.sort(key=len)
            fingerprints = set(postings[0]).intersection(*postings[1:])
            candidates = [instance.streams[fp] for fp in fingerprints if fp in instance.streams]
        else:
            candidates = list(instance.streams.values())
        selected: list[tuple[stream_mod.Stream, Labels]] = []
        for stream in candidates:
            labels = self.labels.get(stream)
            if not rest or matches(rest, labels):
                selected.append((stream, labels))
        return selected


def touches(stream: stream_mod.Stream, from_ns: int, through_ns: int) -> bool:
    """Whether the stream has an entry in ``[from_ns, through_ns)``."""
    return any(
        desc.chunk.num_entries and desc.chunk.mint < through_ns and desc.chunk.maxt >= from_ns
        for desc in list(stream.chunks)
    )


def overlapping(
    stream: stream_mod.Stream, from_ns: int, through_ns: int
) -> list[chunk_mod.MemChunk]:
    """The stream's non-empty chunks with an entry in ``[from_ns, through_ns)``, by mint."""
    found = [
        desc.chunk
        for desc in list(stream.chunks)
        if desc.chunk.num_entries and desc.chunk.mint < through_ns and desc.chunk.maxt >= from_ns
    ]
    found.sort(key=lambda c: c.mint)
    return found


# Log queries: per-stream scans and their merge ----------------------------------------------


def _chunk_groups(chunks: list[chunk_mod.MemChunk]) -> list[list[chunk_mod.MemChunk]]:
    """Chunks (sorted by mint) grouped where their spans touch: out-of-order writes can make a
    new chunk start before the previous one ends, and such chunks must be read together."""
    groups: list[list[chunk_mod.MemChunk]] = []
    group_maxt = 0
    for chunk in chunks:
        if groups and chunk.mint <= group_maxt:
            groups[-1].append(chunk)
            group_maxt = max(group_maxt, chunk.maxt)
        else:
            groups.append([chunk])
            group_maxt = chunk.maxt
    return groups


_Work = tuple[list[chunk_mod.MemChunk], int, int, bool]
"""A piece of a stream's scan: chunks, the time window to read from them, and whether it is
the first window of those chunks (which then count as matched)."""


def _windows(chunks: list[chunk_mod.MemChunk], from_ns: int, through_ns: int) -> list[_Work]:
    """The scan of one stream cut into pieces of about one block each, in forward order.

    A group of chunks whose blocks (and heads) do not overlap is cut at each block's first
    timestamp, so a query holds one block's entries per stream at a time, not a whole chunk's.
    Blocks that overlap (out-of-order writes) are read together, in one piece.
    """
    work: list[_Work] = []
    for group in _chunk_groups(chunks):
        spans = [(b.mint, b.maxt) for c in group for b in c.blocks]
        spans += [(c.head.mint, c.head.maxt) for c in group if len(c.head)]
        spans.sort()
        if any(a[1] > b[0] for a, b in itertools.pairwise(spans)):
            work.append((group, from_ns, through_ns, True))
            continue
        cuts = [mint for mint, _ in spans[1:] if from_ns < mint < through_ns]
        edges = [from_ns, *sorted(set(cuts)), through_ns]
        work.extend(
            (group, low, high, index == 0)
            for index, (low, high) in enumerate(itertools.pairwise(edges))
        )
    return work


@dataclasses.dataclass(slots=True)
class Progress:
    """What a query has read so far, for its statistics."""

    stats: chunk_iter.ScanStats = dataclasses.field(default_factory=chunk_iter.ScanStats)
    chunks: int = 0


class _Descending:
    """Labels ordered backwards, for the heap of a backward merge."""

    __slots__ = ("labels",)

    def __init__(self, labels: Labels) -> None:
        self.labels = labels

    def __lt__(self, other: _Descending) -> bool:
        return other.labels < self.labels

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and other.labels == self.labels

    __hash__ = None  # type: ignore[assignment]


class StreamScan:
    """One stream's entries in ``(ts, labels)`` order of the direction, one piece (see
    :func:`_windows`) at a time. Entries pushed into a chunk after the scan passed their time
    are left out, so the order holds even while pushes continue between reads."""

    def __init__(
        self,
        stream: log_pipeline.StreamPipeline,
        chunks: list[chunk_mod.MemChunk],
        *,
        from_ns: int,
        through_ns: int,
        backward: bool,
        progress: Progress,
    ) -> None:
        self._stream = stream
        self._work = _windows(chunks, from_ns, through_ns)
        if not backward:
            self._work.reverse()  # popped from the end
        self._backward = backward
        self._progress = progress
        self._last: tuple[int, Labels] | None = None
        self.rows: list[Row] = []
        self.position = 0

    @property
    def exhausted(self) -> bool:
        return not self._work

    def read_next(self) -> None:
        """Replace ``rows`` by the next piece's entries (possibly none)."""
        group, from_ns, through_ns, first = self._work.pop()
        stats = self._progress.stats
        rows: list[Row] = []
        for chunk in group:
            rows.extend(
                chunk_iter.query_chunk(chunk, self._stream, from_ns, through_ns, "forward", stats)
            )
        if first:
            self._progress.chunks += len(group)
        if rows:
            labels = rows[0][2]
            if any(row[2] != labels for row in rows):
                rows.sort(key=lambda row: (row[0], row[2]))
            elif len(group) > 1:
                rows.sort(key=lambda row: row[0])
            if self._backward:
                rows.reverse()
            rows = self._after_last(rows)
        self.rows, self.position = rows, 0

    def _after_last(self, rows: list[Row]) -> list[Row]:
        last = self._last
        if last is not None:
            skip = 0
            for ts, _line, labels in rows:
                key = (ts, labels)
                if (key > last) if self._backward else (key < last):
                    skip += 1
                else:
                    break
            rows = rows[skip:]
        if rows:
            self._last = (rows[-1][0], rows[-1][2])
        return rows


def stream_scans(
    selected: Iterable[tuple[stream_mod.Stream, Labels]],
    pipeline: log_pipeline.Pipeline,
    *,
    from_ns: int,
    through_ns: int,
    backward: bool,
    progress: Progress,
) -> list[StreamScan]:
    """A scan of each selected stream with a chunk overlapping ``[from_ns, through_ns)``."""
    return [
        StreamScan(
            pipeline.for_stream(labels),
            chunks,
            from_ns=from_ns,
            through_ns=through_ns,
            backward=backward,
            progress=progress,
        )
        for stream, labels in selected
        if (chunks := overlapping(stream, from_ns, through_ns))
    ]


async def merge_scans(
    scans: list[StreamScan], backward: bool, limit: int
) -> AsyncIterator[list[entries.Entry]]:
    """The scans' entries merged in direction order, in lists of up to ENTRIES_PER_RESPONSE,
    cut at ``limit`` (0: none); returns to the event loop after every piece read."""
    heap: list[tuple[Any, ...]] = []

    def push(index: int, scan: StreamScan) -> None:
        ts, labels = scan.rows[scan.position][0], scan.rows[scan.position][2]
        key: tuple[Any, ...] = (-ts, _Descending(labels)) if backward else (ts, labels)
        heapq.heappush(heap, (*key, index))

    for index, scan in enumerate(scans):
        while not scan.rows and not scan.exhausted:
            scan.read_next()
            await asyncio.sleep(0)
        if scan.rows:
            push(index, scan)
    sent = 0
    batch: list[entries.Entry] = []
    while heap:
        index = heapq.heappop(heap)[-1]
        scan = scans[index]
        ts, line, labels = scan.rows[scan.position]
        batch.append(entries.Entry(labels, ts, line))
        sent += 1
        if limit and sent >= limit:
            break
        scan.position += 1
        if scan.position == len(scan.rows):
            scan.rows = []
            while not scan.rows and not scan.exhausted:
                scan.read_next()
                await asyncio.sleep(0)
        if scan.rows:
            push(index, scan)
        if len(batch) >= ENTRIES_PER_RESPONSE:
            yield batch
            batch = []
    if batch:
        yield batch


# Sample queries -------------------------------------------------------------------------------


def _sorted_series(ts: list[int], values: list[float]) -> tuple[list[int], list[float]]:
    if ts == sorted(ts):
        return ts, values
    order = sorted(range(len(ts)), key=ts.__getitem__)
    return [ts[i] for i in order], [values[i] for i in order]


async def sample_batches(
    selected: Iterable[tuple[stream_mod.Stream, Labels]],
    pipeline: log_pipeline.Pipeline,
    *,
    unwrap: bool,
    from_ns: int,
    through_ns: int,
    progress: Progress,
) -> AsyncIterator[list[querier_pb2.SampleBatch]]:
    """The samples of the selected streams, one batch per series (in time order), a stream at
    a time, in lists of at least SAMPLES_PER_RESPONSE samples but the last (never empty);
    returns to the event loop after every chunk read."""
    batches: list[querier_pb2.SampleBatch] = []
    pending = 0
    for stream, labels in selected:
        chunks = overlapping(stream, from_ns, through_ns)
        if not chunks:
            continue
        stream_pipeline = pipeline.for_stream(labels)
        series: dict[Labels, tuple[list[int], list[float]]] = {}
        for chunk in chunks:
            rows = chunk_iter.chunk_samples(
                chunk, stream_pipeline, unwrap, from_ns, through_ns, progress.stats
            )
            progress.chunks += 1
            for sample_labels, ts, value in rows:
                found = series.get(sample_labels)
                if found is None:
                    found = series[sample_labels] = ([], [])
                found[0].append(ts)
                found[1].append(value)
            await asyncio.sleep(0)
        for sample_labels, unsorted in series.items():
            ts_list, values = _sorted_series(*unsorted)
            batches.append(
                querier_pb2.SampleBatch(
                    labels=label_pairs(sample_labels), timestamps=ts_list, values=values
                )
            )
            pending += len(ts_list)
        if pending >= SAMPLES_PER_RESPONSE:
            yield batches
            batches, pending = [], 0
    if batches:
        yield batches


# Wire batches ---------------------------------------------------------------------------------


def label_pairs(labels: Labels) -> list[push_pb2.LabelPairAdapter]:
    return [push_pb2.LabelPairAdapter(name=name, value=value) for name, value in labels]


def entry_batches(rows: Sequence[entries.Entry]) -> list[querier_pb2.EntryBatch]:
    """Runs of consecutive entries with the same label set, one batch each, in order
    (docs/format/querier.md: reading batches and entries in sequence gives the result)."""
    batches: list[querier_pb2.EntryBatch] = []
    for labels, run in itertools.groupby(rows, key=lambda entry: entry.labels):
        ts_list: list[int] = []
        lines: list[str] = []
        for entry in run:
            ts_list.append(entry.ts)
            lines.append(entry.line)
        batches.append(
            querier_pb2.EntryBatch(labels=label_pairs(labels), timestamps=ts_list, lines=lines)
        )
    return batches
