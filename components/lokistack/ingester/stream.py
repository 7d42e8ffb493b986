"""One stream in an ingester: its chunks, the out-of-order window and duplicate detection.

Entries are appended to the stream's newest chunk; a new chunk is cut when the current one is
closed (chosen for flushing) or has no space left for the entry (target size, as Loki's
SpaceFor). Writes may arrive out of order within ``max_chunk_age / 2`` of the newest entry the
stream has accepted; older ones are refused with Loki's "too far behind" error. An entry equal to
the previous accepted one (timestamp, line and metadata) is dropped silently, as a replica
retrying a push would otherwise store it twice.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Sequence

from lokistack import limits
from lokistack.chunk import chunk as chunk_mod
from lokistack.chunk import codec as chunk_codec

Metadata = tuple[tuple[str, str], ...]


def rfc3339(ns: int) -> str:
    """Go's time.RFC3339 in UTC, as Loki prints timestamps in messages."""
    moment = datetime.datetime.fromtimestamp(ns // 1_000_000_000, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class ChunkDesc:
    """A chunk and its flush state."""

    chunk: chunk_mod.MemChunk
    last_updated: float = dataclasses.field(default_factory=time.time)
    closed: bool = False
    flushed_at: float = 0.0
    flush_reason: str = ""


@dataclasses.dataclass(frozen=True)
class ChunkShape:
    """How chunks of this ingester are cut (from the ``ingester`` config block)."""

    encoding: chunk_codec.Encoding
    block_size: int
    target_size: int
    max_chunk_age_ns: int

    def new_chunk(self) -> chunk_mod.MemChunk:
        return chunk_mod.MemChunk(self.encoding, self.block_size, self.target_size)


@dataclasses.dataclass
class EntryRefusal:
    """An entry the stream refused, with Loki's reason text."""

    ts: int
    reason: str


@dataclasses.dataclass
class Stream:
    labels: str
    fingerprint: int
    shape: ChunkShape
    rate: limits.TokenBucket
    chunks: list[ChunkDesc] = dataclasses.field(default_factory=list)
    highest_ts: int = 0
    last_ts: int = -1
    last_line: str = ""
    last_metadata: Metadata = ()
    entry_count: int = 0
    """Entries accepted so far; WAL records carry it so replay can skip what a checkpoint has."""

    def append(
        self,
        timestamps: Sequence[int],
        lines: Sequence[str],
        metadata: Sequence[Metadata] | None,
        check_window: bool = True,
    ) -> tuple[list[int], list[EntryRefusal]]:
        """Append entries; returns the indexes that were stored and the refusals.

        ``check_window`` is off during WAL replay, as in Loki: what was acknowledged is kept.
        """
        stored: list[int] = []
        refused: list[EntryRefusal] = []
        window = self.shape.max_chunk_age_ns // 2
        now = time.time()
        desc = self.chunks[-1] if self.chunks else None
        for index, ts in enumerate(timestamps):
            line = lines[index]
            meta = metadata[index] if metadata is not None else ()
            if ts == self.last_ts and line == self.last_line and meta == self.last_metadata:
                continue  # an exact repeat of the previous entry: already stored
            if check_window and self.highest_ts and ts < self.highest_ts - window:
                refused.append(
                    EntryRefusal(
                        ts,
                        f"entry too far behind, entry timestamp is: {rfc3339(ts)}, "
                        f"oldest acceptable timestamp is: {rfc3339(self.highest_ts - window)}",
                    )
                )
                continue
            if (
                desc is None
                or desc.closed
                or not desc.chunk.space_for(
                    len(line), sum(len(k) + len(v) for k, v in meta) if meta else 0
                )
            ):
                desc = ChunkDesc(self.shape.new_chunk())
                self.chunks.append(desc)
            if not desc.chunk.append(ts, line, meta):
                continue  # a duplicate inside the head block
            desc.last_updated = now
            stored.append(index)
            self.last_ts, self.last_line, self.last_metadata = ts, line, meta
            self.highest_ts = max(self.highest_ts, ts)
        self.entry_count += len(stored)
        return stored, refused

    def unflushed_bytes(self) -> int:
        return sum(desc.chunk.uncompressed_size for desc in self.chunks if not desc.flushed_at)
