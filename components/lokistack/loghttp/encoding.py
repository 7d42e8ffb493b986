"""JSON bodies of the query API, byte for byte as Loki's querier writes them.

Loki writes with json-iterator's ``ConfigFastest`` (``pkg/util/marshal``): log lines are
HTML-escaped (``<``, ``>``, ``&``, U+2028, U+2029 as ``\\u....``; invalid UTF-8 as ``\\ufffd``),
label names and values, warnings and metric values are not; control characters other than
``\\n``, ``\\r``, ``\\t`` are ``\\u00XX`` (also ``\\b`` and ``\\f``, unlike Python's json); floats
in ``stats`` have at most six decimals. Bodies end with a newline, tail messages do not.

Responses are built from ``json`` C-encoder output of whole lists plus bulk ``str.replace``, so a
5000-line result costs no Python work per character. Strings holding lone surrogates (bytes that
were not UTF-8, kept with ``surrogateescape``) come out as U+FFFD: escaped in lines, as Loki
does; raw in labels, where Go copies the invalid bytes and any Go client reads U+FFFD.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from lokistack.model import labels as model_labels

Labels = model_labels.Labels

JSON_CONTENT_TYPE: Final = "application/json; charset=UTF-8"
BUILDINFO_CONTENT_TYPE: Final = "application/json"
"""``/loki/api/v1/status/buildinfo`` is written by Go's ``encoding/json``, without a charset."""

CACHE_NAMES: Final = (
    "chunk",
    "index",
    "result",
    "statsResult",
    "volumeResult",
    "seriesResult",
    "labelResult",
    "instantMetricResult",
    "logResult",
    "taskResult",
)
_CACHE_KEYS: Final = (
    "entriesFound",
    "entriesRequested",
    "entriesStored",
    "bytesReceived",
    "bytesSent",
    "requests",
    "downloadTime",
    "queryLengthServed",
)
_DATAOBJ_KEYS: Final = (
    "prePredicateDecompressedRows",
    "prePredicateDecompressedBytes",
    "prePredicateDecompressedStructuredMetadataBytes",
    "postPredicateRows",
    "postPredicateDecompressedBytes",
    "postPredicateStructuredMetadataBytes",
    "postFilterRows",
    "pagesScanned",
    "pagesDownloaded",
    "pagesDownloadedBytes",
    "pageBatches",
    "totalRowsAvailable",
    "totalPageDownloadTime",
    "wireBytesTransferred",
)

_DUMPS: Final = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), check_circular=False, allow_nan=False
).encode
_SHORT_ESCAPE: Final = re.compile(r"\\[\\bf]")
_GO_ESCAPES: Final = {"\\\\": "\\\\", "\\b": "\\u0008", "\\f": "\\u000c"}
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_HTML: Final = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"))
_SEPARATORS: Final = (("\u2028", "\\u2028"), ("\u2029", "\\u2029"))
_EPOCH: Final = datetime.datetime(1970, 1, 1)


@dataclasses.dataclass(slots=True)
class CacheStats:
    """One cache's counters (Loki's ``stats.Cache``); times in nanoseconds."""

    entries_found: int = 0
    entries_requested: int = 0
    entries_stored: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    requests: int = 0
    download_time_ns: int = 0
    query_length_served_ns: int = 0

    def merge(self, other: CacheStats) -> None:
        """Add ``other``'s counters to these."""
        _merge(self, other)

    def to_json(self) -> dict[str, Any]:
        """The ``cache.<name>`` object (fields in Loki's order)."""
        return dict(zip(_CACHE_KEYS, dataclasses.astuple(self), strict=True))


