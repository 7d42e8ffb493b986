"""The ingester replays its WAL on start, and flushes during replay over the memory ceiling.

Runs the Ingester class against a real WAL directory and a real filesystem object store; only
the ring member is a stand-in (this module has no ring).
"""

from __future__ import annotations

import pathlib

from lokistack import config, limits
from lokistack.ingester import ingester as ingester_mod
from lokistack.proto import push_pb2
from lokistack.storage import filesystem


class ActiveMember:
    def is_active(self) -> bool:
        return True


def _config(tmp_path: pathlib.Path, ceiling: str = "4GB") -> config.Config:
    return config.parse(
        f"""
ingester:
  index_dir: {tmp_path / "index"}
  chunk_block_size: 2KB
  chunk_target_size: 8KB
  flush_on_shutdown: false
  wal: {{dir: {tmp_path / "wal"}, replay_memory_ceiling: {ceiling}}}
limits: {{per_stream_rate_limit: 1GB, per_stream_rate_limit_burst: 1GB}}
""",
        "test",
    )


def _ingester(cfg: config.Config, tmp_path: pathlib.Path) -> ingester_mod.Ingester:
    return ingester_mod.Ingester(
        cfg,
        overrides=limits.Overrides(cfg.limits),
        member=ActiveMember(),
        healthy_ingesters=lambda: 1,
        store=filesystem.FilesystemStore(tmp_path / "objects"),
        instance_id="ingester-0",
    )


def _request(batch: int) -> push_pb2.PushRequest:
    request = push_pb2.PushRequest()
    for s in range(3):
        stream = request.streams.add(labels=f'{{app="replay", n="{s}"}}')
        for i in range(100):
            entry = stream.entries.add(line=f"batch {batch} stream {s} entry {i} " + "y" * 40)
            entry.timestamp.seconds = 1_700_000_000 + batch
            entry.timestamp.nanos = i
    return request


async def _push_and_log(ingester: ingester_mod.Ingester, batch: int) -> None:
    records, refusal = ingester.instance("t").push(_request(batch))
    assert refusal is None
    assert ingester.wal is not None
    await ingester.wal.log(records)


async def test_replay_restores_every_logged_entry(tmp_path: pathlib.Path) -> None:
    cfg = _config(tmp_path)
    first = _ingester(cfg, tmp_path)
    await first.start()
    for batch in range(5):
        await _push_and_log(first, batch)
    await first.checkpoint()
    for batch in range(5, 8):
        await _push_and_log(first, batch)
    await first.stop()  # no flush: everything must come back from the WAL

    second = _ingester(cfg, tmp_path)
    await second.start()
    try:
        assert second.readiness() is None
        assert second.instance("t").entry_count() == 8 * 300
    finally:
        await second.stop()


async def test_replay_over_the_memory_ceiling_flushes_to_storage(tmp_path: pathlib.Path) -> None:
    first = _ingester(_config(tmp_path), tmp_path)
    await first.start()
    for batch in range(10):
        await _push_and_log(first, batch)
    await first.stop()

    second = _ingester(_config(tmp_path, ceiling="20KB"), tmp_path)
    await second.start()
    try:
        stored = await filesystem.FilesystemStore(tmp_path / "objects").list("t/chunks/")
        assert stored, "replay went over its ceiling without flushing"
        in_memory = second.instance("t").entry_count()
        assert in_memory < 10 * 300  # flushed chunks were dropped from memory
    finally:
        await second.stop()
