"""Reading one window's chunks, in a worker thread: decoding, the pipeline, replica copies.

With replication factor 3 each stream is flushed up to three times, cut at different points, so
a series' chunks overlap and each entry is read up to three times. The copies are dropped per
series with the rule of :func:`lokistack.iter.entries.merge` (identical timestamp, line and
labels), done with a dict and a stable sort instead of a Python-level heap. A chunk that fails
to decode raises :class:`CorruptChunkError` naming its key: silently skipping it would return
wrong results.
"""

from __future__ import annotations

import contextlib
import math
import operator
from collections.abc import Iterator
from typing import Final

from lokistack.chunk import block as chunk_block
from lokistack.chunk import chunk as chunk_mod
from lokistack.iter import chunks as iter_chunks
from lokistack.iter import entries
from lokistack.logql.log import pipeline as log_pipeline
from lokistack.querier import store_plan

SampleRow = iter_chunks.SampleRow
Member = tuple[store_plan.Chunk, chunk_mod.MemChunk]
"""One chunk of a series in a window, with its decoded form."""

_TS: Final = operator.itemgetter(0)
_TS_LABELS: Final = operator.itemgetter(0, 2)  # (ts, labels) of a ProcessedEntry: merge order


class CorruptChunkError(RuntimeError):
    """A stored chunk that does not decode; the query fails (a server error, not a 4xx)."""

    def __init__(self, key: str, cause: Exception) -> None:
        super().__init__(f"chunk {key} is corrupt: {cause}")
        self.key = key


@contextlib.contextmanager
def _reading(key: str) -> Iterator[None]:
    try:
        yield
    except chunk_block.ChunkCorruptError as error:
        raise CorruptChunkError(key, error) from error


def _decode(
    window: store_plan.Window, decoded: dict[str, chunk_mod.MemChunk]
) -> list[chunk_mod.MemChunk]:
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


def scan_logs(  # noqa: PLR0917 - one call per window through asyncio.to_thread
    window: store_plan.Window,
    decoded: dict[str, chunk_mod.MemChunk],
    pipeline: log_pipeline.Pipeline,
    direction: entries.Direction,
    remaining: int,
    scan: iter_chunks.ScanStats,
) -> tuple[list[entries.Entry], int]:
    """The window's first ``remaining`` entries (0: all) and the duplicates dropped."""
    groups = _copy_groups(window, decoded)
    out: list[iter_chunks.ProcessedEntry] = []
    duplicates = 0
    for lo, hi in _steps(groups, window.lo, window.hi, direction, remaining):
        step: list[iter_chunks.ProcessedEntry] = []
        for members in groups:
            duplicates += _unique_rows(members, pipeline, lo, hi, direction, scan, step)
        step.sort(key=_TS_LABELS, reverse=direction == "backward")
        out.extend(step)
        if 0 < remaining <= len(out):
            del out[remaining:]
            break
    return [entries.Entry(labels, ts, line) for ts, line, labels in out], duplicates


def _copy_groups(
    window: store_plan.Window, decoded: dict[str, chunk_mod.MemChunk]
) -> list[list[Member]]:
    """The window's chunks as groups that may hold copies of each other: per series, the runs of
    chunks whose time ranges overlap, in time order, each keeping the window's chunk order.

    Only chunks of one series that share a timestamp can hold the same entry, so a chunk that
    overlaps no other (every chunk at replication factor 1, and most of a day-long query's
    chunks) forms a group of its own and is read without the dict and the sort that drop copies.
    The window's order (by start forward, by end backward) is what breaks ties between entries
    that share a timestamp, so a group keeps it.
    """
    by_series: dict[int, list[Member]] = {}
    for chunk, mem in zip(window.live, _decode(window, decoded), strict=True):
        by_series.setdefault(chunk.fingerprint, []).append((chunk, mem))
    groups: list[list[Member]] = []
    for members in by_series.values():
        if len(members) == 1:
            groups.append(members)
            continue
        group_of = [0] * len(members)
        group, end = -1, 0
        for index in sorted(range(len(members)), key=lambda i: members[i][0].ref.from_ns):
            ref = members[index][0].ref
            if group < 0 or ref.from_ns > end:
                group, end = group + 1, ref.through_ns
            else:
                end = max(end, ref.through_ns)
            group_of[index] = group
        runs: list[list[Member]] = [[] for _ in range(group + 1)]
        for index, member in enumerate(members):
            runs[group_of[index]].append(member)
        groups.extend(runs)
    return groups


def _unique_rows(  # noqa: PLR0917
    members: list[Member],
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
    groups: list[list[Member]],
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
    blocks = [b for members in groups for _, mem in members for b in mem.blocks]
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


def scan_samples(
    window: store_plan.Window,
    decoded: dict[str, chunk_mod.MemChunk],
    pipeline: log_pipeline.Pipeline,
    unwrap: bool,
    scan: iter_chunks.ScanStats,
) -> tuple[list[SampleRow], int]:
    """The window's samples, series by series, and the duplicate entries dropped."""
    rows: list[SampleRow] = []
    duplicates = 0
    lo, hi = window.lo, window.hi
    for members in _copy_groups(window, decoded):
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
    members: list[Member],
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