@dataclasses.dataclass(slots=True)
class StoreStats:
    """Chunk reading on one side, the querier's store or the ingesters (Loki's ``stats.Store``)."""

    total_chunks_ref: int = 0
    total_chunks_downloaded: int = 0
    chunks_download_time_ns: int = 0
    chunk_refs_fetch_time_ns: int = 0
    head_chunk_bytes: int = 0
    head_chunk_lines: int = 0
    decompressed_bytes: int = 0
    decompressed_lines: int = 0
    compressed_bytes: int = 0
    total_duplicates: int = 0
    post_filter_lines: int = 0
    head_chunk_structured_metadata_bytes: int = 0
    decompressed_structured_metadata_bytes: int = 0
    query_referenced_structured_metadata: bool = False

    def merge(self, other: StoreStats) -> None:
        """Add ``other``'s counters to these (flags are or-ed)."""
        _merge(self, other)

    def to_json(self) -> dict[str, Any]:
        """The ``store`` object, with zeros for the dataobj counters Lokistack has no use for."""
        return {
            "totalChunksRef": self.total_chunks_ref,
            "totalChunksDownloaded": self.total_chunks_downloaded,
            "chunksDownloadTime": self.chunks_download_time_ns,
            "queryReferencedStructuredMetadata": self.query_referenced_structured_metadata,
            "queryUsedV2Engine": False,
            "chunk": {
                "headChunkBytes": self.head_chunk_bytes,
                "headChunkLines": self.head_chunk_lines,
                "decompressedBytes": self.decompressed_bytes,
                "decompressedLines": self.decompressed_lines,
                "compressedBytes": self.compressed_bytes,
                "totalDuplicates": self.total_duplicates,
                "postFilterLines": self.post_filter_lines,
                "headChunkStructuredMetadataBytes": self.head_chunk_structured_metadata_bytes,
                "decompressedStructuredMetadataBytes": self.decompressed_structured_metadata_bytes,
            },
            "chunkRefsFetchTime": self.chunk_refs_fetch_time_ns,
            "congestionControlLatency": 0,
            "pipelineWrapperFilteredLines": 0,
            "dataobj": dict.fromkeys(_DATAOBJ_KEYS, 0),
        }


@dataclasses.dataclass(slots=True)
class Stats:
    """What a query measured; ``to_json`` is Loki's ``stats`` tree (``pkg/logqlmodel/stats``).

    The summary's processed totals are derived from the two :class:`StoreStats`, as Loki's
    ``ComputeSummary`` does, so merged sub-query statistics stay consistent.
    """

    exec_time_s: float = 0.0
    queue_time_s: float = 0.0
    total_entries_returned: int = 0
    subqueries: int = 0
    splits: int = 0
    shards: int = 0
    querier_exec_time_s: float = 0.0
    store: StoreStats = dataclasses.field(default_factory=StoreStats)
    ingester_total_reached: int = 0
    ingester_total_chunks_matched: int = 0
    ingester_total_batches: int = 0
    ingester_total_lines_sent: int = 0
    ingester_store: StoreStats = dataclasses.field(default_factory=StoreStats)
    index_total_chunks: int = 0
    index_post_filter_chunks: int = 0
    index_total_streams: int = 0
    caches: dict[str, CacheStats] = dataclasses.field(default_factory=dict)

    def cache(self, name: str) -> CacheStats:
        """The counters of cache ``name`` (one of :data:`CACHE_NAMES`), created on first use."""
        if name not in CACHE_NAMES:
            raise KeyError(name)
        return self.caches.setdefault(name, CacheStats())

    def merge(self, other: Stats) -> None:
        """Add ``other`` (a sub-query's or a replica's statistics) to these."""
        _merge(self, other)

    @property
    def total_bytes_processed(self) -> int:
        """Decompressed and head-chunk bytes read by the querier and the ingesters."""
        return sum(
            s.decompressed_bytes + s.head_chunk_bytes for s in (self.store, self.ingester_store)
        )

    @property
    def total_lines_processed(self) -> int:
        """Decompressed and head-chunk lines read by the querier and the ingesters."""
        return sum(
            s.decompressed_lines + s.head_chunk_lines for s in (self.store, self.ingester_store)
        )

    @property
    def total_post_filter_lines(self) -> int:
        """Lines that passed the filters, on both sides."""
        return self.store.post_filter_lines + self.ingester_store.post_filter_lines

    @property
    def total_structured_metadata_bytes_processed(self) -> int:
        """Structured metadata bytes read, on both sides."""
        return sum(
            s.decompressed_structured_metadata_bytes + s.head_chunk_structured_metadata_bytes
            for s in (self.store, self.ingester_store)
        )

    def to_json(self, *, precise: bool = False) -> dict[str, Any]:
        """Loki's full key tree, in Loki's key order.

        Floats are rounded to six decimals as the query responses carry them, unless
        ``precise`` (the legacy v0 response writes them in full).
        """
        lossy = _identity if precise else _lossy
        total_bytes, total_lines = self.total_bytes_processed, self.total_lines_processed
        exec_s = _duration_seconds(self.exec_time_s)
        summary = {
            "bytesProcessedPerSecond": int(total_bytes / exec_s) if exec_s else 0,
            "linesProcessedPerSecond": int(total_lines / exec_s) if exec_s else 0,
            "totalBytesProcessed": total_bytes,
            "totalLinesProcessed": total_lines,
            "execTime": lossy(exec_s),
            "queueTime": lossy(_duration_seconds(self.queue_time_s)),
            "subqueries": self.subqueries,
            "totalEntriesReturned": self.total_entries_returned,
            "splits": self.splits,
            "shards": self.shards,
            "totalPostFilterLines": self.total_post_filter_lines,
            "totalStructuredMetadataBytesProcessed": (
                self.total_structured_metadata_bytes_processed
            ),
        }
        empty = CacheStats()
        return {
            "summary": summary,
            "querier": {
                "store": self.store.to_json(),
                "querierExecTime": lossy(self.querier_exec_time_s),
            },
            "ingester": {
                "totalReached": self.ingester_total_reached,
                "totalChunksMatched": self.ingester_total_chunks_matched,
                "totalBatches": self.ingester_total_batches,
                "totalLinesSent": self.ingester_total_lines_sent,
                "store": self.ingester_store.to_json(),
            },
            "cache": {name: self.caches.get(name, empty).to_json() for name in CACHE_NAMES},
            "index": {
                "totalChunks": self.index_total_chunks,
                "postFilterChunks": self.index_post_filter_chunks,
                "shardsDuration": 0,
                "usedBloomFilters": False,
                "totalStreams": self.index_total_streams,
                "chunkRefsLookupTime": 0,
                "bloomFilterTime": 0,
            },
        }


