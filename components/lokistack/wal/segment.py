"""Segment files: names, CRC32C frames, the appending writer, the reader and torn-tail repair.

A segment is an 8-byte header followed by frames. Each frame holds one batch: all records of one
``WAL.log()`` call (docs/format/wal.md). Because a whole push sits in one frame, checking the
frame's checksum also checks that the push is complete. Repair is therefore simple: cut the file
at the first frame that does not check out. The push that was torn is dropped whole, and every
earlier push is kept byte for byte.

The writer appends with ``pwritev`` at an offset it tracks itself. A failed write (``ENOSPC``)
can then be rolled back with ``ftruncate``, and no file position needs repairing. These are
blocking calls, small enough to make from the event loop. ``sync`` is the exception: callers run
it in a thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import pathlib
import re
import struct
from collections.abc import Iterator
from typing import BinaryIO, Final, Literal

import google_crc32c
import prometheus_client

from lokistack.wal import record

MAGIC: Final = b"LSWAL\x00\x00\x01"
KIND_BATCH: Final = 1
FRAME_HEADER: Final = struct.Struct("<IIB")  # crc32c, payload length, kind
_CHECKED_HEADER: Final = struct.Struct("<IB")  # the header bytes the CRC covers
MAX_PAYLOAD: Final = 2**32 - 1
_NAME: Final = re.compile(r"\d{8,}")

CorruptionKind = Literal["torn", "checksum", "invalid", "header"]

CORRUPTIONS = prometheus_client.Counter(
    "loki_ingester_wal_corruptions_total",
    "Total number of WAL corruptions encountered.",
    ["type"],
)

_log = logging.getLogger(__name__)


def segment_name(number: int) -> str:
    """The file name of segment ``number``: 8-digit zero-padded decimal, as in Loki."""
    return f"{number:08d}"


def parse_segment_name(name: str) -> int | None:
    """The segment number a file name stands for, or None for files that are not segments."""
    return int(name) if _NAME.fullmatch(name) else None


def list_segments(directory: pathlib.Path) -> list[int]:
    """Numbers of the segment files in ``directory``, ascending; other files are ignored."""
    try:
        names = [entry.name for entry in directory.iterdir()]
    except FileNotFoundError:
        return []
    numbers = (parse_segment_name(name) for name in names)
    return sorted(number for number in numbers if number is not None)


def frame_header(payload: bytes) -> bytes:
    """The 9-byte header for a batch frame carrying ``payload``."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"a WAL batch of {len(payload)} bytes exceeds the 4 GiB frame limit")
    checked = _CHECKED_HEADER.pack(len(payload), KIND_BATCH)
    crc = google_crc32c.extend(google_crc32c.value(checked), payload)
    return struct.pack("<I", crc) + checked


def _datasync(descriptor: int) -> None:
    if hasattr(os, "fdatasync"):
        os.fdatasync(descriptor)
    else:  # pragma: no cover - macOS
        os.fsync(descriptor)


class SegmentWriter:
    """Appends frames to one segment file; ``broken`` means a failed write could not be undone."""

    def __init__(self, path: pathlib.Path, number: int, descriptor: int, size: int) -> None:
        self.path = path
        self.number = number
        self.descriptor = descriptor
        self.size = size
        self.broken = False

    @classmethod
    def create(cls, directory: pathlib.Path, number: int) -> SegmentWriter:
        """Create segment ``number`` (it must not exist) and write its header."""
        path = directory / segment_name(number)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        descriptor = os.open(path, flags, 0o644)
        try:
            if os.pwrite(descriptor, MAGIC, 0) != len(MAGIC):
                raise OSError(f"short write of the header of {path}")
        except BaseException:
            os.close(descriptor)
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        return cls(path, number, descriptor, len(MAGIC))

    def append(self, payload: bytes) -> int:
        """Write one frame at the end; return its size. On OSError nothing of it remains."""
        header = frame_header(payload)
        start = self.size
        total = len(header) + len(payload)
        try:
            written = os.pwritev(self.descriptor, [header, payload], start)
            if written < total:  # a short write: finish it, or fail and roll back
                rest = memoryview(header + payload)
                while written < total:
                    step = os.pwrite(self.descriptor, rest[written:], start + written)
                    if step <= 0:
                        raise OSError(errno.EIO, f"no progress writing {self.path}")
                    written += step
        except OSError:
            try:
                os.ftruncate(self.descriptor, start)
            except OSError:
                self.broken = True
            raise
        self.size = start + total
        return total

    def sync(self) -> None:
        """fdatasync the file (blocking: run it in a thread)."""
        _datasync(self.descriptor)

    def close(self) -> None:
        os.close(self.descriptor)


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    """One valid frame: where it starts, its size on disk and its decoded records."""

    offset: int
    size: int
    records: list[record.Record]


