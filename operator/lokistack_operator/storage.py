"""The object storage Secret: validation with the Loki Operator's reasons, hashing, bucket probe.

The Secret has the Loki Operator's S3 keys: ``endpoint`` (an http or https URL without a path),
``bucketnames`` (comma-separated; Lokistack uses the first), ``access_key_id``,
``access_key_secret``, and optionally ``region`` and ``forcepathstyle`` (``true``/``false``).
Other keys are ignored, as the Loki Operator ignores them.

- A Secret that does not exist is the caller's to detect: report
  :data:`REASON_MISSING` with :data:`MESSAGE_MISSING` (:meth:`InvalidStorageSecret.missing`).
- Bad contents raise :class:`InvalidStorageSecret` with :data:`REASON_INVALID` and
  ``Invalid object storage secret contents: <what is wrong>``.
- :func:`probe_bucket` goes further than the Loki Operator: it asks the endpoint whether the
  bucket exists with the given credentials, so a typo shows up as
  ``Degraded/ObjectStorageUnreachable`` instead of crashlooping ingesters.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import os
import re
import urllib.parse
from collections.abc import Mapping
from typing import Final

REASON_MISSING: Final = "MissingObjectStorageSecret"
MESSAGE_MISSING: Final = "Missing object storage secret"
REASON_INVALID: Final = "InvalidObjectStorageSecret"
MESSAGE_INVALID_PREFIX: Final = "Invalid object storage secret contents"
REASON_UNREACHABLE: Final = "ObjectStorageUnreachable"

KEY_ENDPOINT: Final = "endpoint"
KEY_BUCKETNAMES: Final = "bucketnames"
KEY_ACCESS_KEY_ID: Final = "access_key_id"
KEY_ACCESS_KEY_SECRET: Final = "access_key_secret"
KEY_REGION: Final = "region"
KEY_FORCEPATHSTYLE: Final = "forcepathstyle"
REQUIRED_KEYS: Final = (KEY_ENDPOINT, KEY_BUCKETNAMES, KEY_ACCESS_KEY_ID, KEY_ACCESS_KEY_SECRET)

DEFAULT_REGION: Final = "us-east-1"
PROBE_TIMEOUT_SECONDS: Final = 10.0
_AWS_HOST: Final = re.compile(r"s3[.-](?:dualstack\.)?([a-z0-9-]+)\.amazonaws\.com(\.cn)?")


class InvalidStorageSecret(Exception):  # noqa: N818 - named after the condition it reports
    """The storage Secret cannot be used; ``reason`` and ``message`` make a Degraded condition."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason, message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"

    @classmethod
    def missing(cls) -> InvalidStorageSecret:
        """The error for a Secret that does not exist."""
        return cls(REASON_MISSING, MESSAGE_MISSING)

    @classmethod
    def invalid(cls, detail: str) -> InvalidStorageSecret:
        return cls(REASON_INVALID, f"{MESSAGE_INVALID_PREFIX}: {detail}")


@dataclasses.dataclass(frozen=True)
class StorageSecret:
    """A validated S3 storage Secret."""

    endpoint: str  # host[:port], no scheme (the workload's storage.s3.endpoint)
    bucket: str
    access_key_id: str
    access_key_secret: str = dataclasses.field(repr=False)
    region: str = DEFAULT_REGION
    forcepathstyle: bool = True
    insecure: bool = False  # the endpoint URL's scheme was http

    @property
    def url(self) -> str:
        return f"{'http' if self.insecure else 'https'}://{self.endpoint}"


def _text(value: bytes | str) -> str:
    raw = value if isinstance(value, bytes) else value.encode("utf-8")
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return ""