def encode_stats(stats: Stats) -> bytes:
    """The ``stats`` object as Loki writes it (six-decimal floats, ``0`` not ``0.0``)."""
    return _tree(stats.to_json()).encode()


def encode_json(obj: object) -> bytes:
    """Compact JSON like json-iterator's ``WriteString`` (no HTML escaping), for metric results."""
    return _plain(_DUMPS(obj)).encode()


def json_text(obj: object) -> str:
    """:func:`encode_json` as text: labels, metric values, warnings and other plain strings."""
    return _plain(_DUMPS(obj))


def json_html_text(obj: object) -> str:
    """Compact JSON like ``WriteStringWithHTMLEscaped``: how the querier writes log lines."""
    return _html(_DUMPS(obj))


def stats_tree_text(tree: Mapping[str, Any]) -> str:
    """A parsed ``stats`` tree written back as the querier writes it, floats rounded to six
    decimals (``WriteFloat64Lossy``): for trees summed from several answers."""
    return _tree(tree, lossy=True)


def encode_streams(streams: Sequence[tuple[Labels, Sequence[tuple[int, str]]]]) -> bytes:
    """``data.result`` of a log query: ``[{"stream":{..},"values":[["<ns>","<line>"],..]},..]``."""
    parts = [
        '{"stream":'
        + _labels(labels)
        + ',"values":'
        + _html(_DUMPS([[str(ts), line] for ts, line in entries]))
        + "}"
        for labels, entries in streams
    ]
    return ("[" + ",".join(parts) + "]").encode()


def query_response(
    result_type: str, result: bytes, stats: Stats, warnings: Sequence[str] = ()
) -> bytes:
    """The ``query``/``query_range`` body around an encoded ``data.result``."""
    head = '{"status":"success",'
    if warnings:
        head += '"warnings":' + _plain(_DUMPS(list(warnings))) + ","
    head += '"data":{"resultType":' + _plain(_DUMPS(result_type)) + ',"result":'
    return b"".join((head.encode(), result, b',"stats":', encode_stats(stats), b"}}\n"))


