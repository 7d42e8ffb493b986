"""The bucket probe against a real MinIO: a good bucket, a missing one, bad credentials."""

from __future__ import annotations

from lokistack_operator import storage
from testinfra import minio as minio_infra


def secret(server: minio_infra.MinioServer, bucket: str, key: str = "") -> storage.StorageSecret:
    return storage.parse_storage_secret(
        {
            "endpoint": server.url,
            "bucketnames": bucket,
            "access_key_id": server.access_key,
            "access_key_secret": key or server.secret_key,
            "region": minio_infra.REGION,
        }
    )


async def test_an_existing_bucket_passes(
    minio_server: minio_infra.MinioServer, minio_bucket: str
) -> None:
    assert await storage.probe_bucket(secret(minio_server, minio_bucket)) is None


async def test_a_missing_bucket_is_reported(minio_server: minio_infra.MinioServer) -> None:
    reason = await storage.probe_bucket(secret(minio_server, "no-such-bucket"))
    assert reason == f"bucket 'no-such-bucket' does not exist at {minio_server.url}"


async def test_wrong_credentials_are_reported(
    minio_server: minio_infra.MinioServer, minio_bucket: str
) -> None:
    reason = await storage.probe_bucket(secret(minio_server, minio_bucket, key="wrong-secret"))
    assert reason is not None
    assert reason.startswith(f"the object storage at {minio_server.url} rejected the credentials")
    assert reason.endswith(("AccessDenied", "SignatureDoesNotMatch"))
