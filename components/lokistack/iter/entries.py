"""Merging log entries from many sources in query order, without replica duplicates.

A query reads the same stream from up to replication-factor ingesters and from chunks in the
object store, which overlap in time. Every source yields one stream's entries ordered by
timestamp in the query's direction; the merge takes them from a heap keyed by (timestamp,
labels), so the result is in order across streams, and drops an entry identical to one already
emitted (same stream, timestamp, line and structured metadata). Entries with the same timestamp
in one stream can arrive in different orders from different replicas, so duplicates are detected
over each run of equal (timestamp, labels), not only between neighbours.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from typing import Literal, NamedTuple

from lokistack.model import labels as model_labels

Direction = Literal["forward", "backward"]
Metadata = tuple[tuple[str, str], ...]


class Entry(NamedTuple):
    """One log entry of one stream: after a query's pipeline, ``labels`` is the entry's full
    label set (stream labels, structured metadata, parsed labels) and ``metadata`` is empty."""

    labels: model_labels.Labels
    ts: int
    line: str
    metadata: Metadata = ()


def merge(sources: Iterable[Iterator[Entry]], direction: Direction) -> Iterator[Entry]:
    """All entries of ``sources`` in ``direction`` order, each distinct entry once.

    Each source must already be ordered by timestamp in ``direction``.
    """
    backward = direction == "backward"
    merged = heapq.merge(*sources, key=_order_key, reverse=backward)
    run_key: tuple[int, model_labels.Labels] | None = None
    seen: set[tuple[str, Metadata]] = set()
    for entry in merged:
        key = (entry.ts, entry.labels)
        if key != run_key:
            run_key = key
            seen.clear()
        identity = (entry.line, entry.metadata)
        if identity in seen:
            continue
        seen.add(identity)
        yield entry


def _order_key(entry: Entry) -> tuple[int, model_labels.Labels]:
    return (entry.ts, entry.labels)


def take(entries: Iterator[Entry], limit: int) -> list[Entry]:
    """The first ``limit`` entries (0 means no limit), as a query's ``limit`` cuts its result."""
    if limit <= 0:
        return list(entries)
    taken: list[Entry] = []
    for entry in entries:
        taken.append(entry)
        if len(taken) >= limit:
            break
    return taken