def label_response(values: Sequence[str]) -> bytes:
    """Label names or values; ``data`` is omitted when empty (``omitempty``)."""
    if not values:
        return b'{"status":"success"}\n'
    return ('{"status":"success","data":' + _plain(_DUMPS(list(values))) + "}\n").encode()


def series_response(series: Sequence[Labels]) -> bytes:
    """``/series``: one label object per series; ``data`` is ``[]`` when empty."""
    data = _plain(_DUMPS([dict(labels) for labels in series]))
    return ('{"status":"success","data":' + data + "}\n").encode()


def index_stats_response(streams: int, chunks: int, bytes_: int, entries: int) -> bytes:
    """``/index/stats``: the bare ``IndexStatsResponse``, no envelope."""
    return (
        f'{{"streams":{streams},"chunks":{chunks},"bytes":{bytes_},"entries":{entries}}}\n'
    ).encode()


def encode_std_json(obj: object) -> bytes:
    """``obj`` as Go's ``json.NewEncoder(w).Encode`` writes it: HTML-escaped, newline-terminated
    (``/format_query``)."""
    return (_html(_DUMPS(obj), std=True) + "\n").encode()


def buildinfo_response(
    version: str,
    *,
    revision: str = "",
    branch: str = "",
    build_user: str = "",
    build_date: str = "",
    go_version: str = "",
) -> bytes:
    """``/status/buildinfo``, written by ``encoding/json`` (HTML-escaped, newline-terminated)."""
    info = {
        "version": version,
        "revision": revision,
        "branch": branch,
        "buildUser": build_user,
        "buildDate": build_date,
        "goVersion": go_version,
    }
    return encode_std_json(info)


def tail_message(
    entries: Sequence[tuple[Labels, int, str]], dropped: Sequence[tuple[Labels, int]]
) -> str:
    """One tail WebSocket text frame: every entry its own stream; ``dropped_entries`` if any.

    Dropped entries are marshalled by json-iterator's default config, with HTML escaping, as
    ``{"timestamp":"<ns>","labels":{..}}`` (``labels`` omitted when empty).
    """
    label_cache: dict[Labels, str] = {}
    streams = []
    for labels, ts, line in entries:
        encoded = label_cache.get(labels)
        if encoded is None:
            encoded = label_cache[labels] = _labels(labels)
        streams.append(
            '{"stream":' + encoded + ',"values":[["' + str(ts) + '",' + _html(_DUMPS(line)) + "]]}"
        )
    text = '{"streams":[' + ",".join(streams) + "]"
    if dropped:
        items = []
        for labels, ts in dropped:
            item = '{"timestamp":"' + str(ts) + '"'
            if labels:
                item += ',"labels":' + _html(_DUMPS(dict(labels)))
            items.append(item + "}")
        text += ',"dropped_entries":[' + ",".join(items) + "]"
    return text + "}"


def legacy_streams_response(
    streams: Sequence[tuple[Labels, Sequence[tuple[int, str]]]], stats: Stats
) -> bytes:
    """``/api/prom/query`` (v0): ``{"streams":[{"labels":"{..}","entries":[{"ts","line"}]}]}``.

    Streams are marshalled by Go's ``encoding/json`` (HTML-escaped, RFC 3339 UTC times), the
    ``stats`` by json-iterator's default config (full-precision floats).
    """
    parts = [
        {
            "labels": model_labels.canonical(labels),
            "entries": [{"ts": _rfc3339_nano(ts), "line": line} for ts, line in entries] or None,
        }
        for labels, entries in streams
    ]
    tree = _tree(stats.to_json(precise=True))
    return ('{"streams":' + _html(_DUMPS(parts), std=True) + ',"stats":' + tree + "}\n").encode()


def legacy_label_response(values: Sequence[str]) -> bytes:
    """``/api/prom/label`` (v0): ``{"values":[...]}``, ``{}`` when empty."""
    if not values:
        return b"{}\n"
    return ('{"values":' + _html(_DUMPS(list(values))) + "}\n").encode()


