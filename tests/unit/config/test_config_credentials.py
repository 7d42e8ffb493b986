"""S3 credentials resolve as value > file > environment, and must come as a pair."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import pytest
from lokistack import config

ENV = {"AWS_ACCESS_KEY_ID": "env-id", "AWS_SECRET_ACCESS_KEY": "env-secret"}


def s3(**changes: Any) -> config.S3:
    return dataclasses.replace(config.S3(endpoint="minio:9000", bucket="logs"), **changes)


def secret_files(tmp_path: pathlib.Path) -> dict[str, str]:
    (tmp_path / "id").write_text("file-id\n", encoding="utf-8")
    (tmp_path / "secret").write_text("file-secret", encoding="utf-8")
    return {
        "access_key_id_file": str(tmp_path / "id"),
        "secret_access_key_file": str(tmp_path / "secret"),
    }


def test_value_wins_over_file_and_environment(tmp_path: pathlib.Path) -> None:
    creds = config.resolve_s3_credentials(
        s3(access_key_id="v-id", secret_access_key="v-secret", **secret_files(tmp_path)), ENV
    )
    assert (creds.access_key_id, creds.secret_access_key) == ("v-id", "v-secret")


def test_file_wins_over_environment_and_is_stripped(tmp_path: pathlib.Path) -> None:
    creds = config.resolve_s3_credentials(s3(**secret_files(tmp_path)), ENV)
    assert (creds.access_key_id, creds.secret_access_key) == ("file-id", "file-secret")


def test_environment_is_the_fallback() -> None:
    creds = config.resolve_s3_credentials(s3(), ENV)
    assert (creds.access_key_id, creds.secret_access_key) == ("env-id", "env-secret")
    assert not creds.anonymous


def test_nothing_anywhere_is_anonymous() -> None:
    assert config.resolve_s3_credentials(s3(), {}).anonymous


def test_process_environment_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "late-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "late-secret")
    assert config.resolve_s3_credentials(s3()).access_key_id == "late-id"


def test_secret_is_not_in_repr() -> None:
    creds = config.resolve_s3_credentials(s3(), ENV)
    assert "env-secret" not in repr(creds)


def test_unreadable_file_names_the_key(tmp_path: pathlib.Path) -> None:
    with pytest.raises(config.ConfigError) as info:
        config.resolve_s3_credentials(s3(access_key_id_file=str(tmp_path / "nope")), {})
    assert info.value.key == "storage.s3.access_key_id_file"
    assert "cannot read" in info.value.reason


@pytest.mark.parametrize(
    ("changes", "env", "key"),
    [
        ({"access_key_id": "id"}, {}, "storage.s3.secret_access_key"),
        ({}, {"AWS_SECRET_ACCESS_KEY": "s"}, "storage.s3.access_key_id"),
    ],
)
def test_half_a_pair_is_an_error(changes: dict[str, str], env: dict[str, str], key: str) -> None:
    with pytest.raises(config.ConfigError) as info:
        config.resolve_s3_credentials(s3(**changes), env)
    assert info.value.key == key
