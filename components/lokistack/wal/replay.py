"""Replay: the newest checkpoint's streams, then every segment written after it, in order.

Replay is a lazy iterator, so the ingester can stop between records and flush chunks when it
reaches its memory ceiling, then carry on. Damage never stops a replay. A bad frame ends the
reading of its segment: it is counted, logged, and the final segment's tail is truncated there, as
``WAL.open()`` would. Replay then continues, because later segments still hold acknowledged pushes.

Entries that the checkpoint already holds are dropped here by their stream counters
(docs/format/wal.md "Duplicates"). The ingester can apply everything replay yields as it is.
Replay modifies files, so it runs before ``WAL.open()``, never while the WAL is being written.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import time
from collections.abc import Iterator

import prometheus_client

from lokistack.wal import checkpoint, record, segment

REPLAY_DURATION = prometheus_client.Gauge(
    "loki_ingester_wal_replay_duration_seconds", "Time taken to replay the checkpoint and the WAL."
)
DUPLICATE_ENTRIES = prometheus_client.Counter(
    "loki_ingester_wal_duplicate_entries_total",
    "Entries discarded during WAL replay because the checkpoint already held them.",
)
RECOVERED_ENTRIES = prometheus_client.Counter(
    "loki_ingester_wal_recovered_entries_total", "Total number of entries recovered from the WAL."
)

_log = logging.getLogger(__name__)


@dataclasses.dataclass
class ReplayStats:
    """What a replay read; complete once its iterator is exhausted."""

    checkpoint: int | None = None  # the covered segment of the checkpoint used
    segments: int = 0
    records: int = 0
    entries: int = 0
    bytes: int = 0
    corruptions: int = 0
    duplicate_entries: int = 0
    seconds: float = 0.0


class Replay(Iterator[record.Record]):
    """An iterator over the records to re-apply, with ``stats`` filled in as it goes."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.directory = pathlib.Path(directory)
        self.stats = ReplayStats()
        self._entry_counts: dict[tuple[str, int], int] = {}
        self._dedup_through = -1
        self._records = self._generate()

    def __next__(self) -> record.Record:
        return next(self._records)

    def _generate(self) -> Iterator[record.Record]:
        started = time.perf_counter()
        first, dedup_through = 0, -1
        newest = checkpoint.latest(self.directory)
        if newest is not None:
            yield from self._checkpoint(newest)
            first = newest.covers_segment + 1
            dedup_through = self._dedup_through
        numbers = [n for n in segment.list_segments(self.directory) if n >= first]
        if numbers and numbers != list(range(numbers[0], numbers[-1] + 1)):
            _log.warning("WAL segments are not contiguous: %s", numbers)
        for number in numbers:
            yield from self._segment(number, number <= dedup_through, number == numbers[-1])
        self.stats.seconds = time.perf_counter() - started
        REPLAY_DURATION.set(self.stats.seconds)
        RECOVERED_ENTRIES.inc(self.stats.entries)
        stats = self.stats
        _log.info(
            "WAL replay finished: %d records, %d entries, %d bytes in %.2fs (%d corruptions)",
            stats.records,
            stats.entries,
            stats.bytes,
            stats.seconds,
            stats.corruptions,
            extra=dataclasses.asdict(stats),
        )

    def _checkpoint(self, newest: checkpoint.Checkpoint) -> Iterator[record.Record]:
        self.stats.checkpoint = newest.covers_segment
        reader = checkpoint.CheckpointReader(newest)
        for item in reader:
            if item.entry_count:
                self._entry_counts[item.tenant, item.fingerprint] = item.entry_count
            self.stats.records += 1
            yield item
        self.stats.bytes += reader.bytes
        self.stats.corruptions += reader.corruptions
        # Without the end record, de-duplicate only where duplicates are near certain.
        live = reader.live_segment
        self._dedup_through = newest.covers_segment + 1 if live is None else live

    def _segment(self, number: int, dedup: bool, final: bool) -> Iterator[record.Record]:
        path = self.directory / segment.segment_name(number)
        reader = segment.SegmentReader(path)
        stats = self.stats
        stats.segments += 1
        for frame in reader:
            stats.bytes += frame.size
            for logged in frame.records:
                item = self._without_duplicates(logged) if dedup else logged
                if item is None:
                    continue
                if isinstance(item, record.EntriesRecord):
                    stats.entries += len(item)
                stats.records += 1
                yield item
        if reader.corruption is not None:
            stats.corruptions += 1
            segment.CORRUPTIONS.labels("segment").inc()
            lost = reader.file_size - reader.valid_size
            damage = segment.Damage(path, reader.corruption, reader.valid_size, lost)
            if final:
                segment.truncate(damage)
            else:
                _log.error(
                    "WAL segment %s is damaged at offset %d (%s): %d bytes skipped",
                    path,
                    damage.offset,
                    damage.kind,
                    lost,
                )

    def _without_duplicates(self, item: record.Record) -> record.Record | None:
        """Drop the entries numbered at or below the checkpoint's count for this stream."""
        if not isinstance(item, record.EntriesRecord) or not item.counter:
            return item
        checkpointed = self._entry_counts.get((item.tenant, item.fingerprint))
        if checkpointed is None:
            return item
        first_number = item.counter - len(item) + 1
        if first_number > checkpointed:
            return item
        duplicates = min(len(item), checkpointed - first_number + 1)
        self.stats.duplicate_entries += duplicates
        DUPLICATE_ENTRIES.inc(duplicates)
        return None if duplicates == len(item) else item.drop_first(duplicates)


def replay(dir: pathlib.Path) -> Replay:
    """Records to re-apply after a restart: the newest checkpoint's, then later segments'."""
    return Replay(pathlib.Path(dir))