def _labels(labels: Labels) -> str:
    return _plain(_DUMPS(dict(labels)))


def _go_escapes(text: str) -> str:
    """Python writes ``\\b`` and ``\\f``; Go writes ``\\u0008`` and ``\\u000c``."""
    if "\\b" not in text and "\\f" not in text:
        return text
    return _SHORT_ESCAPE.sub(lambda m: _GO_ESCAPES[m.group()], text)


def _plain(text: str) -> str:
    """Fix up ``json`` output to ``WriteString``: Go escapes, lone surrogates as raw U+FFFD."""
    text = _go_escapes(text)
    if not text.isascii() and _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    return text


def _html(text: str, *, std: bool = False) -> str:
    """Fix up ``json`` output to ``WriteStringWithHTMLEscaped``, or to Go's ``encoding/json``
    with ``std`` (which since Go 1.22 writes ``\\b`` and ``\\f`` as Python does)."""
    if not std:
        text = _go_escapes(text)
    for char, escape in _HTML:
        if char in text:
            text = text.replace(char, escape)
    if not text.isascii():
        for char, escape in _SEPARATORS:
            if char in text:
                text = text.replace(char, escape)
        if _SURROGATE.search(text):
            text = _SURROGATE.sub(lambda _: "\\ufffd", text)
    return text


def _merge(target: Any, other: Any) -> None:
    """Sum the numeric fields of two equal dataclasses, or flags, recurse into nested ones."""
    for field in dataclasses.fields(target):
        mine, theirs = getattr(target, field.name), getattr(other, field.name)
        if isinstance(mine, bool):
            setattr(target, field.name, mine or theirs)
        elif isinstance(mine, int | float):
            setattr(target, field.name, mine + theirs)
        elif isinstance(mine, dict):
            for name, cache in theirs.items():
                mine.setdefault(name, CacheStats()).merge(cache)
        else:
            mine.merge(theirs)


def _lossy(value: float) -> int | float:
    """json-iterator's ``WriteFloat64Lossy``: round half up to six decimals (as a number)."""
    if not math.isfinite(value):
        return 0
    magnitude = abs(value)
    if magnitude > 0x4FFFFFF:
        return value
    scaled = int(magnitude * 1e6 + 0.5)
    if scaled % 1_000_000 == 0:
        number: int | float = scaled // 1_000_000
    else:
        number = scaled / 1e6
    return -number if value < 0 else number


def _tree(value: object, *, lossy: bool = False) -> str:
    """Write a stats tree: ints, bools, floats as json-iterator writes them (``lossy``: rounded
    to six decimals first, as ``WriteFloat64Lossy``)."""
    if isinstance(value, Mapping):
        items = (_DUMPS(key) + ":" + _tree(item, lossy=lossy) for key, item in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        number = _lossy(value) if lossy else value
        return str(number) if isinstance(number, int) else _float64_text(number)
    return str(value)


def _duration_seconds(value: float) -> float:
    """Seconds as Loki has them: a ``time.Duration`` (whole nanoseconds) read by ``Seconds()``."""
    whole, nanos = divmod(int(abs(value) * 1e9), 10**9)
    seconds = float(whole) + float(nanos) / 1e9
    return -seconds if value < 0 else seconds


def _identity(value: float) -> float:
    return value


def _float64_text(value: float) -> str:
    """json-iterator's ``WriteFloat64``: shortest digits, 'e' form below 1e-6 and from 1e21."""
    if not math.isfinite(value):
        return "0"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        return repr(value)
    text = format(decimal.Decimal(repr(value)), "f")
    return text[:-2] if text.endswith(".0") else text


def _rfc3339_nano(ts_ns: int) -> str:
    """Go's ``time.Time`` JSON form in UTC: RFC 3339 with trailing fraction zeros removed."""
    seconds, nanos = divmod(ts_ns, 10**9)
    text = (_EPOCH + datetime.timedelta(seconds=seconds)).isoformat()
    return (text + "." + f"{nanos:09d}".rstrip("0") if nanos else text) + "Z"
