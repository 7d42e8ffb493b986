"""The storage Secret: validation with the Loki Operator's reasons, hashing, the bucket probe."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lokistack_operator import storage
from lokistack_operator.storage import InvalidStorageSecret

GOOD = {
    "endpoint": "http://minio.minio.svc:9000",
    "bucketnames": "lokistack",
    "access_key_id": "minio",
    "access_key_secret": "minio123",
}


def invalid(data: dict[str, str | bytes]) -> InvalidStorageSecret:
    with pytest.raises(InvalidStorageSecret) as raised:
        storage.parse_storage_secret(data)
    assert raised.value.reason == "InvalidObjectStorageSecret"
    assert raised.value.message.startswith("Invalid object storage secret contents: ")
    return raised.value


def test_minio_secret() -> None:
    parsed = storage.parse_storage_secret(GOOD)
    assert parsed == storage.StorageSecret(
        endpoint="minio.minio.svc:9000",
        bucket="lokistack",
        access_key_id="minio",
        access_key_secret="minio123",
        region="us-east-1",
        forcepathstyle=True,
        insecure=True,
    )
    assert parsed.url == "http://minio.minio.svc:9000"
    assert "minio123" not in repr(parsed)


def test_bytes_values_and_trailing_newlines() -> None:
    data = {key: value.encode() + b"\n" for key, value in GOOD.items()}
    assert storage.parse_storage_secret(data) == storage.parse_storage_secret(GOOD)


def test_aws_endpoint_defaults() -> None:
    parsed = storage.parse_storage_secret(
        {**GOOD, "endpoint": "https://s3.eu-west-1.amazonaws.com", "bucketnames": "a, b"}
    )
    assert parsed.insecure is False
    assert parsed.region == "eu-west-1"
    assert parsed.forcepathstyle is False
    assert parsed.bucket == "a"
    assert parsed.endpoint == "s3.eu-west-1.amazonaws.com"


def test_explicit_region_and_path_style() -> None:
    parsed = storage.parse_storage_secret(
        {**GOOD, "endpoint": "https://s3.example.com/", "region": "eu-1", "forcepathstyle": "false"}
    )
    assert (parsed.region, parsed.forcepathstyle, parsed.insecure) == ("eu-1", False, False)


def test_missing_keys_are_all_named() -> None:
    error = invalid({"endpoint": "http://x:9000", "access_key_secret": ""})
    assert error.message == (
        "Invalid object storage secret contents: missing secret field: "
        "bucketnames, access_key_id, access_key_secret"
    )


def test_empty_bucket_list_is_missing() -> None:
    assert "missing secret field: bucketnames" in invalid({**GOOD, "bucketnames": " , "}).message


@pytest.mark.parametrize(
    ("endpoint", "fragment"),
    [
        ("minio:9000", "must be an http:// or https:// URL"),
        ("ftp://minio:9000", "scheme 'ftp' is not supported"),
        ("http://minio:9000/bucket", "must not have a path"),
        ("http://minio:9000?x=1", "must not have a path"),
        ("http://user:pw@minio:9000", "must not contain credentials"),
        ("http://minio:port", "not a valid URL"),
        ("http://", "has no host"),
    ],
)
def test_bad_endpoints(endpoint: str, fragment: str) -> None:
    assert fragment in invalid({**GOOD, "endpoint": endpoint}).message


def test_bad_forcepathstyle() -> None:
    assert (
        "forcepathstyle must be true or false" in invalid({**GOOD, "forcepathstyle": "yes"}).message
    )


def test_aws_region_must_match_the_endpoint() -> None:
    error = invalid({**GOOD, "endpoint": "https://s3.us-east-2.amazonaws.com", "region": "eu-1"})
    assert "does not match the region of the endpoint (us-east-2)" in error.message


def test_missing_secret_error() -> None:
    error = InvalidStorageSecret.missing()
    assert (error.reason, error.message) == (
        "MissingObjectStorageSecret",
        "Missing object storage secret",
    )
    assert str(error) == "MissingObjectStorageSecret: Missing object storage secret"


def test_decode_secret_data() -> None:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in GOOD.items()}
    decoded = storage.decode_secret_data(encoded)
    assert decoded["access_key_secret"] == b"minio123"
    assert storage.parse_storage_secret(decoded) == storage.parse_storage_secret(GOOD)
    assert storage.decode_secret_data(None) == {}
    with pytest.raises(InvalidStorageSecret, match="not valid base64"):
        storage.decode_secret_data({"endpoint": "%%%"})


def test_secret_hash_is_stable_and_type_blind() -> None:
    as_bytes = {key: value.encode() for key, value in GOOD.items()}
    reordered = dict(reversed(list(GOOD.items())))
    assert storage.secret_hash(GOOD) == storage.secret_hash(as_bytes)
    assert storage.secret_hash(GOOD) == storage.secret_hash(reordered)
    assert len(storage.secret_hash(GOOD)) == 64
    assert storage.secret_hash(GOOD) != storage.secret_hash({**GOOD, "access_key_secret": "new"})
    assert storage.secret_hash({"a": "bc"}) != storage.secret_hash({"ab": "c"})
    assert storage.secret_hash({"a": "b", "c": ""}) != storage.secret_hash({"a": "b"})


@given(
    st.dictionaries(st.text(min_size=1, max_size=8), st.binary(max_size=16), max_size=4),
    st.dictionaries(st.text(min_size=1, max_size=8), st.binary(max_size=16), max_size=4),
)
def test_secret_hash_differs_for_different_data(
    first: dict[str, bytes], second: dict[str, bytes]
) -> None:
    same = storage.secret_hash(first) == storage.secret_hash(second)
    assert same == (first == second)


# -- the bucket probe, against endpoints that fail in known ways (MinIO: tests/integration)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def probe_target(port: int) -> storage.StorageSecret:
    return storage.parse_storage_secret({**GOOD, "endpoint": f"http://127.0.0.1:{port}"})


async def test_probe_reports_an_unreachable_endpoint() -> None:
    port = _closed_port()
    reason = await storage.probe_bucket(probe_target(port), time_limit=2.0)
    assert reason is not None
    assert reason.startswith(f"cannot reach the object storage at http://127.0.0.1:{port}: ")


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_probe_gives_up_on_a_silent_endpoint(silent_server: int) -> None:
    reason = await storage.probe_bucket(probe_target(silent_server), time_limit=0.5)
    assert reason is not None
    assert f"http://127.0.0.1:{silent_server}" in reason
