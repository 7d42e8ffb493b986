"""Checkpoints: atomic creation, deletion of what they cover, and reading them back."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import prometheus_client
import pytest
from lokistack.wal import checkpoint, record, segment


def _streams(count: int, payload_size: int = 100) -> list[record.CheckpointStreamRecord]:
    return [
        record.CheckpointStreamRecord(
            "tenant", n, f'{{n="{n}"}}', bytes([n % 256]) * payload_size, entry_count=n * 10
        )
        for n in range(count)
    ]


def _segments(directory: pathlib.Path, numbers: range) -> None:
    for number in numbers:
        writer = segment.SegmentWriter.create(directory, number)
        writer.append(record.encode_batch([record.SeriesRecord("t", number, "{}")]))
        writer.close()


def _metric(name: str) -> float:
    return prometheus_client.REGISTRY.get_sample_value(name) or 0.0


def _read(found: checkpoint.Checkpoint) -> tuple[list[record.Record], checkpoint.CheckpointReader]:
    reader = checkpoint.CheckpointReader(found)
    return list(reader), reader


def test_write_then_read_back(tmp_path: pathlib.Path) -> None:
    _segments(tmp_path, range(4))
    created_before = _metric("loki_ingester_checkpoint_creations_total")
    path = checkpoint.write_checkpoint(tmp_path, _streams(50), 2)
    assert path == tmp_path / "checkpoint.000002"
    assert _metric("loki_ingester_checkpoint_creations_total") - created_before == 1
    found = checkpoint.latest(tmp_path)
    assert found == checkpoint.Checkpoint(path, 2)
    records, reader = _read(found)
    assert records == _streams(50)
    assert reader.live_segment == 3
    assert reader.corruptions == 0


def test_covered_segments_and_older_checkpoints_are_deleted(tmp_path: pathlib.Path) -> None:
    _segments(tmp_path, range(6))
    (tmp_path / "tokens.json").write_text("{}")
    checkpoint.write_checkpoint(tmp_path, _streams(3), 1)
    assert segment.list_segments(tmp_path) == [2, 3, 4, 5]
    checkpoint.write_checkpoint(tmp_path, _streams(3), 4)
    assert segment.list_segments(tmp_path) == [5]
    assert [c.covers_segment for c in checkpoint.list_checkpoints(tmp_path)] == [4]
    assert (tmp_path / "tokens.json").exists()


def test_a_leftover_tmp_is_ignored_and_cleaned(tmp_path: pathlib.Path) -> None:
    stale = tmp_path / "checkpoint.000009.tmp"
    stale.mkdir()
    (stale / "00000000").write_bytes(b"partial")
    assert checkpoint.latest(tmp_path) is None
    checkpoint.write_checkpoint(tmp_path, _streams(1), 3)
    assert not stale.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.000003"]


def test_a_failed_checkpoint_leaves_nothing_and_deletes_nothing(tmp_path: pathlib.Path) -> None:
    _segments(tmp_path, range(3))
    failed_before = _metric("loki_ingester_checkpoint_creations_failed_total")

    def broken() -> Iterator[record.CheckpointStreamRecord]:
        yield from _streams(2)
        raise RuntimeError("serialising a stream failed")

    with pytest.raises(RuntimeError):
        checkpoint.write_checkpoint(tmp_path, broken(), 1)
    assert _metric("loki_ingester_checkpoint_creations_failed_total") - failed_before == 1
    assert checkpoint.latest(tmp_path) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00000000", "00000001", "00000002"]


def test_large_checkpoints_span_batches_and_segments(tmp_path: pathlib.Path) -> None:
    path = checkpoint.write_checkpoint(
        tmp_path, _streams(200, 1000), 0, batch_bytes=10_000, segment_size=50_000
    )
    assert len(segment.list_segments(path)) > 3
    records, reader = _read(checkpoint.Checkpoint(path, 0))
    assert records == _streams(200, 1000)
    assert reader.corruptions == 0


def test_a_checkpoint_must_be_newer_than_the_last(tmp_path: pathlib.Path) -> None:
    checkpoint.write_checkpoint(tmp_path, [], 5)
    with pytest.raises(ValueError, match="not newer"):
        checkpoint.write_checkpoint(tmp_path, [], 5)


def test_a_damaged_checkpoint_yields_what_is_readable_and_counts_it(
    tmp_path: pathlib.Path,
) -> None:
    path = checkpoint.write_checkpoint(tmp_path, _streams(30, 1000), 0, batch_bytes=5_000)
    first = path / "00000000"
    data = bytearray(first.read_bytes())
    data[-100] ^= 0x40  # inside the last frame, which holds the end record
    first.write_bytes(bytes(data))
    before = _metric('loki_ingester_wal_corruptions_total{type="checkpoint"}')
    records, reader = _read(checkpoint.Checkpoint(path, 0))
    assert 0 < len(records) < 30
    assert records == _streams(30, 1000)[: len(records)]
    assert reader.live_segment is None
    assert reader.corruptions == 2  # the bad frame, and the missing end record
    corruptions = prometheus_client.REGISTRY.get_sample_value(
        "loki_ingester_wal_corruptions_total", {"type": "checkpoint"}
    )
    assert (corruptions or 0.0) - before >= 2
