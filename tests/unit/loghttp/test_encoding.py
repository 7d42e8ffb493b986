"""Query API JSON bodies, byte for byte against what Loki's querier writes.

The golden bodies below were produced by Loki's own ``pkg/util/marshal`` writers on the same
input, so they pin json-iterator's escaping rules, key orders and float formatting.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from lokistack.loghttp import encoding
from lokistack.logql.engine import samples
from lokistack.model.labels import Labels

LINE = '<a href="x">&amp;\b\f\t\u2028\u2029é\udcff\x7f'


def golden_stats_tail() -> str:
    """Everything after ``"stats":`` for a zero ``Stats``, as Loki writes it."""
    store = (
        '{"totalChunksRef":0,"totalChunksDownloaded":0,"chunksDownloadTime":0,'
        '"queryReferencedStructuredMetadata":false,"queryUsedV2Engine":false,"chunk":{'
        '"headChunkBytes":0,"headChunkLines":0,"decompressedBytes":0,"decompressedLines":0,'
        '"compressedBytes":0,"totalDuplicates":0,"postFilterLines":0,'
        '"headChunkStructuredMetadataBytes":0,"decompressedStructuredMetadataBytes":0},'
        '"chunkRefsFetchTime":0,"congestionControlLatency":0,"pipelineWrapperFilteredLines":0,'
        '"dataobj":{"prePredicateDecompressedRows":0,"prePredicateDecompressedBytes":0,'
        '"prePredicateDecompressedStructuredMetadataBytes":0,"postPredicateRows":0,'
        '"postPredicateDecompressedBytes":0,"postPredicateStructuredMetadataBytes":0,'
        '"postFilterRows":0,"pagesScanned":0,"pagesDownloaded":0,"pagesDownloadedBytes":0,'
        '"pageBatches":0,"totalRowsAvailable":0,"totalPageDownloadTime":0,'
        '"wireBytesTransferred":0}}'
    )
    cache = (
        '{"entriesFound":0,"entriesRequested":0,"entriesStored":0,"bytesReceived":0,'
        '"bytesSent":0,"requests":0,"downloadTime":0,"queryLengthServed":0}'
    )
    names = [
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
    ]
    return (
        '{"summary":{"bytesProcessedPerSecond":0,"linesProcessedPerSecond":0,'
        '"totalBytesProcessed":0,"totalLinesProcessed":0,"execTime":0,"queueTime":0,'
        '"subqueries":0,"totalEntriesReturned":0,"splits":0,"shards":0,'
        '"totalPostFilterLines":0,"totalStructuredMetadataBytesProcessed":0},'
        '"querier":{"store":' + store + ',"querierExecTime":0},'
        '"ingester":{"totalReached":0,"totalChunksMatched":0,"totalBatches":0,'
        '"totalLinesSent":0,"store":' + store + "},"
        '"cache":{' + ",".join(f'"{name}":{cache}' for name in names) + "},"
        '"index":{"totalChunks":0,"postFilterChunks":0,"shardsDuration":0,'
        '"usedBloomFilters":false,"totalStreams":0,"chunkRefsLookupTime":0,"bloomFilterTime":0}}'
    )


def test_query_response_golden() -> None:
    streams: list[tuple[Labels, list[tuple[int, str]]]] = [
        (
            (("app", "<web>"), ("env", "a&b")),
            [(1700000000000000001, LINE), (1700000000000000000, "plain")],
        ),
        ((), []),
    ]
    body = encoding.query_response(
        "streams", encoding.encode_streams(streams), encoding.Stats(), ["too <many>"]
    )
    head = (
        b'{"status":"success","warnings":["too <many>"],"data":{"resultType":"streams",'
        b'"result":[{"stream":{"app":"<web>","env":"a&b"},"values":[["1700000000000000001",'
        b'"\\u003ca href=\\"x\\"\\u003e\\u0026amp;\\u0008\\u000c\\t\\u2028\\u2029\xc3\xa9'
        b'\\ufffd\x7f"],["1700000000000000000","plain"]]},{"stream":{},"values":[]}],"stats":'
    )
    assert body == head + golden_stats_tail().encode() + b"}}\n"


def test_query_response_without_warnings() -> None:
    body = encoding.query_response("vector", b"[]", encoding.Stats())
    assert body.startswith(b'{"status":"success","data":{"resultType":"vector","result":[],')


def test_stats_numbers_as_loki_writes_them() -> None:
    stats = encoding.Stats(exec_time_s=0.0123456789, queue_time_s=0.0000012)
    stats.store.decompressed_bytes = 1000
    body = encoding.encode_stats(stats).decode()
    assert body.startswith(
        '{"summary":{"bytesProcessedPerSecond":81000,"linesProcessedPerSecond":0,'
        '"totalBytesProcessed":1000,"totalLinesProcessed":0,"execTime":0.012346,'
        '"queueTime":0.000001,'
    )
    assert '"execTime":2,' in encoding.encode_stats(encoding.Stats(exec_time_s=2.0)).decode()


def test_stats_summary_derived_from_both_sides() -> None:
    stats = encoding.Stats(exec_time_s=2.0, total_entries_returned=7)
    stats.store.decompressed_bytes, stats.store.decompressed_lines = 100, 10
    stats.ingester_store.head_chunk_bytes, stats.ingester_store.head_chunk_lines = 50, 5
    stats.store.post_filter_lines, stats.ingester_store.post_filter_lines = 3, 4
    summary = stats.to_json()["summary"]
    assert summary["totalBytesProcessed"] == 150
    assert summary["totalLinesProcessed"] == 15
    assert summary["bytesProcessedPerSecond"] == 75
    assert summary["linesProcessedPerSecond"] == 7  # truncated, as Go's int64()
    assert summary["totalPostFilterLines"] == 7
    assert summary["totalEntriesReturned"] == 7
    assert "estimatedQueryBytes" not in summary  # omitempty
    assert "recvWaitTime" not in stats.to_json()["ingester"]  # omitempty


def test_stats_to_json_matches_its_encoding() -> None:
    stats = encoding.Stats(exec_time_s=1.23456789, queue_time_s=0.5, querier_exec_time_s=3.0)
    stats.cache("chunk").entries_found = 3
    assert json.loads(encoding.encode_stats(stats)) == stats.to_json()


def test_stats_merge() -> None:
    one = encoding.Stats(exec_time_s=1.0, splits=1, ingester_total_reached=3)
    one.store.total_chunks_ref = 2
    one.cache("chunk").requests = 1
    two = encoding.Stats(exec_time_s=0.5, splits=1, ingester_total_reached=3)
    two.store.total_chunks_ref = 5
    two.store.query_referenced_structured_metadata = True
    two.cache("chunk").requests = 2
    two.cache("result").entries_found = 4
    one.merge(two)
    assert (one.exec_time_s, one.splits, one.ingester_total_reached) == (1.5, 2, 6)
    assert one.store.total_chunks_ref == 7
    assert one.store.query_referenced_structured_metadata is True
    assert one.caches["chunk"].requests == 3
    assert one.caches["result"].entries_found == 4
    assert two.caches["chunk"].requests == 2  # the merged-in side is not changed


def test_stats_cache_names_are_loki_s() -> None:
    assert list(encoding.Stats().to_json()["cache"]) == list(encoding.CACHE_NAMES)
    assert len(encoding.Stats().to_json()["querier"]["store"]["dataobj"]) == 14


def test_tail_message_golden() -> None:
    message = encoding.tail_message(
        [((("app", "a<"),), 5, "x<y"), ((("app", "b"),), 6, "z")],
        [((("app", "a<"),), 4), ((), 3)],
    )
    assert message == (
        '{"streams":[{"stream":{"app":"a<"},"values":[["5","x\\u003cy"]]},'
        '{"stream":{"app":"b"},"values":[["6","z"]]}],'
        '"dropped_entries":[{"timestamp":"4","labels":{"app":"a\\u003c"}},{"timestamp":"3"}]}'
    )


def test_tail_message_without_drops() -> None:
    assert encoding.tail_message([], []) == '{"streams":[]}'


def test_label_response_golden() -> None:
    assert encoding.label_response(["a<b", "é\b"]) == (
        b'{"status":"success","data":["a<b","\xc3\xa9\\u0008"]}\n'
    )
    assert encoding.label_response([]) == b'{"status":"success"}\n'


def test_series_response_golden() -> None:
    assert encoding.series_response([(("app", "a<b"),), ()]) == (
        b'{"status":"success","data":[{"app":"a<b"},{}]}\n'
    )
    assert encoding.series_response([]) == b'{"status":"success","data":[]}\n'


def test_index_stats_response() -> None:
    assert encoding.index_stats_response(1, 2, 3, 4) == (
        b'{"streams":1,"chunks":2,"bytes":3,"entries":4}\n'
    )


def test_buildinfo_response_golden() -> None:
    body = encoding.buildinfo_response("3.0.0<", revision="abc", branch="main", go_version="go1\b")
    assert body == (
        b'{"version":"3.0.0\\u003c","revision":"abc","branch":"main","buildUser":"",'
        b'"buildDate":"","goVersion":"go1\\b"}\n'
    )


def test_legacy_label_response_golden() -> None:
    assert encoding.legacy_label_response(["a<b\b"]) == b'{"values":["a\\u003cb\\u0008"]}\n'
    assert encoding.legacy_label_response([]) == b"{}\n"


def test_legacy_streams_response() -> None:
    body = encoding.legacy_streams_response(
        [((("app", "x<"),), [(1700000000123450000, "l<\b")]), ((), [])],
        encoding.Stats(exec_time_s=1.5, queue_time_s=0.0000001),
    )
    assert body.startswith(
        b'{"streams":[{"labels":"{app=\\"x\\u003c\\"}","entries":[{"ts":'
        b'"2023-11-14T22:13:20.12345Z","line":"l\\u003c\\b"}]},'
        b'{"labels":"{}","entries":null}],"stats":{"summary":'
    )
    assert b'"execTime":1.5,"queueTime":1e-07,' in body
    assert body.endswith(b"}\n")


def test_encode_json_for_metric_results() -> None:
    vector = samples.Vector(ts_ns=1_588_889_221_500_000_000, samples=[((("job", "<a>"),), 2.0)])
    assert encoding.encode_json(vector.to_json()) == (
        b'[{"metric":{"job":"<a>"},"value":[1588889221.5,"2"]}]'
    )
    assert encoding.encode_json(["\b\f\\b"]) == b'["\\u0008\\u000c\\\\b"]'


def test_backslash_b_is_not_an_escape() -> None:
    body = encoding.encode_streams([((), [(1, "\\b\\f\\\\b\b")])])
    assert body == b'[{"stream":{},"values":[["1","\\\\b\\\\f\\\\\\\\b\\u0008"]]}]'


def test_invalid_utf8_in_labels_becomes_replacement_character() -> None:
    body = encoding.encode_streams([((("a", "x\udcff"),), [(1, "y\udcfe")])])
    assert body == b'[{"stream":{"a":"x\xef\xbf\xbd"},"values":[["1","y\\ufffd"]]}]'


_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from('<>&"\\\b\f\n\r\t\x00\x1f\x7f\u2028\u2029\ufffd'),
        st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF),
    )
)
_LABELS = st.dictionaries(st.from_regex(r"[a-z_]{1,5}", fullmatch=True), _TEXT, max_size=3)


def _clean(text: str) -> str:
    return re.sub("[\ud800-\udfff]", "\ufffd", text)


@given(
    st.lists(
        st.tuples(_LABELS, st.lists(st.tuples(st.integers(0, 2**63 - 1), _TEXT), max_size=5)),
        max_size=4,
    )
)
def test_streams_decode_to_the_input(
    raw: list[tuple[dict[str, str], list[tuple[int, str]]]],
) -> None:
    streams = [(tuple(sorted(labels.items())), entries) for labels, entries in raw]
    body = encoding.encode_streams(streams)
    expected: list[Any] = [
        {
            "stream": {name: _clean(value) for name, value in labels},
            "values": [[str(ts), _clean(line)] for ts, line in entries],
        }
        for labels, entries in streams
    ]
    assert json.loads(body) == expected
    for values in re.findall(r'"values":(\[\]|\[\[.*?\]\])', body.decode()):
        assert not set("<>&\u2028\u2029\b\f") & set(values)


@given(_TEXT)
def test_lines_escaped_exactly(line: str) -> None:
    body = encoding.encode_streams([((), [(1, line)])]).decode()
    value = body[len('[{"stream":{},"values":[["1",') : -len("]]}]")]
    assert json.loads(value) == _clean(line)
    for char in "<>&\u2028\u2029\b\f\x00":
        assert char not in value
    expected_escapes = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\b": "\\u0008"}
    for char, escape in expected_escapes.items():
        assert value.count(escape) >= line.count(char)


def test_five_thousand_lines_are_fast() -> None:
    line = 'level=info msg="request <done> & ok" caller=handler.go:42 duration=12ms é'
    entries = [(1_700_000_000_000_000_000 + i, f"{line} {i}") for i in range(5000)]
    streams: list[tuple[Labels, list[tuple[int, str]]]] = [((("app", "x"),), entries)]
    started = time.perf_counter()
    body = encoding.query_response("streams", encoding.encode_streams(streams), encoding.Stats())
    assert time.perf_counter() - started < 0.5
    assert body.count(b"\\u003cdone\\u003e \\u0026 ok") == 5000
