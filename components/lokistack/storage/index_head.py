"""The ingester's writable index: one local SQLite head per (tenant, period).

A flush writes its chunk object first and then records the chunk here, so the head is the only
place a freshly flushed chunk is findable until the shipper seals the head into an immutable file
and uploads it (docs/format/index.md). Heads therefore use SQLite's WAL journal: a committed row
survives a killed process, and heads a previous process left behind are sealed like any other.

SQLite calls block, so :meth:`IndexHead.add_chunk` runs them in a worker thread; one lock
serialises every head because flushes and the shipper arrive from different threads and sealing
must never copy a head while a row is half written.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pathlib
import sqlite3
import threading
import time

from lokistack import fileutil
from lokistack.model import labels as model_labels
from lokistack.storage import index_format

_log = logging.getLogger(__name__)

HEADS_DIR = "heads"
SEALED_DIR = "sealed"
TMP_PREFIX = ".tmp-"
_HEAD_SUFFIXES = ("", "-wal", "-shm", "-journal")


@dataclasses.dataclass
class _Head:
    path: pathlib.Path
    connection: sqlite3.Connection
    fingerprints: set[int]  # as stored (signed): series rows already present


class IndexHead:
    """Every head database of one ingester, under ``<index_dir>/heads/<period>/<tenant>.sqlite``."""

    def __init__(self, index_dir: str | os.PathLike[str]) -> None:
        self.index_dir = pathlib.Path(index_dir)
        self.heads_dir = self.index_dir / HEADS_DIR
        self.sealed_dir = self.index_dir / SEALED_DIR
        self._lock = threading.Lock()
        self._heads: dict[tuple[str, int], _Head] = {}

    async def add_chunk(  # noqa: PLR0917 - the positional signature flush calls
        self,
        tenant: str,
        fingerprint: int,
        labels: str,
        from_ns: int,
        through_ns: int,
        key: str,
        size: int,
        entries: int,
    ) -> None:
        """Record a flushed chunk in the head of every period it overlaps.

        ``labels`` is the stream's canonical label string; its series and postings rows are
        written the first time a head sees ``fingerprint``.
        """
        index_format.check_tenant(tenant)
        if not 0 <= from_ns <= through_ns:
            raise ValueError(f"invalid chunk bounds: from {from_ns}, through {through_ns}")
        if size < 0 or entries < 0:
            raise ValueError(f"invalid chunk size {size} or entry count {entries}")
        row = (
            index_format.fingerprint_to_sql(fingerprint),
            from_ns,
            through_ns,
            key,
            size,
            entries,
        )
        await asyncio.to_thread(self._add_chunk, tenant, labels, row)

    def seal(self, ingester_id: str, sealed_ms: int | None = None) -> list[pathlib.Path]:
        """Seal every head with chunk rows into ``sealed/<period>/<tenant>/<ingester>-<ms>.sqlite``.

        Blocking; call it from a worker thread. Includes heads left on disk by an earlier
        process. Each sealed head is deleted, so the next :meth:`add_chunk` starts a new one;
        heads without chunk rows are deleted without a file. Returns the files written.
        """
        index_format.check_ingester_id(ingester_id)
        millis = int(time.time() * 1000) if sealed_ms is None else sealed_ms
        sealed: list[pathlib.Path] = []
        with self._lock:
            for tenant, period in sorted(set(self._heads) | self._heads_on_disk()):
                target = self._seal_one(tenant, period, ingester_id, millis)
                if target is not None:
                    sealed.append(target)
        return sealed

    def close(self) -> None:
        """Close every open head; their rows stay on disk for the next :meth:`seal`."""
        with self._lock:
            for head in self._heads.values():
                head.connection.close()
            self._heads.clear()

    # -- blocking parts ------------------------------------------------------------------------

    def _add_chunk(
        self, tenant: str, labels: str, row: tuple[int, int, int, str, int, int]
    ) -> None:
        fingerprint, from_ns, through_ns = row[0], row[1], row[2]
        with self._lock:
            periods = index_format.periods_overlapping(from_ns, through_ns)
            heads = [self._open(tenant, period) for period in periods]
            # Parse before writing anything, so bad labels leave every head untouched.
            postings = (
                _postings(labels, fingerprint)
                if any(fingerprint not in head.fingerprints for head in heads)
                else []
            )
            for head in heads:
                with head.connection:  # one transaction per head
                    if fingerprint not in head.fingerprints:
                        head.connection.execute(
                            "INSERT OR IGNORE INTO series (fingerprint, labels) VALUES (?, ?)",
                            (fingerprint, labels),
                        )
                        head.connection.executemany(
                            "INSERT OR IGNORE INTO postings (name, value, fingerprint) "
                            "VALUES (?, ?, ?)",
                            postings,
                        )
                    head.connection.execute(
                        'INSERT OR IGNORE INTO chunks (fingerprint, "from", "through", key, size, '
                        "entries) VALUES (?, ?, ?, ?, ?, ?)",
                        row,
                    )
                head.fingerprints.add(fingerprint)

    def _path(self, tenant: str, period: int) -> pathlib.Path:
        return self.heads_dir / str(period) / f"{tenant}{index_format.FILE_SUFFIX}"

    def _open(self, tenant: str, period: int) -> _Head:
        head = self._heads.get((tenant, period))
        if head is not None:
            return head
        path = self._path(tenant, period)
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, check_same_thread=False)
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.executescript(index_format.SCHEMA)
            index_format.check_file(connection, str(path))
            with connection:
                connection.executemany(
                    "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                    [("tenant", tenant), ("period", str(period))],
                )
            fingerprints = {fp for (fp,) in connection.execute("SELECT fingerprint FROM series")}
        except BaseException:
            connection.close()
            raise
        head = _Head(path, connection, fingerprints)
        self._heads[(tenant, period)] = head
        return head

    def _heads_on_disk(self) -> set[tuple[str, int]]:
        found: set[tuple[str, int]] = set()
        for path in self.heads_dir.glob(f"*/*{index_format.FILE_SUFFIX}"):
            if not path.parent.name.isdigit():
                continue
            tenant = path.name.removesuffix(index_format.FILE_SUFFIX)
            try:
                found.add((index_format.check_tenant(tenant), int(path.parent.name)))
            except index_format.IndexFormatError:
                _log.warning("ignoring unexpected file in index heads", extra={"path": str(path)})
        return found

    def _seal_one(
        self, tenant: str, period: int, ingester_id: str, millis: int
    ) -> pathlib.Path | None:
        try:
            head = self._heads.pop((tenant, period), None) or self._open_for_seal(tenant, period)
        except (sqlite3.DatabaseError, index_format.IndexFormatError) as err:
            self._quarantine(self._path(tenant, period), err)
            return None
        try:
            (chunk_rows,) = head.connection.execute("SELECT count(*) FROM chunks").fetchone()
            target = None
            if chunk_rows:
                target = self._unused_target(tenant, period, ingester_id, millis)
                tmp = target.with_name(TMP_PREFIX + target.name)
                tmp.unlink(missing_ok=True)
                head.connection.execute("VACUUM INTO ?", (str(tmp),))
                fileutil.fsync_file(tmp)
                tmp.replace(target)
                fileutil.fsync_directory(target.parent)
        finally:
            head.connection.close()
        for suffix in _HEAD_SUFFIXES:
            pathlib.Path(f"{head.path}{suffix}").unlink(missing_ok=True)
        return target

    def _open_for_seal(self, tenant: str, period: int) -> _Head:
        head = self._open(tenant, period)
        del self._heads[(tenant, period)]
        return head

    def _unused_target(
        self, tenant: str, period: int, ingester_id: str, millis: int
    ) -> pathlib.Path:
        directory = self.sealed_dir / str(period) / tenant
        directory.mkdir(parents=True, exist_ok=True)
        while (directory / index_format.file_name(ingester_id, millis)).exists():
            millis += 1  # names never repeat, even for two seals in one millisecond
        return directory / index_format.file_name(ingester_id, millis)

    def _quarantine(self, path: pathlib.Path, err: Exception) -> None:
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time() * 1000)}")
        _log.error(
            "index head is unreadable; moved aside",
            extra={"path": str(path), "moved_to": str(aside), "err": str(err)},
        )
        path.replace(aside)
        for suffix in _HEAD_SUFFIXES[1:]:
            pathlib.Path(f"{path}{suffix}").unlink(missing_ok=True)


def _postings(labels: str, fingerprint: int) -> list[tuple[str, str | bytes, int]]:
    parsed = model_labels.parse_labels(labels)
    if model_labels.canonical(parsed) != labels:
        raise ValueError(f"labels are not in canonical form: {labels!r}")
    return [(name, index_format.value_to_sql(value), fingerprint) for name, value in parsed]
