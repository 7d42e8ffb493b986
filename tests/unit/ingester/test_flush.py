"""Which chunks a sweep flushes, and what is dropped from memory afterwards."""

from __future__ import annotations

import os
import pathlib

from lokistack import config, limits
from lokistack.chunk import codec
from lokistack.ingester import flush, instance, stream
from lokistack.storage import chunk_store, filesystem, index_shipper

SHAPE = stream.ChunkShape(codec.Encoding.SNAPPY, 1024, 4096, 2 * 3600 * 10**9)
POLICY = flush.FlushPolicy(
    idle_seconds=60,
    max_age_ns=3600 * 10**9,
    retain_seconds=0,
    check_period=1,
    workers=2,
    op_timeout=10,
    backoff_min=0.01,
    backoff_max=0.02,
    max_retries=2,
)


def _desc(entries: list[int], last_updated: float = 1000.0) -> stream.ChunkDesc:
    memchunk = SHAPE.new_chunk()
    for ts in entries:
        memchunk.append(ts, "line")
    return stream.ChunkDesc(memchunk, last_updated=last_updated)


def test_flush_reasons_follow_lokis_order() -> None:
    now = 1010.0
    assert flush.flush_reason(_desc([1]), True, POLICY, now, immediate=False) is None
    assert flush.flush_reason(_desc([1]), False, POLICY, now, immediate=False) == "full"
    closed = _desc([1])
    closed.closed = True
    assert flush.flush_reason(closed, True, POLICY, now, immediate=False) == "full"
    assert flush.flush_reason(_desc([1], 900.0), True, POLICY, now, immediate=False) == "idle"
    old = _desc([0, 2 * 3600 * 10**9])
    assert flush.flush_reason(old, True, POLICY, now, immediate=False) == "max_age"
    assert flush.flush_reason(_desc([1]), True, POLICY, now, immediate=True) == "forced"
    done = _desc([1])
    done.flushed_at = 5.0
    assert flush.flush_reason(done, True, POLICY, now, immediate=True) is None


async def test_flush_all_stores_chunks_then_memory_is_released(tmp_path: pathlib.Path) -> None:
    store = filesystem.FilesystemStore(tmp_path / "objects")
    shipper = index_shipper.IndexShipper(
        store, tmp_path / "index", "ingester-0", __import__("datetime").timedelta(minutes=15)
    )
    tenant = instance.TenantInstance("t", limits.Overrides(config.Limits()), lambda: 1, 1, SHAPE)
    tenant_stream = tenant.create_stream('{app="a"}')
    # High-entropy lines, so the 4 KiB target cuts several chunks.
    tenant_stream.append(list(range(1, 201)), [os.urandom(30).hex() for _ in range(200)], None)
    flusher = flush.Flusher({"t": tenant}, chunk_store.ChunkStore(store), shipper, POLICY)
    flusher.start()
    try:
        assert await flusher.flush_all()
    finally:
        await flusher.stop()
    stored = await store.list("t/chunks/")
    assert len(stored) == len(tenant_stream.chunks) >= 2  # several chunks at a 4 KiB target
    assert sum(desc.chunk.num_entries for desc in tenant_stream.chunks) == 200
    # Until their index rows are in an uploaded file, queriers can find the chunks only here.
    assert flusher.remove_flushed() == 0
    await shipper.seal_and_upload()
    assert flusher.remove_flushed() == len(stored)
    assert tenant.streams == {}  # a stream with nothing left is removed