def decode_secret_data(data: Mapping[str, str] | None) -> dict[str, bytes]:
    """The values of a Secret's ``.data`` (base64, as the API returns them) as bytes."""
    decoded: dict[str, bytes] = {}
    for key, value in (data or {}).items():
        try:
            decoded[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidStorageSecret.invalid(f"value of {key} is not valid base64") from None
    return decoded


def _endpoint(url: str) -> tuple[str, bool, str]:
    """``(host[:port], insecure, host)`` from the endpoint URL, or InvalidStorageSecret."""
    if "://" not in url:
        raise InvalidStorageSecret.invalid(
            f"endpoint must be an http:// or https:// URL, got {url!r}"
        )
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # raises ValueError for a malformed port
    except ValueError:
        raise InvalidStorageSecret.invalid(f"endpoint is not a valid URL: {url!r}") from None
    if parts.scheme not in {"http", "https"}:
        raise InvalidStorageSecret.invalid(
            f"endpoint scheme {parts.scheme!r} is not supported (use http or https)"
        )
    if not host:
        raise InvalidStorageSecret.invalid(f"endpoint has no host: {url!r}")
    if parts.username is not None or parts.password is not None:
        raise InvalidStorageSecret.invalid(
            "endpoint must not contain credentials; use access_key_id and access_key_secret"
        )
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise InvalidStorageSecret.invalid(
            f"endpoint must not have a path, query or fragment, got {url!r} "
            "(the bucket goes in bucketnames)"
        )
    return parts.netloc.rpartition("@")[2], parts.scheme == "http", host


def parse_storage_secret(data: Mapping[str, bytes | str]) -> StorageSecret:
    """Validate a storage Secret's data (decoded values; see :func:`decode_secret_data`)."""
    values = {key: _text(value) for key, value in data.items()}
    missing = [key for key in REQUIRED_KEYS if not values.get(key)]
    buckets = [name.strip() for name in values.get(KEY_BUCKETNAMES, "").split(",")]
    buckets = [name for name in buckets if name]
    if not buckets and KEY_BUCKETNAMES not in missing:
        missing.append(KEY_BUCKETNAMES)
    if missing:
        raise InvalidStorageSecret.invalid(
            "missing secret field: " + ", ".join(sorted(missing, key=REQUIRED_KEYS.index))
        )
    endpoint, insecure, host = _endpoint(values[KEY_ENDPOINT])
    aws = _AWS_HOST.fullmatch(host)
    region = values.get(KEY_REGION, "")
    if aws and region and region != aws.group(1):
        raise InvalidStorageSecret.invalid(
            f"region {region!r} does not match the region of the endpoint ({aws.group(1)})"
        )
    region = region or (aws.group(1) if aws else DEFAULT_REGION)
    pathstyle = values.get(KEY_FORCEPATHSTYLE, "")
    if pathstyle not in {"", "true", "false"}:
        raise InvalidStorageSecret.invalid(
            f"forcepathstyle must be true or false, got {pathstyle!r}"
        )
    return StorageSecret(
        endpoint=endpoint,
        bucket=buckets[0],
        access_key_id=values[KEY_ACCESS_KEY_ID],
        access_key_secret=values[KEY_ACCESS_KEY_SECRET],
        region=region,
        # Loki's default: path style everywhere except on AWS.
        forcepathstyle=pathstyle == "true" if pathstyle else not host.endswith(".amazonaws.com"),
        insecure=insecure,
    )


def secret_hash(data: Mapping[str, bytes | str]) -> str:
    """A stable SHA-256 of the Secret's keys and values (str and bytes values hash alike).

    Keys are taken in sorted order and every key and value is length-prefixed, so no two
    different Secrets share a hash by moving bytes between a value and the next key.
    """
    digest = hashlib.sha256()
    for key in sorted(data):
        value = data[key]
        raw = value if isinstance(value, bytes) else value.encode("utf-8")
        for part in (key.encode("utf-8"), raw):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()


def _bucket_exists(storage: StorageSecret, timeout: float) -> bool:
    import certifi  # noqa: PLC0415 - the probe's dependencies load only when it runs
    import minio  # noqa: PLC0415
    import urllib3  # noqa: PLC0415

    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout),
        retries=False,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
    )
    try:
        client = minio.Minio(
            storage.endpoint,
            access_key=storage.access_key_id,
            secret_key=storage.access_key_secret,
            secure=not storage.insecure,
            region=storage.region,
            http_client=http,
        )
        if storage.forcepathstyle:
            client.disable_virtual_style_endpoint()  # type: ignore[no-untyped-call]
        return bool(client.bucket_exists(storage.bucket))
    finally:
        http.clear()


def _describe_failure(storage: StorageSecret, error: Exception) -> str:
    from minio import error as minio_error  # noqa: PLC0415

    where = storage.url
    if isinstance(error, minio_error.S3Error):
        if error.code in {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
            return (
                f"the object storage at {where} rejected the credentials for bucket "
                f"{storage.bucket!r}: {error.code}"
            )
        return f"the object storage at {where} answered {error.code}: {error.message}"
    if isinstance(error, minio_error.ServerError | minio_error.InvalidResponseError):
        return f"the object storage at {where} gave an unexpected answer: {error}"
    reason = getattr(error, "reason", None) or error
    return f"cannot reach the object storage at {where}: {reason}"


async def probe_bucket(
    storage: StorageSecret, time_limit: float = PROBE_TIMEOUT_SECONDS
) -> str | None:
    """None when the endpoint answers and the bucket exists; else why not, readable.

    The blocking client call runs in a thread, bounded by ``time_limit`` seconds.
    """
    try:
        async with asyncio.timeout(time_limit + 1.0):
            exists = await asyncio.to_thread(_bucket_exists, storage, time_limit)
    except TimeoutError:
        return f"no answer from the object storage at {storage.url} within {time_limit:g}s"
    except Exception as error:
        return _describe_failure(storage, error)
    if not exists:
        return f"bucket {storage.bucket!r} does not exist at {storage.url}"
    return None
