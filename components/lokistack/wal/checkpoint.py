"""Checkpoints: the ingester's in-memory streams written out so that old segments can go.

A checkpoint is written into ``checkpoint.NNNNNN.tmp/``, in segment files framed like the WAL's.
Every file is fsynced, and the directory is then renamed to ``checkpoint.NNNNNN``. A crash at any
point therefore leaves either the previous checkpoint or the new complete one, never a partial
one that replay would trust. Segments ``<= NNNNNN`` and older checkpoints are deleted only after
the rename is durable. If the process dies between the two, the extra files are harmless.

Everything here is blocking file I/O; the ingester runs ``write_checkpoint`` in a thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import pathlib
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from typing import Final

import prometheus_client

from lokistack import fileutil
from lokistack.wal import record, segment

BATCH_BYTES: Final = 1 << 20  # about 1 MiB per frame, as Loki batches checkpoint writes
SEGMENT_SIZE: Final = 128 << 20
_COMPLETE: Final = re.compile(r"checkpoint\.(\d{6,})")
_TEMPORARY: Final = re.compile(r"checkpoint\.(\d{6,})\.tmp")

CREATIONS = prometheus_client.Counter(
    "loki_ingester_checkpoint_creations_total", "Total number of checkpoint creations attempted."
)
CREATION_FAILURES = prometheus_client.Counter(
    "loki_ingester_checkpoint_creations_failed_total",
    "Total number of checkpoint creations that failed.",
)
DURATION = prometheus_client.Summary(
    "loki_ingester_checkpoint_duration_seconds", "Time taken to create a checkpoint."
)

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Checkpoint:
    """A complete checkpoint directory and the last WAL segment it covers."""

    path: pathlib.Path
    covers_segment: int


def checkpoint_name(covers_segment: int) -> str:
    return f"checkpoint.{covers_segment:06d}"


def list_checkpoints(directory: pathlib.Path) -> list[Checkpoint]:
    """The complete checkpoints in ``directory``, oldest first (``.tmp`` ones are not listed)."""
    try:
        names = [entry.name for entry in directory.iterdir()]
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        match = _COMPLETE.fullmatch(name)
        if match and (directory / name).is_dir():
            found.append(Checkpoint(directory / name, int(match.group(1))))
    return sorted(found, key=lambda item: item.covers_segment)


def latest(directory: pathlib.Path) -> Checkpoint | None:
    """The newest complete checkpoint, or None."""
    found = list_checkpoints(pathlib.Path(directory))
    return found[-1] if found else None


def cleanup_stale(directory: pathlib.Path) -> int:
    """Remove ``checkpoint.*.tmp`` directories left by an interrupted checkpoint; return count."""
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in pathlib.Path(directory).iterdir():
            if _TEMPORARY.fullmatch(entry.name):
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
    return removed


def write_checkpoint(
    dir: pathlib.Path,
    records: Iterable[record.CheckpointStreamRecord],
    covers_segment: int,
    *,
    batch_bytes: int = BATCH_BYTES,
    segment_size: int = SEGMENT_SIZE,
) -> pathlib.Path:
    """Write a checkpoint covering segments ``<= covers_segment`` atomically; return its path.

    Afterwards, delete the covered segments and every older checkpoint.
    """
    directory = pathlib.Path(dir)
    CREATIONS.inc()
    started = time.perf_counter()
    try:
        path = _write(directory, records, covers_segment, batch_bytes, segment_size)
    except BaseException:
        CREATION_FAILURES.inc()
        raise
    DURATION.observe(time.perf_counter() - started)
    delete_covered(directory, covers_segment)
    return path


def _write(
    directory: pathlib.Path,
    records: Iterable[record.CheckpointStreamRecord],
    covers_segment: int,
    batch_bytes: int,
    segment_size: int,
) -> pathlib.Path:
    cleanup_stale(directory)
    newest = latest(directory)
    if newest is not None and newest.covers_segment >= covers_segment:
        raise ValueError(
            f"checkpoint for segment {covers_segment} is not newer than {newest.path.name}"
        )
    final = directory / checkpoint_name(covers_segment)
    temporary = directory / f"{final.name}.tmp"
    temporary.mkdir()
    writers = [segment.SegmentWriter.create(temporary, 0)]
    try:
        batch: list[record.Record] = []
        pending = streams = 0
        for item in records:
            batch.append(item)
            streams += 1
            pending += len(item.payload) + len(item.labels) + 64
            if pending >= batch_bytes:
                _append(writers, temporary, batch, segment_size)
                batch, pending = [], 0
        live = max(segment.list_segments(directory), default=covers_segment)
        batch.append(record.CheckpointEndRecord(streams, live))
        _append(writers, temporary, batch, segment_size)
        for writer in writers:
            writer.sync()
    except BaseException:
        for writer in writers:
            with contextlib.suppress(OSError):
                writer.close()
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    for writer in writers:
        writer.close()
    fileutil.fsync_directory(temporary)
    temporary.rename(final)
    fileutil.fsync_directory(directory)
    return final


def _append(
    writers: list[segment.SegmentWriter],
    directory: pathlib.Path,
    batch: list[record.Record],
    segment_size: int,
) -> None:
    payload = record.encode_batch(batch)
    writer = writers[-1]
    frame_size = segment.FRAME_HEADER.size + len(payload)
    if writer.size > len(segment.MAGIC) and writer.size + frame_size > segment_size:
        writer = segment.SegmentWriter.create(directory, writer.number + 1)
        writers.append(writer)
    writer.append(payload)


def delete_covered(directory: pathlib.Path, covers_segment: int) -> None:
    """Delete WAL segments ``<= covers_segment`` and checkpoints older than that one."""
    for number in segment.list_segments(directory):
        if number <= covers_segment:
            path = directory / segment.segment_name(number)
            try:
                path.unlink()
            except OSError as error:
                _log.warning("cannot delete WAL segment %s: %s", path, error)
    for old in list_checkpoints(directory):
        if old.covers_segment < covers_segment:
            shutil.rmtree(old.path, ignore_errors=True)
    fileutil.fsync_directory(directory)


class CheckpointReader:
    """The stream records of a checkpoint; after iteration, what its end record said.

    ``live_segment`` is None when the checkpoint is incomplete or damaged (counted as corruption);
    replay then limits de-duplication to the segment right after the covered ones.
    """

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self.live_segment: int | None = None
        self.streams = 0
        self.bytes = 0
        self.corruptions = 0

    def __iter__(self) -> Iterator[record.CheckpointStreamRecord]:
        end: record.CheckpointEndRecord | None = None
        for number in segment.list_segments(self.checkpoint.path):
            reader = segment.SegmentReader(self.checkpoint.path / segment.segment_name(number))
            for frame in reader:
                self.bytes += frame.size
                for item in frame.records:
                    if isinstance(item, record.CheckpointStreamRecord):
                        self.streams += 1
                        yield item
                    elif isinstance(item, record.CheckpointEndRecord):
                        end = item
            if reader.corruption is not None:
                self._corrupt(
                    f"segment {number} is damaged at offset {reader.valid_size} "
                    f"({reader.corruption})"
                )
        if end is None or end.streams != self.streams:
            self._corrupt(f"it is incomplete: read {self.streams} streams, end record {end}")
        else:
            self.live_segment = end.live_segment

    def _corrupt(self, what: str) -> None:
        self.corruptions += 1
        segment.CORRUPTIONS.labels("checkpoint").inc()
        _log.error("WAL checkpoint %s: %s", self.checkpoint.path, what)
