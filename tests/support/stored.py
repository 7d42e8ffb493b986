"""Read back what an ingester stored: index files and chunks in the object store."""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib

from lokistack.chunk import chunk as chunk_mod
from lokistack.storage import chunk_store, index_reader, objstore
from lokistack.storage import s3 as s3_store
from testinfra import minio as minio_infra


@dataclasses.dataclass(frozen=True)
class Stored:
    lines: list[str]
    chunk_keys: list[str]
    index_keys: list[str]


async def read_back(
    store: objstore.ObjectStore,
    *,
    cache_dir: pathlib.Path,
    tenant: str,
    matchers: list[index_reader.Matcher],
    from_ns: int,
    through_ns: int,
) -> Stored:
    """Every line of every chunk the index lists for ``matchers`` in the time range."""
    reader = index_reader.IndexReader(store, cache_dir)
    series = await reader.series(tenant, from_ns, through_ns, matchers)
    keys = sorted({ref.key for s in series for ref in s.chunks})
    data = await chunk_store.ChunkStore(store).get_chunks(keys)
    lines: list[str] = []
    for key in keys:
        stored_chunk = chunk_mod.MemChunk.decode(data[key])
        lines.extend(line for _, line, _ in stored_chunk.iterate(from_ns, through_ns, "forward"))
    index_keys = sorted(info.key for info in await store.list("index/"))
    return Stored(lines, keys, index_keys)


def minio_store(server: minio_infra.MinioServer, bucket: str) -> s3_store.S3Store:
    return s3_store.S3Store(
        server.endpoint,
        bucket,
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
        region=minio_infra.REGION,
        secure=False,
        force_path_style=True,
        request_timeout=10.0,
        max_retries=3,
    )


def read_back_sync(
    server: minio_infra.MinioServer,
    bucket: str,
    *,
    cache_dir: pathlib.Path,
    tenant: str,
    matchers: list[index_reader.Matcher],
    from_ns: int,
    through_ns: int,
) -> Stored:
    async def run() -> Stored:
        store = minio_store(server, bucket)
        try:
            return await read_back(
                store,
                cache_dir=cache_dir,
                tenant=tenant,
                matchers=matchers,
                from_ns=from_ns,
                through_ns=through_ns,
            )
        finally:
            store.close()

    return asyncio.run(run())


def s3_settings(server: minio_infra.MinioServer, bucket: str) -> dict[str, object]:
    """Config keys that point a lokistack process at this MinIO bucket."""
    return {
        "storage": {
            "type": "s3",
            "s3": {
                "endpoint": server.endpoint,
                "bucket": bucket,
                "access_key_id": server.access_key,
                "secret_access_key": server.secret_key,
                "insecure": True,
                "region": minio_infra.REGION,
            },
        }
    }
