"""Merging the querier's answers to the sub-queries of one split query into the client's answer.

The inputs are the querier's JSON bodies, parsed (``{"status":"success","data":{"resultType":..,
"result":..,"stats":..}}``); the output is the body Loki's frontend would send, byte for byte in
the querier's envelope and escaping, so a client cannot tell a split query from an unsplit one.

* Log results (Loki's ``mergeOrderedNonOverlappingStreams``): the pieces cover disjoint time
  windows, so a stream's entries are the concatenation of its pieces' entries in direction order;
  across streams the ``limit`` entries that come first in direction order are kept. Streams are
  ordered by their label string, as the querier orders them.
* Metric results: a series' points are the concatenation of its pieces' points, in time order.
* Statistics are summed, as Loki's ``Result.MergeSplit`` does, and the summary's derived rates
  recomputed from the sums.

The body is written with :mod:`lokistack.loghttp.encoding`, the querier's own JSON writer (lines
HTML-escaped, everything else not, stats floats rounded as Loki rounds them).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from lokistack.loghttp import encoding
from lokistack.model import labels as model_labels

Direction = Literal["forward", "backward"]
Json = Any
"""A parsed JSON value."""


def merge_responses(parts: Sequence[Mapping[str, Json]], direction: Direction, limit: int) -> bytes:
    """The client's body from the parsed sub-query bodies, given in execution order.

    Log pieces come in direction order (newest first for ``backward``), metric pieces oldest
    first. Warnings are deduplicated and sorted, as Loki does. A single ``vector`` or ``scalar``
    part passes through; several cannot be merged (instant queries are not split).
    """
    if not parts:
        raise ValueError("no sub-query responses to merge")
    datas = [part["data"] for part in parts]
    result_type = datas[0]["resultType"]
    if any(data["resultType"] != result_type for data in datas):
        raise ValueError("sub-query responses of different result types")
    results = [data["result"] for data in datas]
    result: Json
    if result_type == "streams":
        result = merge_streams(results, direction, limit)
    elif result_type == "matrix":
        result = merge_matrix(results)
    elif len(results) == 1:
        result = results[0]
    else:
        raise ValueError(f"cannot merge several {result_type} results")
    warnings = sorted({w for part in parts for w in part.get("warnings") or ()})
    stats = merge_stats([data.get("stats") or {} for data in datas])
    flags = datas[0].get("encodingFlags") or ()
    return response(result_type, result, stats, warnings, encoding_flags=flags)


def entry_count(result: Sequence[Mapping[str, Json]]) -> int:
    """The number of log entries in a ``streams`` result."""
    return sum(len(stream["values"]) for stream in result)


def limit_reached(parts_so_far: Iterable[Sequence[Mapping[str, Json]]], limit: int) -> bool:
    """Whether the ``streams`` results so far already hold ``limit`` entries.

    Valid when they are the first pieces in direction order (no earlier piece missing): the
    later pieces' entries all come after theirs, so dispatching them cannot change the answer.
    Loki's ``splitByInterval.Process`` stops on the same count.
    """
    return sum(entry_count(result) for result in parts_so_far) >= limit


def merge_streams(
    parts: Sequence[Sequence[Mapping[str, Json]]], direction: Direction, limit: int
) -> list[dict[str, Json]]:
    """Merge the ``streams`` results of disjoint time pieces and keep the first ``limit`` entries.

    ``parts`` are in direction order. Entries keep their JSON form (``[ts, line]`` or the
    categorize-labels triple); a stream is identified by its label string (Prometheus
    ``labels.String()`` of the sorted pairs), which also orders the result. Entries with equal
    timestamps at the limit are taken in label-string order (Loki's heap leaves that order open).
    """
    groups: dict[str, tuple[Mapping[str, Json], list[list[Json]]]] = {}
    total = 0
    for result in parts:
        for stream in result:
            key = _label_string(stream["stream"])
            group = groups.setdefault(key, (stream["stream"], []))
            group[1].append(stream["values"])
            total += len(stream["values"])
        if total >= limit:
            break  # later pieces hold only entries after these: none can make the cut
    backward = direction == "backward"
    merged = {key: _concat(chunks, backward) for key, (_, chunks) in groups.items()}
    if total > limit:
        merged = _first_entries(merged, limit, backward)
    return [
        {"stream": groups[key][0], "values": merged[key]} for key in sorted(merged) if merged[key]
    ]


def merge_matrix(parts: Sequence[Sequence[Mapping[str, Json]]]) -> list[dict[str, Json]]:
    """Concatenate the ``matrix`` results per series; points in time order, one per timestamp.

    Series are ordered by their sorted label pairs (Prometheus ``labels.Compare``). Pieces do not
    share timestamps, but if two did, the first piece's point is kept.
    """
    series: dict[tuple[tuple[str, str], ...], tuple[Mapping[str, str], dict[Json, Json]]] = {}
    for result in parts:
        for item in result:
            key = tuple(sorted(item["metric"].items()))
            _, points = series.setdefault(key, (item["metric"], {}))
            for point in item["values"]:
                points.setdefault(point[0], point)
    return [
        {"metric": metric, "values": sorted(points.values(), key=_timestamp)}
        for _, (metric, points) in sorted(series.items(), key=_series_key)
    ]


def merge_stats(parts: Sequence[Mapping[str, Json]]) -> dict[str, Json]:
    """Sum the ``stats`` trees: numbers added, flags or-ed, keys in first-seen order.

    As Loki's ``MergeSplit``: ``summary.splits`` (and here ``summary.subqueries``) is the number
    of parts, ``estimatedQueryBytes`` the largest, and the per-second rates are recomputed from
    the summed totals and execution time (a sum of rates means nothing).
    """
    if not parts:
        raise ValueError("no statistics to merge")
    merged: dict[str, Json] = {}
    for part in parts:
        _add_tree(merged, part)
    summary = merged.get("summary")
    if isinstance(summary, dict):
        summary["splits"] = summary["subqueries"] = len(parts)
        if "estimatedQueryBytes" in summary:
            summary["estimatedQueryBytes"] = max(
                p.get("summary", {}).get("estimatedQueryBytes", 0) for p in parts
            )
        exec_s = summary.get("execTime", 0)
        for rate, total in (
            ("bytesProcessedPerSecond", "totalBytesProcessed"),
            ("linesProcessedPerSecond", "totalLinesProcessed"),
        ):
            if rate in summary:
                summary[rate] = int(summary.get(total, 0) / exec_s) if exec_s else 0
    return merged


def response(
    result_type: str,
    result: Json,
    stats: Mapping[str, Json],
    warnings: Sequence[str] = (),
    *,
    encoding_flags: Sequence[str] = (),
) -> bytes:
    """The ``query``/``query_range`` body, with the querier's key order and escaping.

    ``{"status":"success",["warnings":[..],]"data":{"resultType":..,["encodingFlags":[..],]
    "result":..,"stats":..}}`` and a newline. Log lines are HTML-escaped; labels, metric
    values and warnings are not; stats floats have at most six decimals.
    """
    head = '{"status":"success",'
    if warnings:
        head += '"warnings":' + encoding.json_text(list(warnings)) + ","
    head += '"data":{"resultType":' + encoding.json_text(result_type) + ","
    if encoding_flags:
        head += '"encodingFlags":' + encoding.json_text(list(encoding_flags)) + ","
    body = _streams(result) if result_type == "streams" else encoding.json_text(result)
    stats_text = encoding.stats_tree_text(stats)
    return (head + '"result":' + body + ',"stats":' + stats_text + "}}\n").encode()


def _label_string(labels: Mapping[str, str]) -> str:
    return model_labels.canonical(tuple(sorted(labels.items())))


def _timestamp(entry: Sequence[Json]) -> int | float:
    """A log entry's (ns string) or a point's (seconds) timestamp, as a number."""
    ts = entry[0]
    return int(ts) if isinstance(ts, str) else ts


def _series_key(item: tuple[tuple[tuple[str, str], ...], object]) -> tuple[tuple[str, str], ...]:
    return item[0]


def _concat(chunks: list[list[Json]], backward: bool) -> list[Json]:
    """One stream's entries: its pieces' lists ordered by first entry (Loki's ``byDir``)."""
    chunks = [chunk for chunk in chunks if chunk]
    chunks.sort(key=lambda chunk: _timestamp(chunk[0]), reverse=backward)
    return list(itertools.chain.from_iterable(chunks))


def _first_entries(
    streams: dict[str, list[Json]], limit: int, backward: bool
) -> dict[str, list[Json]]:
    """Each stream's share of the first ``limit`` entries across all streams, direction order."""
    sign = -1 if backward else 1
    runs = [
        [(sign * _timestamp(entry), key, entry) for entry in entries]
        for key, entries in sorted(streams.items())
    ]
    kept: dict[str, list[Json]] = {key: [] for key in streams}
    for _, key, entry in itertools.islice(heapq.merge(*runs, key=_heap_key), limit):
        kept[key].append(entry)
    return kept


def _heap_key(item: tuple[int | float, str, Json]) -> tuple[int | float, str]:
    return item[0], item[1]


def _add_tree(target: dict[str, Json], other: Mapping[str, Json]) -> None:
    for key, value in other.items():
        mine = target.get(key)
        if mine is None:
            target[key] = _copy_tree(value)
        elif isinstance(mine, dict) and isinstance(value, Mapping):
            _add_tree(mine, value)
        elif isinstance(mine, bool) and isinstance(value, bool):
            target[key] = mine or value
        elif _is_number(mine) and _is_number(value):
            target[key] = mine + value
        else:
            raise ValueError(f"stats key {key!r}: cannot merge {mine!r} with {value!r}")


def _copy_tree(value: Json) -> Json:
    if isinstance(value, Mapping):
        return {key: _copy_tree(item) for key, item in value.items()}
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _streams(result: Sequence[Mapping[str, Json]]) -> str:
    """A ``streams`` result: labels plain, each line HTML-escaped, entry metadata plain."""
    parts = []
    for stream in result:
        values = stream["values"]
        if all(len(entry) == 2 for entry in values):
            encoded = encoding.json_html_text(values)
        else:
            encoded = (
                "["
                + ",".join(
                    "["
                    + encoding.json_text(entry[0])
                    + ","
                    + encoding.json_html_text(entry[1])
                    + "".join("," + encoding.json_text(extra) for extra in entry[2:])
                    + "]"
                    for entry in values
                )
                + "]"
            )
        labels = encoding.json_text(stream["stream"])
        parts.append('{"stream":' + labels + ',"values":' + encoded + "}")
    return "[" + ",".join(parts) + "]"
