"""new_object_store opens the store the config names, with S3 credentials resolved."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import pytest
from lokistack import config
from lokistack.storage import factory, filesystem, s3


def test_filesystem_store(tmp_path: pathlib.Path) -> None:
    cfg = config.Storage(filesystem=config.Filesystem(directory=str(tmp_path / "objects")))
    store = factory.new_object_store(cfg)
    assert isinstance(store, filesystem.FilesystemStore)
    assert store.root == tmp_path / "objects"


def test_s3_store_with_credentials_from_environment() -> None:
    cfg = config.Storage(
        type="s3", s3=config.S3(endpoint="127.0.0.1:9000", bucket="logs", insecure=True)
    )
    env = {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"}
    store = factory.new_object_store(cfg, env)
    try:
        assert isinstance(store, s3.S3Store)
        assert (store.endpoint, store.bucket) == ("127.0.0.1:9000", "logs")
    finally:
        assert isinstance(store, s3.S3Store)
        store.close()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"endpoint": ""}, "storage.s3.endpoint"),
        ({"bucket": ""}, "storage.s3.bucket"),
        ({"endpoint": "http://minio:9000"}, "without a scheme"),
        ({"access_key_id": "only-the-id"}, "storage.s3.secret_access_key"),
    ],
)
def test_unusable_s3_config_is_a_config_error(changes: dict[str, Any], message: str) -> None:
    s3_cfg = dataclasses.replace(config.S3(endpoint="minio:9000", bucket="logs"), **changes)
    with pytest.raises(config.ConfigError, match=message):
        factory.new_object_store(config.Storage(type="s3", s3=s3_cfg), {})
