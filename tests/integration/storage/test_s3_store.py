"""S3Store against a real MinIO: the ObjectStore semantics, errors, and credentials."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import minio
import prometheus_client
import pytest
from lokistack import config
from lokistack.storage import factory, objstore, s3
from testinfra import minio as minio_infra
from testinfra import processes

from tests.support import objstore_contract, stored


@pytest.fixture
def store(minio_server: minio_infra.MinioServer, minio_bucket: str) -> Iterator[s3.S3Store]:
    opened = stored.minio_store(minio_server, minio_bucket)
    yield opened
    opened.close()


async def test_put_get_overwrite(store: s3.S3Store, minio_client: minio.Minio) -> None:
    await objstore_contract.put_get_overwrite(store)
    stat = minio_client.stat_object(store.bucket, "fake/chunks/00ff/1-2-0000abcd")
    assert stat.size == len(b"second, longer")


async def test_large_object_round_trip(store: s3.S3Store) -> None:
    payload = os.urandom(6 * 1024 * 1024 + 3)  # above the multipart threshold
    await store.put("big/object", payload)
    assert await store.get("big/object") == payload
    assert await store.get_range("big/object", 5_000_000, 10) == payload[5_000_000:5_000_010]


async def test_get_range(store: s3.S3Store) -> None:
    await objstore_contract.get_range(store)


async def test_missing_keys(store: s3.S3Store) -> None:
    await objstore_contract.missing_keys(store)


async def test_list_exists_delete(store: s3.S3Store) -> None:
    await objstore_contract.list_exists_delete(store)


async def test_invalid_keys_never_reach_the_server(store: s3.S3Store) -> None:
    with pytest.raises(ValueError, match="object key"):
        await store.put("../escape", b"x")


async def test_wrong_credentials_are_a_clear_access_error(
    minio_server: minio_infra.MinioServer, minio_bucket: str
) -> None:
    intruder = s3.S3Store(
        minio_server.endpoint,
        minio_bucket,
        access_key_id="nobody",
        secret_access_key="wrong-secret",
        secure=False,
    )
    try:
        for attempt in (intruder.get("k"), intruder.list(""), intruder.put("k", b"x")):
            with pytest.raises(objstore.StorageAccessError) as refused:
                await attempt
            message = str(refused.value)
            assert "InvalidAccessKeyId" in message
            assert minio_bucket in message
            assert "credentials" in message
        with pytest.raises(objstore.StorageAccessError, match=r"AccessDenied|InvalidAccessKeyId"):
            await intruder.exists("k")
    finally:
        intruder.close()


async def test_missing_bucket_is_an_access_error(minio_server: minio_infra.MinioServer) -> None:
    store = s3.S3Store(
        minio_server.endpoint,
        "no-such-bucket-here",
        access_key_id=minio_server.access_key,
        secret_access_key=minio_server.secret_key,
        secure=False,
    )
    try:
        with pytest.raises(objstore.StorageAccessError, match="NoSuchBucket"):
            await store.put("k", b"x")
    finally:
        store.close()


async def test_unreachable_endpoint_retries_then_fails_transiently() -> None:
    port = processes.free_port()  # nothing listens here
    store = s3.S3Store(
        f"127.0.0.1:{port}",
        "bucket",
        access_key_id="a",
        secret_access_key="b",
        secure=False,
        request_timeout=2,
        max_retries=2,
        backoff_base=0.01,
    )
    retries_before = _retries("get")
    try:
        with pytest.raises(objstore.StorageError, match="failed"):
            await store.get("k")
    finally:
        store.close()
    assert _retries("get") == retries_before + 2


def _retries(operation: str) -> float:
    value = prometheus_client.REGISTRY.get_sample_value(
        "lokistack_object_store_retries_total", {"store": "s3", "operation": operation}
    )
    return value or 0.0


async def test_factory_resolves_credentials_from_files(
    minio_server: minio_infra.MinioServer, minio_bucket: str, tmp_path: pathlib.Path
) -> None:
    id_file, secret_file = tmp_path / "id", tmp_path / "secret"
    id_file.write_text(minio_server.access_key + "\n", encoding="utf-8")
    secret_file.write_text(minio_server.secret_key, encoding="utf-8")
    cfg = config.Storage(
        type="s3",
        s3=config.S3(
            endpoint=minio_server.endpoint,
            bucket=minio_bucket,
            insecure=True,
            access_key_id_file=str(id_file),
            secret_access_key_file=str(secret_file),
        ),
    )
    store = factory.new_object_store(cfg, {})
    try:
        await store.put("via/factory", b"ok")
        assert await store.get("via/factory") == b"ok"
    finally:
        assert isinstance(store, s3.S3Store)
        store.close()
