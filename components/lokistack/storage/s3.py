"""The object store on any S3 API (MinIO, AWS S3), through the ``minio`` client.

The client is synchronous, so every request runs in a thread pool owned by the store: the
default executor of ``asyncio.to_thread`` has ``cpu_count + 4`` threads and is shared with SQLite
and file work, which would cap a querier's parallel chunk fetches at a handful on a small node.

The HTTP library's own retries are turned off and this module retries instead, with a bounded
count (``storage.s3.max_retries``) and exponential backoff with jitter, so that every attempt is
timed in the metrics and errors are classified once: ``NoSuchKey`` is an answer
(:class:`~lokistack.storage.objstore.ObjectNotFoundError`), refused credentials or a missing
bucket cannot be fixed by retrying (:class:`~lokistack.storage.objstore.StorageAccessError`), and
everything network- or server-side is transient (:class:`~lokistack.storage.objstore.StorageError`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import io
import logging
import os
import random
from collections.abc import Callable, Mapping
from typing import Final, TypeVar

import certifi
import minio
import urllib3
from minio import error as minio_error

from lokistack import config
from lokistack.storage import objstore

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
_STORE: Final = "s3"

_ACCESS_CODES: Final = frozenset(
    {
        "AccessDenied",
        "AccountProblem",
        "AllAccessDisabled",
        "AuthorizationHeaderMalformed",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidBucketName",
        "InvalidToken",
        "NoSuchBucket",
        "SignatureDoesNotMatch",
    }
)
_TRANSIENT_CODES: Final = frozenset(
    {
        "InternalError",
        "OperationAborted",
        "RequestTimeout",
        "ServiceUnavailable",
        "SlowDown",
        "XMinioServerNotInitialized",
    }
)
_MAX_CONNECT_TIMEOUT: Final = 10.0


class S3Store:
    """:class:`~lokistack.storage.objstore.ObjectStore` on one S3 bucket."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        *,
        access_key_id: str = "",
        secret_access_key: str = "",
        region: str = "us-east-1",
        secure: bool = True,
        force_path_style: bool = True,
        request_timeout: float = 30.0,
        max_retries: int = 3,
        max_connections: int = 32,
        backoff_base: float = 0.1,
        backoff_max: float = 5.0,
    ) -> None:
        if "://" in endpoint:
            raise config.ConfigError(
                "storage.s3.endpoint", f"must be host[:port] without a scheme, got {endpoint!r}"
            )
        self.endpoint = endpoint
        self.bucket = bucket
        self._max_retries = max(0, max_retries)
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(
                connect=min(request_timeout, _MAX_CONNECT_TIMEOUT), read=request_timeout
            ),
            maxsize=max_connections,
            retries=False,
            cert_reqs="CERT_REQUIRED" if secure else "CERT_NONE",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        )
        self._client = minio.Minio(
            endpoint,
            access_key=access_key_id or None,
            secret_key=secret_access_key or None,
            secure=secure,
            region=region or None,
            http_client=http,
        )
        if force_path_style:
            self._client.disable_virtual_style_endpoint()  # type: ignore[no-untyped-call]
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_connections, thread_name_prefix="s3"
        )

    @classmethod
    def from_config(cls, cfg: config.S3, environ: Mapping[str, str] | None = None) -> S3Store:
        """A store for ``storage.s3``, with credentials resolved now (value > file > env)."""
        if not cfg.endpoint:
            raise config.ConfigError("storage.s3.endpoint", "is required when storage.type is s3")
        if not cfg.bucket:
            raise config.ConfigError("storage.s3.bucket", "is required when storage.type is s3")
        credentials = config.resolve_s3_credentials(cfg, environ)
        return cls(
            cfg.endpoint,
            cfg.bucket,
            access_key_id=credentials.access_key_id,
            secret_access_key=credentials.secret_access_key,
            region=cfg.region,
            secure=not cfg.insecure,
            force_path_style=cfg.force_path_style,
            request_timeout=cfg.request_timeout.total_seconds(),
            max_retries=cfg.max_retries,
        )

    def __repr__(self) -> str:
        return f"S3Store(endpoint={self.endpoint!r}, bucket={self.bucket!r})"

    def close(self) -> None:
        """Release the worker threads and pooled connections; requests in flight finish."""
        self._executor.shutdown(wait=False)

    # -- ObjectStore ---------------------------------------------------------------------------

    async def put(self, key: str, data: bytes) -> None:
        objstore.validate_key(key)

        def put() -> None:
            self._client.put_object(self.bucket, key, io.BytesIO(data), len(data))

        await self._call("put", key, put)

    async def get(self, key: str) -> bytes:
        objstore.validate_key(key)
        return await self._call("get", key, functools.partial(self._read, key, 0, 0))

    async def get_range(self, key: str, offset: int, length: int) -> bytes:
        objstore.validate_key(key)
        objstore.validate_range(offset, length)
        if length == 0:
            if not await self.exists(key):
                raise objstore.ObjectNotFoundError(key)
            return b""

        def read_range() -> bytes:
            try:
                return self._read(key, offset, length)
            except minio_error.S3Error as err:
                if err.code == "InvalidRange":  # offset at or past the end: nothing to return
                    return b""
                raise

        return await self._call("get_range", key, read_range)

    async def list(self, prefix: str) -> list[objstore.ObjectInfo]:
        def list_all() -> list[objstore.ObjectInfo]:
            objects = self._client.list_objects(self.bucket, prefix=prefix or None, recursive=True)
            return sorted(
                (
                    objstore.ObjectInfo(obj.object_name, obj.size or 0)
                    for obj in objects
                    if obj.object_name is not None and not obj.is_dir
                ),
                key=lambda info: info.key,
            )

        return await self._call("list", prefix, list_all)

    async def delete(self, key: str) -> None:
        objstore.validate_key(key)
        await self._call("delete", key, lambda: self._client.remove_object(self.bucket, key))

    async def exists(self, key: str) -> bool:
        objstore.validate_key(key)

        def stat() -> bool:
            try:
                self._client.stat_object(self.bucket, key)
            except minio_error.S3Error as err:
                if err.code == "NoSuchKey":
                    return False
                raise
            return True

        return await self._call("exists", key, stat)

    # -- requests, retries, error mapping ------------------------------------------------------

    def _read(self, key: str, offset: int, length: int) -> bytes:
        response = self._client.get_object(self.bucket, key, offset=offset, length=length)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    async def _call(self, operation: str, key: str, request: Callable[[], _T]) -> _T:
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            try:
                with objstore.observe(_STORE, operation):
                    return await loop.run_in_executor(
                        self._executor, functools.partial(self._translated, key, request)
                    )
            except objstore.StorageError as err:
                if attempt >= self._max_retries:
                    raise
                attempt += 1
                objstore.RETRIES.labels(_STORE, operation).inc()
                delay = self._backoff(attempt)
                _log.warning(
                    "retrying S3 request",
                    extra={"operation": operation, "key": key, "attempt": attempt, "err": str(err)},
                )
                await asyncio.sleep(delay)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._backoff_max, self._backoff_base * 2.0 ** (attempt - 1))
        jitter: float = random.uniform(0.5, 1.0)
        return ceiling * jitter

    def _translated(self, key: str, request: Callable[[], _T]) -> _T:
        """Run ``request`` and turn the client's exceptions into the store's hierarchy."""
        try:
            return request()
        except minio_error.S3Error as err:
            raise self._s3_error(key, err) from err
        except minio_error.ServerError as err:
            raise objstore.StorageError(f"S3 {self.endpoint}: {err}") from err
        except minio_error.InvalidResponseError as err:
            status = getattr(err, "_code", 0) or 0
            if status in (401, 403):
                raise self._denied(str(status), str(err)) from err
            raise objstore.StorageError(f"S3 {self.endpoint}: {err}") from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise objstore.StorageError(
                f"S3 request to {self.endpoint} failed: {type(err).__name__}: {err}"
            ) from err

    def _s3_error(self, key: str, err: minio_error.S3Error) -> objstore.ObjectStoreError:
        code = err.code or ""
        if code == "NoSuchKey":
            return objstore.ObjectNotFoundError(key)
        if code in _ACCESS_CODES:
            return self._denied(code, err.message or "")
        status = err.response.status if err.response is not None else 0
        if code in _TRANSIENT_CODES or status >= 500:
            return objstore.StorageError(f"S3 {self.endpoint}: {code}: {err.message}")
        return objstore.ObjectStoreError(f"S3 {self.endpoint}: {code}: {err.message} ({key})")

    def _denied(self, code: str, message: str) -> objstore.StorageAccessError:
        return objstore.StorageAccessError(
            f'S3 refused access to bucket "{self.bucket}" at {self.endpoint}: {code}: {message} '
            "(check storage.s3 credentials, bucket name and permissions)"
        )
