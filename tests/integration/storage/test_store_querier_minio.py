"""The store read path on MinIO: chunks and index files flushed by two replicas, read back once."""

from __future__ import annotations

import datetime
import pathlib
from collections.abc import Iterator

import pytest
from lokistack.chunk import chunk as chunk_mod
from lokistack.loghttp import encoding
from lokistack.logql.syntax import parser
from lokistack.model import fingerprint as model_fingerprint
from lokistack.model import labels as model_labels
from lokistack.querier import chunk_cache, store
from lokistack.storage import (
    chunk_keys,
    chunk_store,
    index_format,
    index_reader,
    index_shipper,
    s3,
)
from testinfra import minio as minio_infra

from tests.support import stored

T0 = 19_723 * index_format.DAY_NS
TENANT = "tenant-a"


@pytest.fixture
def bucket_store(minio_server: minio_infra.MinioServer, minio_bucket: str) -> Iterator[s3.S3Store]:
    opened = stored.minio_store(minio_server, minio_bucket)
    yield opened
    opened.close()


async def test_select_logs_round_trip(bucket_store: s3.S3Store, tmp_path: pathlib.Path) -> None:
    chunks = chunk_store.ChunkStore(bucket_store)
    canonical = model_labels.canonical(model_labels.parse_labels('{app="api"}'))
    fp = model_fingerprint.fingerprint(canonical)
    rows = [(T0 + i * 10**9, f"line {i} {'error' if i % 5 == 0 else 'ok'}") for i in range(120)]
    for replica, size in enumerate((25, 40)):  # two replicas, cut differently
        shipper = index_shipper.IndexShipper(
            bucket_store,
            tmp_path / f"ingester-{replica}",
            f"ingester-{replica}",
            datetime.timedelta(minutes=15),
        )
        for start in range(0, len(rows), size):
            memchunk = chunk_mod.MemChunk(block_size=512)
            for ts, line in rows[start : start + size]:
                memchunk.append(ts, line)
            memchunk.close()
            data = memchunk.encode()
            key = await chunks.put_chunk(
                TENANT, fp, memchunk.mint, memchunk.maxt, chunk_keys.chunk_checksum(data), data
            )
            await shipper.head.add_chunk(
                TENANT, fp, canonical, memchunk.mint, memchunk.maxt, key, len(data), len(rows)
            )
        await shipper.seal_and_upload()
        shipper.head.close()

    querier = store.StoreQuerier(
        index_reader.IndexReader(bucket_store, tmp_path / "querier-cache"),
        chunks,
        chunk_cache.ChunkCache(16 << 20),
        batch_size=2,
    )
    query = parser.parse_log_selector('{app="api"} |= "error"')
    stats = encoding.Stats()
    found = await querier.select_logs(TENANT, query, T0, T0 + 10**12, "backward", 10, stats)
    expected = [(ts, line) for ts, line in reversed(rows) if "error" in line][:10]
    assert [(e.ts, e.line) for e in found] == expected
    assert all(e.labels == (("app", "api"),) for e in found)
    assert stats.store.total_chunks_ref == 8  # 5 + 3 chunks, no shared key
    everything = await querier.select_logs(
        TENANT, query, T0, T0 + 10**12, "forward", 0, encoding.Stats()
    )
    assert [(e.ts, e.line) for e in everything] == [r for r in rows if "error" in r[1]]
