"""Find a tenant's chunks by label matchers and time range in the uploaded index files.

Index files never change once uploaded (docs/format/index.md), so the reader keeps a local copy
of every file it has used, named by its object key, and a query only lists the period prefixes
and downloads what is new. Each file is queried with one SQL statement; the results of all files
are merged by fingerprint and de-duplicated by chunk key, because the same chunk is recorded by
every replica's ingester and may be shipped twice after a crash.

Matchers follow Prometheus: a missing label reads as ``""`` and regular expressions are RE2,
fully anchored, with ``.`` matching newlines. SQLite and downloads run off the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pathlib
import secrets
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Final, Literal, get_args

import prometheus_client
import re2

from lokistack.storage import index_format, objstore

_log = logging.getLogger(__name__)

MatchOp = Literal["=", "!=", "=~", "!~"]
MATCH_OPS: Final[tuple[MatchOp, ...]] = get_args(MatchOp)
DOWNLOAD_PARALLELISM: Final = 8

CACHED_FILES: Final = prometheus_client.Gauge(
    "lokistack_index_reader_cached_files", "Index files held in the querier's local cache."
)
FILES_DOWNLOADED: Final = prometheus_client.Counter(
    "lokistack_index_reader_files_downloaded_total", "Index files downloaded into the cache."
)


@dataclasses.dataclass(frozen=True, slots=True)
class Matcher:
    """``name op value``; a regex ``value`` is compiled once, fully anchored."""

    name: str
    op: MatchOp
    value: str
    _regex: re2._Regexp | None = dataclasses.field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.op not in MATCH_OPS:
            raise ValueError(f"unknown match operator {self.op!r}")
        if self.op in ("=~", "!~"):
            try:
                compiled = re2.compile("(?s:" + self.value + ")")
            except re2.error as err:
                raise ValueError(f"invalid regular expression {self.value!r}: {err}") from None
            object.__setattr__(self, "_regex", compiled)

    def matches(self, value: str) -> bool:
        """Whether a label value (``""`` for an absent label) satisfies this matcher."""
        if self._regex is None:
            return (value == self.value) == (self.op == "=")
        try:
            found = self._regex.fullmatch(value) is not None
        except UnicodeEncodeError:  # bytes that are not UTF-8: Go reads each as U+FFFD
            text = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            found = self._regex.fullmatch(text) is not None
        return found == (self.op == "=~")


@dataclasses.dataclass(frozen=True, slots=True)
class ChunkRef:
    key: str
    from_ns: int
    through_ns: int
    size: int
    entries: int


@dataclasses.dataclass(frozen=True, slots=True)
class SeriesRef:
    fingerprint: int
    labels: str
    chunks: list[ChunkRef]


class IndexReader:
    """Queries index files from ``store``, cached under ``cache_dir``."""

    def __init__(self, store: objstore.ObjectStore, cache_dir: str | os.PathLike[str]) -> None:
        self.store = store
        self.cache_dir = pathlib.Path(cache_dir)
        self._downloads = asyncio.Semaphore(DOWNLOAD_PARALLELISM)
        # Files a previous process cached are still valid: count them once.
        CACHED_FILES.inc(
            sum(1 for _ in self.cache_dir.glob(f"index/*/*/*{index_format.FILE_SUFFIX}"))
        )

    async def series(
        self, tenant: str, from_ns: int, through_ns: int, matchers: Sequence[Matcher]
    ) -> list[SeriesRef]:
        """The series matching every matcher with their chunks overlapping the range.

        ``[from_ns, through_ns]`` is inclusive at both ends; every period it overlaps is listed,
        so callers bound it. Series are sorted by labels, chunks by ``(from, through, key)``.
        """
        index_format.check_tenant(tenant)
        # No index file can hold a chunk from beyond tomorrow; an open-ended range must not
        # list every future period. Callers bound the past (the querier's max_query_length).
        through_ns = min(through_ns, time.time_ns() + index_format.DAY_NS)
        if from_ns > through_ns or through_ns < 0:
            return []
        periods = index_format.periods_overlapping(max(0, from_ns), through_ns)
        per_period = await asyncio.gather(*(self._sync_period(p, tenant) for p in periods))
        files = [path for paths in per_period for path in paths]
        if not files:
            return []
        return await asyncio.to_thread(_lookup, files, from_ns, through_ns, list(matchers))

    async def _sync_period(self, period: int, tenant: str) -> list[pathlib.Path]:
        """Cached paths of every index file of the period, downloading the ones missing."""
        prefix = index_format.prefix(period, tenant)
        for attempt in (1, 2):
            listed = [
                info.key
                for info in await self.store.list(prefix)
                if info.key.endswith(index_format.FILE_SUFFIX)
                and "/" not in info.key[len(prefix) :]
            ]
            await asyncio.to_thread(self._evict_unlisted, prefix, listed)
            try:
                return list(await asyncio.gather(*(self._cached(key) for key in listed)))
            except objstore.ObjectNotFoundError:
                if attempt == 2:
                    raise
                # Replaced by the compactor between our list and get: the merged file is listed now.
                _log.info(
                    "index file vanished while downloading; listing again", extra={"p": prefix}
                )
        raise AssertionError("unreachable")

    async def _cached(self, key: str) -> pathlib.Path:
        path = self.cache_dir.joinpath(*objstore.validate_key(key).split("/"))
        if await asyncio.to_thread(path.is_file):
            return path
        async with self._downloads:
            data = await self.store.get(key)
        await asyncio.to_thread(_write_atomically, path, data)
        FILES_DOWNLOADED.inc()
        CACHED_FILES.inc()
        return path

    def _evict_unlisted(self, prefix: str, listed: list[str]) -> None:
        directory = self.cache_dir.joinpath(*prefix.rstrip("/").split("/"))
        if not directory.is_dir():
            return
        keep = {key.rsplit("/", 1)[1] for key in listed}
        for path in directory.iterdir():
            if path.suffix == index_format.FILE_SUFFIX and path.name not in keep:
                path.unlink(missing_ok=True)
                CACHED_FILES.dec()


def _write_atomically(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


_Row = tuple[int, str, int, int, str, int, int]


def _lookup(
    files: list[pathlib.Path], from_ns: int, through_ns: int, matchers: list[Matcher]
) -> list[SeriesRef]:
    """Query and merge in one worker thread: both are CPU work the event loop must not wait on."""
    return _merge(_query_files(files, from_ns, through_ns, matchers))


def _query_files(
    files: list[pathlib.Path], from_ns: int, through_ns: int, matchers: list[Matcher]
) -> list[_Row]:
    sql, params = _statement(from_ns, through_ns, matchers)
    match = _match_function(matchers)
    rows: list[_Row] = []
    for path in files:
        uri = "file:" + urllib.parse.quote(str(path.absolute())) + "?mode=ro&immutable=1"
        connection = sqlite3.connect(uri, uri=True)
        try:
            index_format.check_file(connection, str(path))
            connection.create_function("lokistack_match", 2, match, deterministic=True)
            rows.extend(connection.execute(sql, params))
        finally:
            connection.close()
    return rows


def _match_function(matchers: list[Matcher]) -> Callable[[int, str | bytes], bool]:
    """The SQL function ``lokistack_match(matcher index, value)``, memoised per value.

    Label values repeat across series and files, and a regex call through the RE2 wrapper costs
    several microseconds, so each distinct value is matched once per query.
    """
    memo: dict[tuple[int, str | bytes], bool] = {}

    def match(index: int, value: str | bytes) -> bool:
        found = memo.get((index, value))
        if found is None:
            found = memo[(index, value)] = matchers[index].matches(
                index_format.value_from_sql(value)
            )
        return found

    return match


def _statement(from_ns: int, through_ns: int, matchers: list[Matcher]) -> tuple[str, list[object]]:
    """One SELECT over chunks joined to series, restricted by every matcher's postings."""
    clauses = ['c."from" <= ?', 'c."through" >= ?']
    params: list[object] = [through_ns, from_ns]
    for index, matcher in enumerate(matchers):
        if matcher.op == "=" and matcher.value:
            clauses.append(
                "c.fingerprint IN (SELECT fingerprint FROM postings WHERE name = ? AND value = ?)"
            )
            params += [matcher.name, index_format.value_to_sql(matcher.value)]
        elif matcher.matches(""):
            # Matches a missing label: exclude only series whose value fails the matcher.
            clauses.append(
                "c.fingerprint NOT IN (SELECT fingerprint FROM postings "
                "WHERE name = ? AND NOT lokistack_match(?, value))"
            )
            params += [matcher.name, index]
        else:
            clauses.append(
                "c.fingerprint IN (SELECT fingerprint FROM postings "
                "WHERE name = ? AND lokistack_match(?, value))"
            )
            params += [matcher.name, index]
    sql = (
        'SELECT c.fingerprint, s.labels, c."from", c."through", c.key, c.size, c.entries '
        "FROM chunks AS c JOIN series AS s ON s.fingerprint = c.fingerprint WHERE "
        + " AND ".join(clauses)
    )
    return sql, params


def _merge(rows: list[_Row]) -> list[SeriesRef]:
    series: dict[int, tuple[str, dict[str, ChunkRef]]] = {}
    for fingerprint, labels, from_ns, through_ns, key, size, entries in rows:
        entry = series.get(fingerprint)
        if entry is None:
            entry = series[fingerprint] = (labels, {})
        entry[1].setdefault(key, ChunkRef(key, from_ns, through_ns, size, entries))
    merged = [
        SeriesRef(
            index_format.fingerprint_from_sql(fingerprint),
            labels,
            sorted(chunks.values(), key=lambda c: (c.from_ns, c.through_ns, c.key)),
        )
        for fingerprint, (labels, chunks) in series.items()
    ]
    merged.sort(key=lambda s: (s.labels, s.fingerprint))
    return merged
