"""The object store interface every component writes chunks and index files through.

Two implementations exist, S3 (:mod:`~lokistack.storage.s3`) and a local directory
(:mod:`~lokistack.storage.filesystem`); callers hold an :class:`ObjectStore` and never know which.
The semantics the callers rely on, including the edge cases where S3 and a file system differ by
nature (deleting an absent key, ranges past the end), are fixed in docs/format/storage.md and
reproduced by both implementations.

Errors are split by what the caller should do about them: :class:`ObjectNotFoundError` is an
answer, :class:`StorageError` is worth retrying later, :class:`StorageAccessError` needs a person
to fix the configuration.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, Literal, Protocol

import prometheus_client

MAX_KEY_BYTES: Final = 1024
"""S3's limit on object names; enforced for every store so keys stay portable."""

TMP_PREFIX: Final = ".lokistack-tmp-"
"""Names the filesystem store uses for files being written; no key segment may start with it."""

Status = Literal["ok", "not_found", "denied", "error"]

REQUEST_DURATION: Final = prometheus_client.Histogram(
    "lokistack_object_store_request_duration_seconds",
    "Time spent on one object store request attempt.",
    ["store", "operation", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RETRIES: Final = prometheus_client.Counter(
    "lokistack_object_store_retries_total",
    "Object store request attempts repeated after a transient failure.",
    ["store", "operation"],
)


class ObjectStoreError(Exception):
    """Base class of every failure an object store reports."""


class ObjectNotFoundError(ObjectStoreError):
    """The key does not exist."""

    def __init__(self, key: str) -> None:
        super().__init__(f"object not found: {key}")
        self.key = key


class StorageError(ObjectStoreError):
    """A transient failure (network, timeout, 5xx, local I/O); retrying later may succeed."""


class StorageAccessError(ObjectStoreError):
    """The store refuses access (credentials, permissions, missing bucket); retrying cannot help."""


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One listed object."""

    key: str
    size: int


class ObjectStore(Protocol):
    """Whole-object storage keyed by ``/``-separated strings (docs/format/storage.md)."""

    async def put(self, key: str, data: bytes) -> None:
        """Write the whole object, replacing any existing one atomically."""
        ...

    async def get(self, key: str) -> bytes:
        """The whole object; :class:`ObjectNotFoundError` when absent."""
        ...

    async def get_range(self, key: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer at the end, ``b""`` past it)."""
        ...

    async def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix``, sorted by key."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; an absent key is not an error."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether the object exists."""
        ...


def validate_key(key: str) -> str:
    """Return ``key`` if every store can hold it, else raise ``ValueError``.

    The rules keep a key safe as a relative file path (no ``..`` escapes the store's directory)
    and valid as an S3 object name, so a key that works on one store works on the other.
    """
    if not key:
        raise ValueError("object key is empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ValueError(f"object key is longer than {MAX_KEY_BYTES} bytes: {key[:64]!r}...")
    if "\x00" in key:
        raise ValueError(f"object key contains a NUL byte: {key!r}")
    if key.startswith("/"):
        raise ValueError(f"object key starts with '/': {key!r}")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(f"object key has an empty, '.' or '..' segment: {key!r}")
        if segment.startswith(TMP_PREFIX):
            raise ValueError(f"object key segment starts with {TMP_PREFIX!r}: {key!r}")
    return key


def validate_range(offset: int, length: int) -> None:
    """Reject negative ranges, which neither store could express."""
    if offset < 0 or length < 0:
        raise ValueError(f"invalid range: offset {offset}, length {length}")


@contextmanager
def observe(store: str, operation: str) -> Iterator[None]:
    """Time one request attempt and record it with the status its outcome implies."""
    started = time.perf_counter()
    status: Status = "ok"
    try:
        yield
    except ObjectNotFoundError:
        status = "not_found"
        raise
    except StorageAccessError:
        status = "denied"
        raise
    except BaseException:
        status = "error"
        raise
    finally:
        REQUEST_DURATION.labels(store, operation, status).observe(time.perf_counter() - started)
