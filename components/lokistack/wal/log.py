"""The appending WAL: one frame per push, rotation, group-commit fsync and write-failure handling.

``log()`` encodes the push's records into one frame and writes it inline. That is a single
``pwritev`` into the page cache, tens of microseconds for a typical push, and it keeps frames in
call order without a lock. Once written, the push survives a kill of the process. Surviving a
power loss needs an fsync, which takes milliseconds and would block the event loop. So fsyncs run
in a thread, in one background task that serves every caller:

- in ``group`` mode the task fsyncs every ``fsync_period`` and soon after each rotation, and
  ``log()`` returns as soon as its write has returned;
- in ``always`` mode ``log()`` waits for the first fsync that starts after its write. Callers
  arriving while an fsync is running are all covered by the next one (group commit), so the fsync
  rate follows the disk, not the push rate.

A failed write raises ``WALWriteError``. The segment is rolled back to the frame boundary (or
abandoned for a new one), so the WAL stays readable and usable once space is freed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import errno
import logging
import pathlib
from collections.abc import Sequence
from typing import Literal, NoReturn

import prometheus_client

from lokistack import fileutil
from lokistack.wal import checkpoint, record, segment

FsyncMode = Literal["group", "always"]

RECORDS_LOGGED = prometheus_client.Counter(
    "loki_ingester_wal_records_logged_total", "Total number of WAL records logged."
)
BYTES_LOGGED = prometheus_client.Counter(
    "loki_ingester_wal_logged_bytes_total", "Total number of bytes written to the WAL."
)
DISK_FULL_FAILURES = prometheus_client.Counter(
    "loki_ingester_wal_disk_full_failures_total",
    "Total number of WAL writes that failed because the disk was full.",
)
WRITE_FAILURES = prometheus_client.Counter(
    "lokistack_ingester_wal_write_failures_total",
    "Total number of WAL writes or fsyncs that failed, whatever the reason.",
)
FSYNCS = prometheus_client.Counter(
    "lokistack_ingester_wal_fsyncs_total", "Total number of fsync calls on WAL segment files."
)

_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

_log = logging.getLogger(__name__)


class WALWriteError(Exception):
    """A push could not be made durable in the WAL; the ingester answers it with a 5xx."""


class WAL:
    """The ingester's write-ahead log in ``dir`` (see docs/format/wal.md)."""

    def __init__(
        self,
        dir: pathlib.Path,
        segment_size: int,
        fsync: FsyncMode,
        fsync_period: datetime.timedelta,
    ) -> None:
        self.dir = pathlib.Path(dir)
        self.segment_size = segment_size
        self.fsync = fsync
        self.fsync_period = fsync_period
        self.sync_rounds = 0  # completed fsync rounds: tests check group commit with it
        self._writer: segment.SegmentWriter | None = None
        self._retiring: list[segment.SegmentWriter] = []  # rotated out, to fsync and close
        self._written = 0  # bytes logged since open(): a position in the whole log
        self._durable = 0  # every byte before this position has been fsynced
        self._directory_dirty = False
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._sync_task: asyncio.Task[None] | None = None
        self._failed_writes = 0  # in the current burst of failures; logged once per burst

    @property
    def current_segment(self) -> int:
        """The number of the segment being appended to."""
        if self._writer is None:
            raise RuntimeError("the WAL is not open")
        return self._writer.number

    def segments(self) -> list[int]:
        """Numbers of the segment files on disk, ascending."""
        return segment.list_segments(self.dir)

    async def open(self) -> None:
        """Create the directory, repair the last segment's tail and start a new segment.

        Also removes ``checkpoint.*.tmp`` directories an interrupted checkpoint left behind.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        checkpoint.cleanup_stale(self.dir)
        existing = self.segments()
        if existing:
            last = self.dir / segment.segment_name(existing[-1])
            await asyncio.to_thread(segment.repair, last)
        newest = checkpoint.latest(self.dir)
        candidates = [-1, *existing[-1:], *([newest.covers_segment] if newest else [])]
        self._writer = segment.SegmentWriter.create(self.dir, max(candidates) + 1)
        self._directory_dirty = True
        self._stopping = False
        self._sync_task = asyncio.create_task(self._sync_loop(), name="wal-fsync")

    async def close(self) -> None:
        """Stop accepting writes, fsync everything written and close the files."""
        if self._writer is None:
            return
        self._stopping = True
        self._wake.set()
        if self._sync_task is not None:
            await self._sync_task
            self._sync_task = None
        await self._sync_once()
        self._writer.close()
        self._writer = None

    async def log(self, records: Sequence[record.Record]) -> None:
        """Write ``records`` as one frame (all or nothing); in ``always`` mode, also fsync it."""
        if not records:
            return  # an empty frame would read back as invalid
        position = self._append(record.encode_batch(records), len(records))
        if self.fsync == "always" and position > self._durable:
            future = asyncio.get_running_loop().create_future()
            self._waiters.append((position, future))
            self._wake.set()
            await future

    def rotate(self) -> int:
        """Start a new segment now; return the number of the one closed (a checkpoint covers it)."""
        writer = self._open_writer()
        closed = writer.number
        try:
            self._rotate(writer)
        except OSError as error:
            self._failed(error, writer.path)
        return closed

    def _open_writer(self) -> segment.SegmentWriter:
        if self._writer is None or self._stopping:
            raise WALWriteError("the WAL is closed")
        return self._writer

    def _append(self, payload: bytes, count: int) -> int:
        writer = self._open_writer()
        frame_size = segment.FRAME_HEADER.size + len(payload)
        try:
            if writer.broken or (
                writer.size > len(segment.MAGIC) and writer.size + frame_size > self.segment_size
            ):
                writer = self._rotate(writer)
            writer.append(payload)
        except OSError as error:
            self._failed(error, writer.path)
        self._written += frame_size
        RECORDS_LOGGED.inc(count)
        BYTES_LOGGED.inc(frame_size)
        if self._failed_writes:
            _log.info("WAL writes succeed again after %d failures", self._failed_writes)
            self._failed_writes = 0
        return self._written

    def _rotate(self, writer: segment.SegmentWriter) -> segment.SegmentWriter:
        new = segment.SegmentWriter.create(self.dir, writer.number + 1)
        self._retiring.append(writer)
        self._writer = new
        self._directory_dirty = True
        self._wake.set()  # fsync and close the old segment soon, in either mode
        return new

    def _failed(self, error: OSError, path: pathlib.Path) -> NoReturn:
        WRITE_FAILURES.inc()
        disk_full = error.errno in _DISK_FULL_ERRNOS
        if disk_full:
            DISK_FULL_FAILURES.inc()
        if not self._failed_writes:
            _log.error(
                "WAL write to %s failed%s: %s; pushes fail until it succeeds again",
                path,
                " (disk full)" if disk_full else "",
                error,
            )
        self._failed_writes += 1
        reason = "disk full" if disk_full else "I/O error"
        raise WALWriteError(f"cannot write to the WAL at {path} ({reason}): {error}") from error

    async def _sync_loop(self) -> None:
        period = self.fsync_period.total_seconds()
        while True:
            if self.fsync == "always":
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), period)
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self._sync_once()
            except Exception:  # never let the syncer die: waiters would hang
                _log.exception("unexpected error in the WAL fsync task")

    async def _sync_once(self) -> None:
        """One round: fsync the retiring and current segments (and the directory) in a thread."""
        writer = self._writer
        if writer is None:
            return
        target = self._written
        if target == self._durable and not self._retiring and not self._directory_dirty:
            return
        retiring, self._retiring = self._retiring, []
        writers = [*retiring, writer]
        directory_dirty, self._directory_dirty = self._directory_dirty, False
        error: OSError | None = None
        try:
            await asyncio.to_thread(self._sync_files, writers, directory_dirty)
        except OSError as failure:
            error = failure
        finally:
            for old in retiring:
                with contextlib.suppress(OSError):
                    old.close()
        self.sync_rounds += 1
        FSYNCS.inc(len(writers))
        if error is None:
            self._durable = max(self._durable, target)
        else:
            # After a failed fsync the kernel may have dropped the dirty pages: nothing written
            # to these files can be trusted, so later writes go to a fresh segment.
            writer.broken = True
            if directory_dirty:
                self._directory_dirty = True
            WRITE_FAILURES.inc()
            _log.error("WAL fsync failed: %s; moving to a new segment", error)
        self._settle(target, error)

    def _sync_files(self, writers: list[segment.SegmentWriter], directory_dirty: bool) -> None:
        for writer in writers:
            writer.sync()
        if directory_dirty:
            fileutil.fsync_directory(self.dir)

    def _settle(self, target: int, error: OSError | None) -> None:
        """Complete the waiters this round covered; ask for another round if some are left."""
        remaining: list[tuple[int, asyncio.Future[None]]] = []
        for position, future in self._waiters:
            if position > target:
                remaining.append((position, future))
            elif future.done():
                continue
            elif error is None:
                future.set_result(None)
            else:
                message = f"cannot fsync the WAL at {self.dir}: {error}"
                future.set_exception(WALWriteError(message))
        self._waiters = remaining
        if remaining:
            self._wake.set()
