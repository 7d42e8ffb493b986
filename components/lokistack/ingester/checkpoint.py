"""A stream's in-memory state as a WAL checkpoint payload, and back.

The WAL stores the payload opaquely; its layout is specified in docs/format/wal.md
("The ingester's payload"). Chunks are stored with :meth:`MemChunk.to_checkpoint`, which keeps
cut blocks as they were encoded, so checkpointing does not recompress anything.
"""

from __future__ import annotations

import struct

from lokistack.chunk import chunk as chunk_mod
from lokistack.ingester import stream as stream_mod

VERSION = 1
_HEAD = struct.Struct("<Bqq")
_CHUNK = struct.Struct("<Bdd")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class CheckpointFormatError(ValueError):
    pass


def _str16(text: str) -> bytes:
    data = text.encode()
    return _U16.pack(len(data)) + data


def _str32(text: str) -> bytes:
    data = text.encode()
    return _U32.pack(len(data)) + data


def encode(stream: stream_mod.Stream) -> bytes:
    parts = [
        _HEAD.pack(VERSION, stream.highest_ts, stream.last_ts),
        _str32(stream.last_line),
        _U16.pack(len(stream.last_metadata)),
    ]
    for name, value in stream.last_metadata:
        parts += [_str16(name), _str32(value)]
    parts.append(_U32.pack(len(stream.chunks)))
    for desc in stream.chunks:
        data = desc.chunk.to_checkpoint()
        parts += [
            _CHUNK.pack(int(desc.closed), desc.last_updated, desc.flushed_at),
            _str16(desc.flush_reason),
            _U32.pack(len(data)),
            data,
        ]
    return b"".join(parts)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.offset = 0

    def take(self, size: int) -> memoryview:
        if self.offset + size > len(self.data):
            raise CheckpointFormatError("stream checkpoint payload is truncated")
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def unpack(self, shape: struct.Struct) -> tuple[int | float, ...]:
        return shape.unpack(self.take(shape.size))

    def str16(self) -> str:
        (size,) = _U16.unpack(self.take(2))
        return bytes(self.take(size)).decode()

    def str32(self) -> str:
        (size,) = _U32.unpack(self.take(4))
        return bytes(self.take(size)).decode()


def restore(stream: stream_mod.Stream, payload: bytes) -> None:
    """Fill ``stream`` (freshly created, empty) from a checkpoint payload."""
    reader = _Reader(payload)
    version, highest_ts, last_ts = reader.unpack(_HEAD)
    if version != VERSION:
        raise CheckpointFormatError(f"unknown stream checkpoint version {version}")
    stream.highest_ts = int(highest_ts)
    stream.last_ts = int(last_ts)
    stream.last_line = reader.str32()
    (pairs,) = _U16.unpack(reader.take(2))
    stream.last_metadata = tuple((reader.str16(), reader.str32()) for _ in range(pairs))
    (chunks,) = _U32.unpack(reader.take(4))
    for _ in range(chunks):
        closed, last_updated, flushed_at = reader.unpack(_CHUNK)
        reason = reader.str16()
        (size,) = _U32.unpack(reader.take(4))
        memchunk = chunk_mod.MemChunk.from_checkpoint(bytes(reader.take(size)))
        stream.chunks.append(
            stream_mod.ChunkDesc(
                memchunk,
                last_updated=float(last_updated),
                closed=bool(closed),
                flushed_at=float(flushed_at),
                flush_reason=reason,
            )
        )
