"""The index file format shared by its writer, its readers and the compactor.

Everything docs/format/index.md fixes as bytes or names lives here once: the SQLite schema and
its identification pragmas, the period arithmetic, the object key of an index file, and the two
value conversions SQLite forces on us (unsigned 64-bit fingerprints in signed integer columns,
label values that are not valid UTF-8).
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from typing import Final

from lokistack.model import tenant as tenant_ids

APPLICATION_ID: Final = 0x4C4B4958  # "LKIX"
FORMAT_VERSION: Final = 1
DAY_NS: Final = 86_400 * 1_000_000_000
INDEX_PREFIX: Final = "index/"
FILE_SUFFIX: Final = ".sqlite"

SCHEMA: Final = f"""
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {FORMAT_VERSION};
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series (
    fingerprint INTEGER PRIMARY KEY,
    labels      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS postings (
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,
    fingerprint INTEGER NOT NULL,
    PRIMARY KEY (name, value, fingerprint)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chunks (
    fingerprint INTEGER NOT NULL,
    "from"      INTEGER NOT NULL,
    "through"   INTEGER NOT NULL,
    key         TEXT NOT NULL,
    size        INTEGER NOT NULL,
    entries     INTEGER NOT NULL,
    PRIMARY KEY (key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunks_by_series ON chunks (fingerprint, "from");
"""

_TWO_64: Final = 1 << 64
_TWO_63: Final = 1 << 63
_FILE_NAME: Final = re.compile(r"(?P<owner>[^/.][^/]*)-(?P<ms>0|[1-9][0-9]*)\.sqlite")


class IndexFormatError(ValueError):
    """A file or key that is not in the index format this code knows."""


def period_of(ns: int) -> int:
    """The 24h period (day number since the epoch) that contains ``ns``."""
    return ns // DAY_NS


def periods_overlapping(from_ns: int, through_ns: int) -> range:
    """Every period that ``[from_ns, through_ns]`` touches (both ends inclusive)."""
    return range(period_of(from_ns), period_of(through_ns) + 1)


def period_bounds(period: int) -> tuple[int, int]:
    """The first and last nanosecond of ``period``."""
    return period * DAY_NS, (period + 1) * DAY_NS - 1


def check_tenant(tenant: str) -> str:
    """``tenant`` if it can be a key segment and a file name, else :class:`IndexFormatError`."""
    try:
        valid = bool(tenant) and tenant_ids.validate_tenant_id(tenant) == tenant
    except tenant_ids.TenantError as err:
        raise IndexFormatError(f"invalid tenant: {err.message}") from None
    if not valid:
        raise IndexFormatError(f"invalid tenant: {tenant!r}")
    return tenant


def check_ingester_id(ingester_id: str) -> str:
    """``ingester_id`` if it can start an index file name, else ``ValueError``."""
    if (
        not ingester_id
        or "/" in ingester_id
        or ingester_id.startswith(".")
        or "\x00" in ingester_id
    ):
        raise ValueError(f"ingester ID cannot name an index file: {ingester_id!r}")
    return ingester_id


def prefix(period: int, tenant: str) -> str:
    """``index/<period>/<tenant>/``: where one tenant's files of one period live."""
    return f"{INDEX_PREFIX}{period}/{check_tenant(tenant)}/"


def file_name(owner: str, sealed_ms: int) -> str:
    """``<owner>-<sealed unix ms>.sqlite``; ``owner`` is an ingester ID or ``compactor``."""
    return f"{check_ingester_id(owner)}-{sealed_ms}{FILE_SUFFIX}"


def index_key(period: int, tenant: str, owner: str, sealed_ms: int) -> str:
    """The object key of one index file."""
    return prefix(period, tenant) + file_name(owner, sealed_ms)


@dataclasses.dataclass(frozen=True, slots=True)
class IndexKey:
    period: int
    tenant: str
    owner: str
    sealed_ms: int


def parse_index_key(key: str) -> IndexKey:
    """Split ``index/<period>/<tenant>/<owner>-<ms>.sqlite``; :class:`IndexFormatError` if not."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] + "/" != INDEX_PREFIX or not parts[1].isdigit():
        raise IndexFormatError(f"not an index key: {key!r}")
    match = _FILE_NAME.fullmatch(parts[3])
    if match is None:
        raise IndexFormatError(f"not an index file name: {key!r}")
    return IndexKey(int(parts[1]), check_tenant(parts[2]), match["owner"], int(match["ms"]))


def fingerprint_to_sql(fingerprint: int) -> int:
    """An unsigned 64-bit fingerprint as the signed integer SQLite stores."""
    return fingerprint - _TWO_64 if fingerprint >= _TWO_63 else fingerprint


def fingerprint_from_sql(value: int) -> int:
    """The unsigned fingerprint of a stored signed integer."""
    return value + _TWO_64 if value < 0 else value


def value_to_sql(value: str) -> str | bytes:
    """A label value as stored: TEXT, or the raw bytes when it is not valid UTF-8.

    Values hold undecodable bytes as surrogate escapes (docs/format/labels.md), which SQLite's
    UTF-8 TEXT cannot carry.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape")
    return value


def value_from_sql(value: str | bytes) -> str:
    """The label value of a stored TEXT or BLOB."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


def check_file(connection: sqlite3.Connection, what: str) -> None:
    """Refuse a database that is not an index file of a version this code reads."""
    application_id = connection.execute("PRAGMA application_id").fetchone()[0]
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if application_id != APPLICATION_ID:
        raise IndexFormatError(f"{what} is not a Lokistack index file")
    if version != FORMAT_VERSION:
        raise IndexFormatError(f"{what} has index format version {version}, not {FORMAT_VERSION}")
