"""Merging split sub-query answers: log limits and order, matrix concatenation, stats, bodies."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lokistack.frontend import merge
from lokistack.loghttp import encoding
from lokistack.model.labels import Labels

Entry = tuple[int, str]


def _streams(
    streams: dict[Labels, list[Entry]], start: int, end: int, direction: merge.Direction, limit: int
) -> list[dict[str, Any]]:
    """What the querier answers for ``[start, end)``: the first ``limit`` entries in direction."""
    backward = direction == "backward"
    picked = sorted(
        (
            (ts, labels, line)
            for labels, entries in streams.items()
            for ts, line in entries
            if start <= ts < end
        ),
        key=lambda item: item[0],
        reverse=backward,
    )[:limit]
    by_stream: dict[Labels, list[list[str]]] = {}
    for ts, labels, line in picked:
        by_stream.setdefault(labels, []).append([str(ts), line])
    return [{"stream": dict(labels), "values": values} for labels, values in by_stream.items()]


def _flat(result: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(json.dumps(s["stream"]), int(v[0])) for s in result for v in s["values"]]


A: Labels = (("app", "a"),)
B: Labels = (("app", "b"),)


def test_streams_limit_forward_takes_the_oldest() -> None:
    data = {A: [(1, "a1"), (4, "a4"), (7, "a7")], B: [(2, "b2"), (5, "b5"), (8, "b8")]}
    parts = [_streams(data, lo, lo + 3, "forward", 3) for lo in (0, 3, 6)]
    merged = merge.merge_streams(parts, "forward", 3)
    assert merged == [
        {"stream": {"app": "a"}, "values": [["1", "a1"], ["4", "a4"]]},
        {"stream": {"app": "b"}, "values": [["2", "b2"]]},
    ]


def test_streams_limit_backward_takes_the_newest() -> None:
    data = {A: [(1, "a1"), (4, "a4"), (7, "a7")], B: [(2, "b2"), (5, "b5"), (8, "b8")]}
    parts = [_streams(data, lo, lo + 3, "backward", 3) for lo in (6, 3, 0)]
    merged = merge.merge_streams(parts, "backward", 3)
    assert merged == [
        {"stream": {"app": "a"}, "values": [["7", "a7"]]},
        {"stream": {"app": "b"}, "values": [["8", "b8"], ["5", "b5"]]},
    ]


def test_streams_are_ordered_by_label_string() -> None:
    # Label-string order, not label-pair order: ',' < '"' < '}' decides here.
    labelsets: list[Labels] = [
        (("a", "b"),),
        (("a", "b"), ("c", "d")),
        (("a", "ba"),),
        (("b", "a"),),
    ]
    data = {labels: [(i, "x")] for i, labels in enumerate(labelsets)}
    merged = merge.merge_streams([_streams(data, 0, 10, "forward", 100)], "forward", 100)
    assert [m["stream"] for m in merged] == [
        {"a": "b", "c": "d"},
        {"a": "b"},
        {"a": "ba"},
        {"b": "a"},
    ]


def test_streams_stop_reading_parts_once_the_limit_is_met() -> None:
    first = [{"stream": {"app": "a"}, "values": [["9", "x"], ["8", "y"]]}]
    late = [{"stream": {"app": "z"}, "values": [["1", "late"]]}]
    assert merge.merge_streams([first, late], "backward", 2) == first
    assert merge.limit_reached([first], 2)
    assert not merge.limit_reached([first], 3)
    assert not merge.limit_reached([], 1)


@given(
    entries=st.lists(
        st.tuples(st.integers(0, 99), st.sampled_from([A, B, (("app", "c"),)])),
        unique_by=lambda e: e[0],
        max_size=40,
    ),
    cuts=st.lists(st.integers(1, 99), unique=True, max_size=5),
    limit=st.integers(1, 30),
    direction=st.sampled_from(["forward", "backward"]),
)
def test_streams_split_merge_equals_unsplit(
    entries: list[tuple[int, Labels]], cuts: list[int], limit: int, direction: merge.Direction
) -> None:
    data: dict[Labels, list[Entry]] = {}
    for ts, labels in entries:
        data.setdefault(labels, []).append((ts, f"line {ts}"))
    bounds = [0, *sorted(cuts), 100]
    windows = list(itertools.pairwise(bounds))
    if direction == "backward":
        windows.reverse()
    parts = [_streams(data, lo, hi, direction, limit) for lo, hi in windows]
    merged = merge.merge_streams(parts, direction, limit)
    unsplit = merge.merge_streams([_streams(data, 0, 100, direction, limit)], direction, limit)
    assert merged == unsplit
    assert len(_flat(merged)) == min(limit, len(entries))


def test_matrix_concatenates_series_in_time_order() -> None:
    first = [
        {"metric": {"app": "b"}, "values": [[1, "1"], [2, "2"]]},
        {"metric": {"app": "a", "z": "1"}, "values": [[2, "5"]]},
    ]
    second = [
        {"metric": {"app": "b"}, "values": [[2, "dup"], [3, "3"], [3.5, "4"]]},
        {"metric": {"app": "a"}, "values": [[3, "7"]]},
    ]
    assert merge.merge_matrix([first, second]) == [
        {"metric": {"app": "a"}, "values": [[3, "7"]]},
        {"metric": {"app": "a", "z": "1"}, "values": [[2, "5"]]},
        {"metric": {"app": "b"}, "values": [[1, "1"], [2, "2"], [3, "3"], [3.5, "4"]]},
    ]
    assert merge.merge_matrix([]) == []


def _stats(**summary: Any) -> dict[str, Any]:
    stats = json.loads(encoding.encode_stats(encoding.Stats()))
    stats["summary"].update(summary)
    return dict(stats)


def test_stats_are_summed() -> None:
    one = _stats(totalBytesProcessed=100, totalLinesProcessed=10, execTime=0.5, shards=1)
    two = _stats(totalBytesProcessed=300, totalLinesProcessed=30, execTime=1.5, shards=1)
    one["querier"]["store"]["chunk"]["decompressedBytes"] = 7
    two["querier"]["store"]["chunk"]["decompressedBytes"] = 5
    two["querier"]["store"]["queryReferencedStructuredMetadata"] = True
    two["querier"]["querierExecTime"] = 0.1
    one["querier"]["querierExecTime"] = 0.2
    merged = merge.merge_stats([one, two])
    assert merged["summary"]["totalBytesProcessed"] == 400
    assert merged["summary"]["execTime"] == 2.0
    assert merged["summary"]["bytesProcessedPerSecond"] == 200
    assert merged["summary"]["linesProcessedPerSecond"] == 20
    assert merged["summary"]["splits"] == merged["summary"]["subqueries"] == 2
    assert merged["summary"]["shards"] == 2
    assert merged["querier"]["store"]["chunk"]["decompressedBytes"] == 12
    assert merged["querier"]["store"]["queryReferencedStructuredMetadata"] is True
    assert merged["index"]["usedBloomFilters"] is False
    assert list(merged) == list(one)
    # Six decimals on the wire, as the querier writes them: 0.2 + 0.1 is not 0.30000000000000004.
    body = merge.response("matrix", [], merged).decode()
    assert '"querierExecTime":0.3}' in body
    assert '"execTime":2,' in body
    # The inputs are not modified.
    assert one["summary"]["splits"] == 0


def test_stats_refuse_mismatched_trees() -> None:
    with pytest.raises(ValueError, match="cannot merge"):
        merge.merge_stats([{"a": 1}, {"a": {"b": 1}}])
    with pytest.raises(ValueError, match="no statistics"):
        merge.merge_stats([])


LINE = '<a href="x">&amp;\b\f\t\u2028\u2029é\x7f'


def test_single_part_passes_through_byte_for_byte() -> None:
    streams: list[tuple[Labels, list[tuple[int, str]]]] = [
        ((("app", "<web>"), ("env", "a&b")), [(1700000000000000001, LINE), (17, "plain")]),
    ]
    body = encoding.query_response(
        "streams",
        encoding.encode_streams(streams),
        encoding.Stats(splits=1, subqueries=1),
        ["too <many>"],
    )
    merged = merge.merge_responses([json.loads(body)], "backward", 100)
    assert merged == body


def test_split_streams_equal_the_querier_body() -> None:
    labels: Labels = (("app", "x"),)
    entries = [(ts, f"{LINE} {ts}") for ts in range(10, 0, -1)]
    whole = encoding.query_response(
        "streams", encoding.encode_streams([(labels, entries[:4])]), encoding.Stats()
    )
    parts = [
        json.loads(
            encoding.query_response(
                "streams",
                encoding.encode_streams([(labels, [e for e in entries if lo <= e[0] < hi])]),
                encoding.Stats(),
            )
        )
        for lo, hi in ((8, 11), (4, 8), (0, 4))
    ]
    merged = merge.merge_responses(parts, "backward", 4)
    assert merged.split(b',"stats":')[0] == whole.split(b',"stats":')[0]


def test_matrix_response_and_warnings() -> None:
    part = {
        "status": "success",
        "warnings": ["w2", "w1"],
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {"a": "<b>"}, "values": [[1700000000.5, "1"]]}],
            "stats": {"summary": {"splits": 0}},
        },
    }
    other = {
        "status": "success",
        "warnings": ["w1"],
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {"a": "<b>"}, "values": [[1700000001, "NaN"]]}],
            "stats": {"summary": {"splits": 0}},
        },
    }
    assert merge.merge_responses([part, other], "backward", 100) == (
        b'{"status":"success","warnings":["w1","w2"],"data":{"resultType":"matrix","result":'
        b'[{"metric":{"a":"<b>"},"values":[[1700000000.5,"1"],[1700000001,"NaN"]]}],'
        b'"stats":{"summary":{"splits":2,"subqueries":2}}}}\n'
    )


def test_categorized_entries_keep_their_metadata_plain() -> None:
    result = [
        {
            "stream": {"app": "x"},
            "values": [["2", "<l>", {"structuredMetadata": {"t": "<v>"}}], ["1", "m", {}]],
        }
    ]
    body = merge.response("streams", result, {}, encoding_flags=["categorize-labels"])
    assert body == (
        b'{"status":"success","data":{"resultType":"streams","encodingFlags":["categorize-labels"],'
        b'"result":[{"stream":{"app":"x"},"values":[["2","\\u003cl\\u003e",'
        b'{"structuredMetadata":{"t":"<v>"}}],["1","m",{}]]}],"stats":{}}}\n'
    )


def test_responses_that_cannot_be_merged() -> None:
    vector = {"data": {"resultType": "vector", "result": [], "stats": {}}}
    matrix = {"data": {"resultType": "matrix", "result": [], "stats": {}}}
    with pytest.raises(ValueError, match="several vector"):
        merge.merge_responses([vector, vector], "backward", 1)
    with pytest.raises(ValueError, match="different result types"):
        merge.merge_responses([vector, matrix], "backward", 1)
    with pytest.raises(ValueError, match="no sub-query"):
        merge.merge_responses([], "backward", 1)