class SegmentReader:
    """Iterates the valid frames of a segment, stopping at the first one that is not.

    After iteration, ``valid_size`` is the end of the last valid frame (0 if even the header is
    bad). ``corruption`` says why reading stopped early, or is None if the whole file was read.
    """

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.valid_size = 0
        self.file_size = 0
        self.corruption: CorruptionKind | None = None

    def __iter__(self) -> Iterator[Frame]:
        with self.path.open("rb") as handle:
            self.file_size = size = os.fstat(handle.fileno()).st_size
            if size == 0:
                return
            if handle.read(len(MAGIC)) != MAGIC:
                self.corruption = "header"
                return
            offset = self.valid_size = len(MAGIC)
            while offset < size:
                frame = self._check(handle, offset, size)
                if isinstance(frame, str):
                    self.corruption = frame
                    return
                offset = self.valid_size = offset + frame.size
                yield frame

    def _check(self, handle: BinaryIO, offset: int, size: int) -> Frame | CorruptionKind:
        if offset + FRAME_HEADER.size > size:
            return "torn"
        header = handle.read(FRAME_HEADER.size)
        crc, length, kind = FRAME_HEADER.unpack(header)
        if kind != KIND_BATCH:
            return "invalid"
        end = offset + FRAME_HEADER.size + length
        if end > size:  # the size was taken before reading: no read can come up short
            return "torn"
        payload = handle.read(length)
        if google_crc32c.extend(google_crc32c.value(header[4:]), payload) != crc:
            return "checksum"
        try:
            records = record.decode_batch(payload)
        except record.DecodeError:
            return "invalid"
        return Frame(offset, end - offset, records)


@dataclasses.dataclass(frozen=True, slots=True)
class Damage:
    """What repair or a reader found wrong with a segment."""

    path: pathlib.Path
    kind: CorruptionKind
    offset: int
    lost_bytes: int


def scan(path: pathlib.Path) -> Damage | None:
    """Read the whole segment; describe where and why it stops being valid, if it does."""
    reader = SegmentReader(path)
    for _frame in reader:
        pass
    if reader.corruption is None:
        return None
    lost = reader.file_size - reader.valid_size
    return Damage(path, reader.corruption, reader.valid_size, lost)


def truncate(damage: Damage) -> None:
    """Cut a damaged segment at its last valid frame, durably, and log what was lost."""
    with damage.path.open("r+b") as handle:
        handle.truncate(damage.offset)
        handle.flush()
        os.fsync(handle.fileno())
    _log.warning(
        "WAL segment %s repaired: truncated at offset %d, %d bytes lost (%s)",
        damage.path,
        damage.offset,
        damage.lost_bytes,
        damage.kind,
        extra={"segment": str(damage.path), "lost_bytes": damage.lost_bytes},
    )


def repair(path: pathlib.Path) -> Damage | None:
    """Scan a (final) segment and truncate its torn or corrupt tail; count it as corruption."""
    damage = scan(path)
    if damage is not None:
        CORRUPTIONS.labels("segment").inc()
        truncate(damage)
    return damage
