"""The MinIO fixture is a real S3 server: objects round-trip through the minio client."""

from __future__ import annotations

import io
import os

import minio
import pytest
from minio import error as minio_error
from testinfra import minio as minio_infra


def test_object_round_trip(minio_client: minio.Minio, minio_bucket: str) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    minio_client.put_object(
        minio_bucket, "tenant/chunks/00ff/1-2-abc", io.BytesIO(payload), len(payload)
    )

    response = minio_client.get_object(minio_bucket, "tenant/chunks/00ff/1-2-abc")
    try:
        assert response.read() == payload
    finally:
        response.close()
        response.release_conn()

    ranged = minio_client.get_object(
        minio_bucket, "tenant/chunks/00ff/1-2-abc", offset=1000, length=256
    )
    try:
        assert ranged.read() == payload[1000:1256]
    finally:
        ranged.close()
        ranged.release_conn()


def test_list_and_delete(minio_client: minio.Minio, minio_bucket: str) -> None:
    for key in ("index/19000/a/x.sqlite", "index/19000/b/y.sqlite", "index/19001/a/z.sqlite"):
        minio_client.put_object(minio_bucket, key, io.BytesIO(b"x"), 1)

    listed = sorted(
        obj.object_name or ""
        for obj in minio_client.list_objects(minio_bucket, prefix="index/19000/", recursive=True)
    )
    assert listed == ["index/19000/a/x.sqlite", "index/19000/b/y.sqlite"]

    minio_client.remove_object(minio_bucket, "index/19000/a/x.sqlite")
    with pytest.raises(minio_error.S3Error) as missing:
        minio_client.stat_object(minio_bucket, "index/19000/a/x.sqlite")
    assert missing.value.code == "NoSuchKey"


def test_wrong_credentials_are_refused(
    minio_server: minio_infra.MinioServer, minio_bucket: str
) -> None:
    intruder = minio.Minio(
        minio_server.endpoint, access_key="nobody", secret_key="wrong-secret", secure=False
    )
    with pytest.raises(minio_error.S3Error) as refused:
        next(intruder.list_objects(minio_bucket))
    assert refused.value.code == "InvalidAccessKeyId"
