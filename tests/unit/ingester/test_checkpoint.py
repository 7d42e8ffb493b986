"""A stream's state survives a trip through its checkpoint payload."""

from __future__ import annotations

import pytest
from lokistack import limits
from lokistack.chunk import codec
from lokistack.ingester import checkpoint, stream

SHAPE = stream.ChunkShape(codec.Encoding.SNAPPY, 512, 2048, 2 * 3600 * 10**9)


def _stream() -> stream.Stream:
    return stream.Stream('{app="a"}', 42, SHAPE, limits.TokenBucket(1e9, 1e9))


def test_round_trip_keeps_chunks_flush_state_and_last_entry() -> None:
    original = _stream()
    lines = [f"entry {i} " + "x" * (i % 50) for i in range(300)]
    original.append(
        list(range(1000, 1300)),
        lines,
        [(("trace", str(i)),) if i % 7 == 0 else () for i in range(300)],
    )
    original.chunks[0].flushed_at = 123.5
    original.chunks[0].flush_reason = "full"
    original.chunks[0].closed = True

    restored = _stream()
    checkpoint.restore(restored, checkpoint.encode(original))

    assert (restored.highest_ts, restored.last_ts, restored.last_line, restored.last_metadata) == (
        original.highest_ts,
        original.last_ts,
        original.last_line,
        original.last_metadata,
    )
    assert len(restored.chunks) == len(original.chunks) >= 2
    for before, after in zip(original.chunks, restored.chunks, strict=True):
        assert (after.closed, after.flushed_at, after.flush_reason) == (
            before.closed,
            before.flushed_at,
            before.flush_reason,
        )
        assert list(after.chunk.iterate(0, 10**12, "forward")) == list(
            before.chunk.iterate(0, 10**12, "forward")
        )


def test_truncated_payload_is_an_error() -> None:
    original = _stream()
    original.append([1, 2], ["a", "b"], None)
    payload = checkpoint.encode(original)
    with pytest.raises(checkpoint.CheckpointFormatError):
        checkpoint.restore(_stream(), payload[:-3])
