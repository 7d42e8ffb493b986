"""The WAL object: batches, rotation, repair on open, group commit and write failures."""

from __future__ import annotations

import asyncio
import datetime
import errno
import os
import pathlib
import time

import prometheus_client
import pytest
from lokistack.wal import log, record, replay, segment

PERIOD = datetime.timedelta(milliseconds=20)


def _batch(index: int, streams: int = 2) -> list[record.Record]:
    return [
        record.EntriesRecord.from_entries(
            "tenant", stream, [index, index + 1], [f"push {index} a", f"push {index} b"]
        )
        for stream in range(streams)
    ]


def _metric(name: str) -> float:
    return prometheus_client.REGISTRY.get_sample_value(name) or 0.0


def _replayed(directory: pathlib.Path) -> list[record.Record]:
    return list(replay.replay(directory))


async def _opened(directory: pathlib.Path, **options: object) -> log.WAL:
    settings: dict[str, object] = {
        "segment_size": 1 << 20,
        "fsync": "group",
        "fsync_period": PERIOD,
    }
    settings.update(options)
    wal = log.WAL(directory, **settings)  # type: ignore[arg-type]
    await wal.open()
    return wal


async def test_logged_batches_replay_in_order(tmp_path: pathlib.Path) -> None:
    wal = await _opened(tmp_path)
    records_before = _metric("loki_ingester_wal_records_logged_total")
    for index in range(5):
        await wal.log(_batch(index))
    await wal.close()
    assert _replayed(tmp_path) == [r for i in range(5) for r in _batch(i)]
    assert _metric("loki_ingester_wal_records_logged_total") - records_before == 10


async def test_open_repairs_the_tail_and_starts_a_new_segment(tmp_path: pathlib.Path) -> None:
    (tmp_path / "tokens.json").write_text('{"tokens": [1]}')
    (tmp_path / "checkpoint.000005.tmp").mkdir()  # an interrupted checkpoint
    wal = await _opened(tmp_path)
    assert not (tmp_path / "checkpoint.000005.tmp").exists()
    assert wal.current_segment == 0
    await wal.log(_batch(0))
    await wal.log(_batch(1))
    await wal.close()
    path = tmp_path / "00000000"
    with path.open("r+b") as handle:  # a crash in the middle of the second push
        handle.truncate(path.stat().st_size - 5)
    reopened = await _opened(tmp_path)
    assert reopened.current_segment == 1
    assert reopened.segments() == [0, 1]
    await reopened.log(_batch(2))
    await reopened.close()
    assert _replayed(tmp_path) == _batch(0) + _batch(2)
    assert (tmp_path / "tokens.json").read_text() == '{"tokens": [1]}'


async def test_rotation_at_segment_size_keeps_every_batch(tmp_path: pathlib.Path) -> None:
    frame = segment.FRAME_HEADER.size + len(record.encode_batch(_batch(0)))
    wal = await _opened(tmp_path, segment_size=len(segment.MAGIC) + 3 * frame)
    for index in range(10):
        await wal.log(_batch(index))
    await wal.close()
    assert wal.segments() == [0, 1, 2, 3]
    for number in range(3):
        size = (tmp_path / segment.segment_name(number)).stat().st_size
        assert size == len(segment.MAGIC) + 3 * frame
    assert _replayed(tmp_path) == [r for i in range(10) for r in _batch(i)]


async def test_a_batch_larger_than_a_segment_gets_one_of_its_own(tmp_path: pathlib.Path) -> None:
    wal = await _opened(tmp_path, segment_size=64)
    await wal.log(_batch(0))
    await wal.log(_batch(1))
    await wal.close()
    assert wal.segments() == [0, 1]
    assert _replayed(tmp_path) == _batch(0) + _batch(1)


