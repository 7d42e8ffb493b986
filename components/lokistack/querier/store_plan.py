"""Planning a store query's reads: chunk refs into time *windows* (pure, no I/O).

Loki's batch iterator (reference §3.5): chunk refs are sorted for the direction (by start
forward, by end descending backward) and a window takes the next ``batch_size`` chunks and ends
where the next unread chunk could begin to contribute (its start forward, its end backward), so
every entry of a window is final and the windows come out in global order. A chunk that spans
several windows is carried into each of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from lokistack.iter import entries
from lokistack.model import labels as model_labels
from lokistack.storage import index_reader


@dataclasses.dataclass(frozen=True, slots=True)
class Chunk:
    ref: index_reader.ChunkRef
    fingerprint: int
    labels: model_labels.Labels


@dataclasses.dataclass(slots=True)
class Window:
    """``[lo, hi)`` and the chunks overlapping it; ``raw`` holds those not read before."""

    lo: int
    hi: int
    live: list[Chunk]
    raw: dict[str, bytes] = dataclasses.field(default_factory=dict)


def plan(
    series: Iterable[list[Chunk]],
    from_ns: int,
    through_ns: int,
    direction: entries.Direction,
    batch_size: int,
) -> Iterator[Window]:
    """Windows over ``[from_ns, through_ns)`` in ``direction`` order, each with the chunks that
    overlap it; together they cover every chunk's entries in the range exactly once."""
    forward = direction == "forward"
    flat = [chunk for chunks in series for chunk in chunks]
    if forward:
        flat.sort(key=lambda c: (c.ref.from_ns, c.ref.key))
    else:
        flat.sort(key=lambda c: (-c.ref.through_ns, c.ref.key))
    pending: list[Chunk] = []
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
        live = [c for c in pending if overlaps(c.ref, lo, hi)]
        if live:
            yield Window(lo, hi, live)
        cursor = hi if forward else lo
        if forward:
            pending = [c for c in pending if c.ref.through_ns >= cursor]
        else:
            pending = [c for c in pending if c.ref.from_ns < cursor]


def overlaps(ref: index_reader.ChunkRef, lo: int, hi: int) -> bool:
    return ref.from_ns < hi and ref.through_ns >= lo


def series_groups(series: list[list[Chunk]], batch_size: int) -> Iterator[list[list[Chunk]]]:
    """Consecutive series with at most ``batch_size`` chunks together (a bigger series alone,
    which :func:`plan` then splits into windows)."""
    group: list[list[Chunk]] = []
    count = 0
    for chunks in series:
        if group and count + len(chunks) > batch_size:
            yield group
            group, count = [], 0
        group.append(chunks)
        count += len(chunks)
    if group:
        yield group
