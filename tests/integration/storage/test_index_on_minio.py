"""The index round trip on MinIO: an ingester ships sealed files, a querier finds the series."""

from __future__ import annotations

import datetime
import pathlib
from collections.abc import Iterator

import minio
import pytest
from lokistack.model import fingerprint as model_fingerprint
from lokistack.model import labels as model_labels
from lokistack.storage import chunk_store, index_format, index_reader, index_shipper, s3
from testinfra import minio as minio_infra

from tests.support import stored

DAY = index_format.DAY_NS
T0 = 19_723 * DAY
M = index_reader.Matcher


@pytest.fixture
def store(minio_server: minio_infra.MinioServer, minio_bucket: str) -> Iterator[s3.S3Store]:
    opened = stored.minio_store(minio_server, minio_bucket)
    yield opened
    opened.close()


def stream(text: str) -> tuple[str, int]:
    canonical = model_labels.canonical(model_labels.parse_labels(text))
    return canonical, model_fingerprint.fingerprint(canonical)


async def test_shipped_index_is_found_by_a_reader_elsewhere(
    store: s3.S3Store, minio_client: minio.Minio, tmp_path: pathlib.Path
) -> None:
    chunks = chunk_store.ChunkStore(store)
    shipper = index_shipper.IndexShipper(
        store,
        tmp_path / "ingester-index",
        "ingester-0",
        datetime.timedelta(minutes=15),
        clock=lambda: 1_704_067_200.0,
    )
    written: dict[str, list[str]] = {}
    for text, span in [
        ('{app="api", env="prod"}', (T0 - 100, T0 + 100)),  # crosses midnight
        ('{app="api", env="prod"}', (T0 + 1_000, T0 + 2_000)),
        ('{app="api", env="dev"}', (T0 + 1_000, T0 + 2_000)),
        ('{app="web"}', (T0 + 1_000, T0 + 2_000)),
    ]:
        labels, fp = stream(text)
        data = f"chunk of {text} at {span}".encode()
        key = await chunks.put_chunk("tenant-a", fp, span[0], span[1], len(data), data)
        await shipper.head.add_chunk("tenant-a", fp, labels, span[0], span[1], key, len(data), 7)
        written.setdefault(labels, []).append(key)

    uploaded = await shipper.seal_and_upload()

    assert uploaded == [
        "index/19722/tenant-a/ingester-0-1704067200000.sqlite",
        "index/19723/tenant-a/ingester-0-1704067200000.sqlite",
    ]
    listed = sorted(
        obj.object_name or ""
        for obj in minio_client.list_objects(store.bucket, prefix="index/", recursive=True)
    )
    assert listed == uploaded

    reader = index_reader.IndexReader(store, tmp_path / "querier-cache")
    found = await reader.series(
        "tenant-a", T0, T0 + 1_500, [M("app", "=", "api"), M("env", "=~", "prod|staging")]
    )
    (prod,) = found
    assert prod.labels == '{app="api", env="prod"}'
    assert [chunk.key for chunk in prod.chunks] == written[prod.labels]
    assert {chunk.entries for chunk in prod.chunks} == {7}

    blobs = await chunks.get_chunks(chunk.key for chunk in prod.chunks)
    assert all(data.startswith(b"chunk of") for data in blobs.values())

    # Only the later chunks overlap this range; the other tenant sees nothing.
    later = await reader.series("tenant-a", T0 + 500, T0 + 600_000, [M("app", "!=", "")])
    assert sorted(series.labels for series in later) == [
        '{app="api", env="dev"}',
        '{app="api", env="prod"}',
        '{app="web"}',
    ]
    assert all(len(series.chunks) == 1 for series in later)
    assert await reader.series("tenant-b", T0, T0 + DAY, []) == []
    assert (tmp_path / "querier-cache" / uploaded[1]).is_file()
