"""Seal the ingester's index heads into immutable files and upload them to the object store.

Queriers can only find a flushed chunk once its index row is in an uploaded file, and they cache
uploaded files forever, so a file is uploaded only once it can never change: the head is sealed
into a new file first (docs/format/index.md), the file is uploaded, and only then is it deleted
locally. A failed upload keeps the sealed file, and every later call retries it, so an object
store outage delays visibility but loses no index row.

Sealing happens every ``ingester.index_seal_period``, just after each period ends (so a closed
day's rows do not wait for the next tick), and when the ingester shuts down (the caller awaits
:meth:`IndexShipper.seal_and_upload` once more after its last flush).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import pathlib
import time
from collections.abc import Callable
from typing import Final

import prometheus_client

from lokistack.storage import index_format, index_head, objstore

_log = logging.getLogger(__name__)

FILES_SEALED: Final = prometheus_client.Counter(
    "lokistack_index_files_sealed_total", "Index heads sealed into immutable files."
)
FILES_UPLOADED: Final = prometheus_client.Counter(
    "lokistack_index_files_uploaded_total", "Sealed index files uploaded to the object store."
)
UPLOAD_FAILURES: Final = prometheus_client.Counter(
    "lokistack_index_upload_failures_total",
    "Index file uploads that failed; the file is kept and retried.",
)
PENDING_FILES: Final = prometheus_client.Gauge(
    "lokistack_index_files_pending_upload", "Sealed index files waiting for upload."
)

PERIOD_END_DELAY: Final = 1.0
"""Seconds after midnight UTC to seal, so the chunk that closed the period has been recorded."""


class IndexShipper:
    """Owns an :class:`~lokistack.storage.index_head.IndexHead` and ships what it seals."""

    def __init__(
        self,
        store: objstore.ObjectStore,
        index_dir: str | os.PathLike[str],
        ingester_id: str,
        seal_period: datetime.timedelta,
        *,
        head: index_head.IndexHead | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if seal_period <= datetime.timedelta(0):
            raise ValueError(f"seal period must be positive, got {seal_period}")
        self.store = store
        self.ingester_id = index_format.check_ingester_id(ingester_id)
        self.seal_period = seal_period
        self.head = head if head is not None else index_head.IndexHead(index_dir)
        self._clock = clock
        self._lock = asyncio.Lock()
        self._last_sealed_ms = 0
        self.shipped_before = 0.0
        """Every index row added before this time (``clock``) is in an uploaded file."""

    async def seal_and_upload(self) -> list[str]:
        """Seal every head with rows, upload every sealed file, return the keys uploaded.

        Every pending file is attempted even when one fails; afterwards a failure is raised as
        :class:`~lokistack.storage.objstore.StorageError` naming how many files were kept.
        """
        async with self._lock:
            started = self._clock()
            # Strictly increasing, so a file name is never reused even if the clock stalls.
            sealed_ms = max(int(self._clock() * 1000), self._last_sealed_ms + 1)
            self._last_sealed_ms = sealed_ms
            sealed = await asyncio.to_thread(self.head.seal, self.ingester_id, sealed_ms)
            FILES_SEALED.inc(len(sealed))
            for path in sealed:
                millis = int(path.name.removesuffix(index_format.FILE_SUFFIX).rsplit("-", 1)[1])
                self._last_sealed_ms = max(self._last_sealed_ms, millis)
            pending = await asyncio.to_thread(self._pending)
            PENDING_FILES.set(len(pending))
            uploaded: list[str] = []
            failures: list[tuple[str, Exception]] = []
            for path, key in pending:
                try:
                    await self._upload(path, key)
                except (objstore.ObjectStoreError, OSError) as err:
                    UPLOAD_FAILURES.inc()
                    failures.append((key, err))
                    _log.warning(
                        "index upload failed; keeping the file for the next attempt",
                        extra={"key": key, "err": str(err)},
                    )
                    continue
                uploaded.append(key)
            PENDING_FILES.set(len(failures))
            if not failures:
                self.shipped_before = max(self.shipped_before, started)
        if failures:
            key, first = failures[0]
            raise objstore.StorageError(
                f"{len(failures)} index file(s) not uploaded, kept for retry; first {key}: {first}"
            ) from first
        return uploaded

    async def run(self) -> None:
        """Seal and upload every ``seal_period`` and after each period ends, until cancelled."""
        while True:
            await asyncio.sleep(self._seconds_to_next_seal())
            try:
                uploaded = await self.seal_and_upload()
            except objstore.ObjectStoreError as err:
                _log.warning("index shipping incomplete", extra={"err": str(err)})
            except Exception:
                _log.exception("index shipping failed")
            else:
                if uploaded:
                    _log.info("index files uploaded", extra={"files": len(uploaded)})

    def _seconds_to_next_seal(self) -> float:
        now = self._clock()
        day = index_format.DAY_NS / 1e9
        until_period_end = (now // day + 1) * day + PERIOD_END_DELAY - now
        return max(0.0, min(self.seal_period.total_seconds(), until_period_end))

    def _pending(self) -> list[tuple[pathlib.Path, str]]:
        """Sealed files on disk and the key each is uploaded under, oldest period first."""
        root = self.head.sealed_dir
        pending: list[tuple[pathlib.Path, str]] = []
        for path in sorted(root.glob(f"*/*/*{index_format.FILE_SUFFIX}")):
            if path.name.startswith("."):
                continue  # a seal still being written (or abandoned by a crash)
            key = index_format.INDEX_PREFIX + path.relative_to(root).as_posix()
            try:
                index_format.parse_index_key(key)
            except index_format.IndexFormatError:
                _log.warning("ignoring unexpected file in sealed index", extra={"path": str(path)})
                continue
            pending.append((path, key))
        return pending

    async def _upload(self, path: pathlib.Path, key: str) -> None:
        data = await asyncio.to_thread(path.read_bytes)
        await self.store.put(key, data)
        FILES_UPLOADED.inc()
        await asyncio.to_thread(path.unlink, missing_ok=True)