async def test_concurrent_logs_in_always_mode_share_fsyncs(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_sync = segment.SegmentWriter.sync

    def slow_sync(writer: segment.SegmentWriter) -> None:
        time.sleep(0.02)  # a slow disk: callers pile up behind one fsync
        real_sync(writer)

    monkeypatch.setattr(segment.SegmentWriter, "sync", slow_sync)
    wal = await _opened(tmp_path, fsync="always")
    await asyncio.sleep(0.05)  # let the fsync of the new segment's directory entry finish
    rounds_before = wal.sync_rounds

    async def one_caller(index: int) -> None:
        for repeat in range(3):
            await wal.log(_batch(index * 10 + repeat, streams=1))

    await asyncio.gather(*(one_caller(index) for index in range(50)))
    rounds = wal.sync_rounds - rounds_before
    assert 1 <= rounds <= 6  # 150 acknowledged writes, a handful of fsyncs
    await wal.close()
    assert len(_replayed(tmp_path)) == 150


async def test_always_mode_returns_only_after_an_fsync(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_sync = segment.SegmentWriter.sync

    def counting_sync(writer: segment.SegmentWriter) -> None:
        real_sync(writer)
        synced.append(writer.size)

    monkeypatch.setattr(segment.SegmentWriter, "sync", counting_sync)
    wal = await _opened(tmp_path, fsync="always")
    await wal.log(_batch(0))
    assert synced and synced[-1] >= (tmp_path / "00000000").stat().st_size
    await wal.close()


async def test_group_mode_returns_before_fsync_and_syncs_periodically(
    tmp_path: pathlib.Path,
) -> None:
    wal = await _opened(tmp_path, fsync_period=datetime.timedelta(milliseconds=30))
    await asyncio.sleep(0.1)
    rounds = wal.sync_rounds
    await wal.log(_batch(0))
    assert wal.sync_rounds == rounds  # log() did not wait for a sync
    await asyncio.sleep(0.25)  # several periods: one round syncs the write, later ones skip
    assert wal.sync_rounds == rounds + 1
    await wal.close()


async def test_disk_full_raises_and_the_wal_recovers(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    wal = await _opened(tmp_path)
    await wal.log(_batch(0))
    before = _metric("loki_ingester_wal_disk_full_failures_total")

    def full(*_args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwritev", full)
    for index in range(3):
        with pytest.raises(log.WALWriteError, match="disk full"):
            await wal.log(_batch(100 + index))
    monkeypatch.undo()
    assert _metric("loki_ingester_wal_disk_full_failures_total") - before == 3
    failures_logged = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures_logged) == 1  # once per burst
    await wal.log(_batch(1))
    await wal.close()
    assert _replayed(tmp_path) == _batch(0) + _batch(1)


async def test_an_unrecoverable_write_moves_to_a_new_segment(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal = await _opened(tmp_path)
    await wal.log(_batch(0))
    real_pwritev = os.pwritev

    def torn(descriptor: int, buffers: list[bytes], offset: int) -> int:
        real_pwritev(descriptor, [buffers[0], buffers[1][:7]], offset)
        raise OSError(errno.EIO, "I/O error")

    def no_truncate(*_args: object) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "pwritev", torn)
    monkeypatch.setattr(os, "ftruncate", no_truncate)
    with pytest.raises(log.WALWriteError, match="I/O error"):
        await wal.log(_batch(1))
    monkeypatch.undo()
    await wal.log(_batch(2))
    assert wal.current_segment == 1
    await wal.close()
    replayed = replay.replay(tmp_path)
    assert list(replayed) == _batch(0) + _batch(2)
    assert replayed.stats.corruptions == 1  # the torn frame left in segment 0


async def test_a_failed_fsync_fails_its_waiters(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal = await _opened(tmp_path, fsync="always")
    await wal.log(_batch(0))

    def failing(_writer: segment.SegmentWriter) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(segment.SegmentWriter, "sync", failing)
    with pytest.raises(log.WALWriteError, match="fsync"):
        await wal.log(_batch(1))
    monkeypatch.undo()
    await wal.log(_batch(2))
    assert wal.current_segment == 1
    await wal.close()


async def test_segments_continue_after_a_checkpoint(tmp_path: pathlib.Path) -> None:
    (tmp_path / "checkpoint.000007").mkdir()
    wal = await _opened(tmp_path)
    assert wal.current_segment == 8
    assert wal.rotate() == 8
    assert wal.current_segment == 9
    await wal.close()


async def test_an_empty_batch_writes_nothing(tmp_path: pathlib.Path) -> None:
    wal = await _opened(tmp_path, fsync="always")
    await wal.log([])
    await wal.log(_batch(0))
    await wal.close()
    replayed = replay.replay(tmp_path)
    assert list(replayed) == _batch(0)
    assert replayed.stats.corruptions == 0


async def test_log_after_close_is_refused(tmp_path: pathlib.Path) -> None:
    wal = await _opened(tmp_path)
    await wal.close()
    await wal.close()
    with pytest.raises(log.WALWriteError, match="closed"):
        await wal.log(_batch(0))
    with pytest.raises(RuntimeError):
        _ = wal.current_segment
