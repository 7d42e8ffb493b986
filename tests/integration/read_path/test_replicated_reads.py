"""Reads over a replicated write path: three ingesters at RF=3, MinIO, and a querier.

Lines go through a distributor to three ingesters, so every line is held three times. Part of
them is flushed to MinIO, unevenly: ingester-0 flushes twice and the others once, so the store
holds each of those lines in chunks cut at different points (overlapping objects, not one
shared key). More lines are pushed after the flush and stay in memory. Flushed chunks stay in
the ingesters for ``chunk_retain_period``, so the same lines are then in the ingesters and the
store at once.

The querier asks both (the default ``query_ingesters_within`` of 3h covers everything here), and
every answer must hold each line exactly once, in order, in both directions, and logcli-style
pagination (start inclusive, end exclusive, limit 7) must walk the whole range without a gap or
a repeat, even where a page ends between lines of different streams with the same timestamp.
Metric queries must count every line once, and labels and series must be the pushed sets. Two
distinct lines of one stream at the same timestamp (and of the same length, so the same sample)
are not replicas and must both stay. This holds in three states: flushed lines both retained in
memory and in the store; flushed lines only in the store; and with one ingester killed by
SIGKILL, still a healthy ring member to the querier, whose calls to it fail (RF=3 leaves two
copies of everything, and a read needs two answers).
"""

from __future__ import annotations

import collections
import json
import pathlib
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from testinfra import minio as minio_infra

from tests.support import lokistack_process, polling, push, stacks, stored

PUSH = "/loki/api/v1/push"
SELECTOR = '{app="reads"}'
PODS = ("p0", "p1", "p2")
STEP_NS = 3 * 10**9  # between consecutive lines of one stream
FLUSHED_A = range(10)  # flushed by ingester-0 alone first, then by everyone with FLUSHED_B
FLUSHED_B = range(10, 20)
IN_MEMORY = range(20, 30)  # pushed after the flushes
PAGE = 7
RETAIN = "10s"  # how long flushed chunks stay queryable in the ingesters

# (pod, ts ns, line); the line is unique, which logcli's page overlap removal relies on.
Line = tuple[str, int, str]


def _pod_lines(t0: int, pod_index: int, i: int) -> list[Line]:
    """Line ``i`` of pod ``pod_index``: when ``i % 4 == 0`` it shares its timestamp with the
    other pods' line ``i`` (ties across streams); otherwise it is offset by the pod and by ``i``
    ns, and when ``i % 4 == 2`` a twin of the same length follows at the same timestamp (two
    distinct lines of one stream that replica de-duplication must both keep)."""
    pod = PODS[pod_index]
    ts = t0 + i * STEP_NS
    if i % 4:
        ts += pod_index * 10**9 + i
    found = [(pod, ts, f"{pod} line {i:02d}")]
    if i % 4 == 2:
        found.append((pod, ts, f"{pod} twin {i:02d}"))
    return found


def _lines(t0: int, indexes: range) -> list[Line]:
    return [line for p in range(len(PODS)) for i in indexes for line in _pod_lines(t0, p, i)]


def _push(distributor: lokistack_process.LokistackProcess, lines: Sequence[Line]) -> None:
    streams: dict[str, list[tuple[int, str]]] = {}
    for pod, ts, line in lines:
        streams.setdefault(f'{{app="reads", pod="{pod}"}}', []).append((ts, line))
    answer = push.post(distributor.url + PUSH, push.protobuf_body(streams))
    assert answer == push.Answer(204, ""), answer


def _entries(ingester: lokistack_process.LokistackProcess) -> float:
    return ingester.metric("lokistack_ingester_entries_appended_total", tenant="fake")


def _wait_replicated(ingesters: Sequence[lokistack_process.LokistackProcess], total: int) -> None:
    """Every ingester holds ``total`` entries: the quorum answer promises two copies, the third
    is best effort and may still be on its way."""
    polling.wait_until(
        lambda: all(_entries(ingester) == total for ingester in ingesters),
        timeout=10,
        describe=lambda: f"entries per ingester: {[_entries(i) for i in ingesters]}, want {total}",
    )


def _uploads(ingester: lokistack_process.LokistackProcess) -> float:
    return ingester.metric("lokistack_index_files_uploaded_total")


def _flush(ingesters: Sequence[lokistack_process.LokistackProcess]) -> None:
    """POST /flush to each and wait until each has uploaded one more index file."""
    before = [_uploads(ingester) for ingester in ingesters]
    for ingester in ingesters:
        answer = push.post(ingester.url + "/flush", b"", content_type="")
        assert answer.status == 204, answer
    polling.wait_until(
        lambda: all(
            _uploads(ingester) > count for ingester, count in zip(ingesters, before, strict=True)
        ),
        timeout=20,
        describe=lambda: f"index uploads: {[_uploads(i) for i in ingesters]}, before {before}",
    )


def _get(process: lokistack_process.LokistackProcess, path: str, **params: Any) -> Any:
    url = f"{process.url}{path}?{urllib.parse.urlencode(params, doseq=True)}"
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        raise AssertionError(f"GET {url}: {error.code} {error.read().decode()}") from None


def _query_range(
    querier: lokistack_process.LokistackProcess,
    start: int,
    end: int,
    direction: str,
    limit: int,
) -> list[Line]:
    """A log query's entries, stream by stream, each stream in the order it was answered."""
    body = _get(
        querier,
        "/loki/api/v1/query_range",
        query=SELECTOR,
        start=start,
        end=end,
        direction=direction,
        limit=limit,
    )
    assert body["status"] == "success", body
    assert body["data"]["resultType"] == "streams", body
    found: list[Line] = []
    for stream in body["data"]["result"]:
        assert stream["stream"]["app"] == "reads", stream
        pod = stream["stream"]["pod"]
        timestamps = [int(ts) for ts, _ in stream["values"]]
        ordered = sorted(timestamps, reverse=direction == "backward")
        assert timestamps == ordered, f"{pod} is not in {direction} order: {timestamps}"
        found.extend((pod, int(ts), line) for ts, line in stream["values"])
    return found


def _in_order(lines: Sequence[Line], direction: str) -> list[Line]:
    return sorted(lines, key=lambda line: line[1], reverse=direction == "backward")


def _assert_once(found: Sequence[Line], expected: Sequence[Line], what: str) -> None:
    repeated = [line for line, count in collections.Counter(found).items() if count > 1]
    assert not repeated, f"{what}: {len(repeated)} lines more than once, e.g. {repeated[:3]}"
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    assert not missing and not extra, f"{what}: missing {missing[:5]}, unexpected {extra[:5]}"


def _paginate(
    querier: lokistack_process.LokistackProcess, start: int, end: int, direction: str
) -> list[Line]:
    """What ``logcli query --batch=7`` prints: after each page the next one starts at the last
    timestamp (forward) or ends just after it (backward, ``end`` being exclusive), and lines at
    that timestamp already printed are dropped."""
    printed: list[Line] = []
    last: list[Line] = []
    for _ in range(100):
        page = _in_order(_query_range(querier, start, end, direction, PAGE), direction)
        assert len(page) <= PAGE, f"a page of {len(page)} entries for limit {PAGE}"
        overlap = {line for _, _, line in last}
        new = [e for e in page if not (last and e[1] == last[0][1] and e[2] in overlap)]
        if not new:
            return printed
        printed.extend(new)
        last = [entry for entry in page if entry[1] == page[-1][1]]
        if direction == "forward":
            start = last[0][1]
        else:
            end = last[0][1] + 1
    raise AssertionError(f"pagination did not finish after 100 pages: {len(printed)} printed")


def _instant(querier: lokistack_process.LokistackProcess, query: str, at: int) -> dict[str, float]:
    body = _get(querier, "/loki/api/v1/query", query=query, time=at)
    assert body["data"]["resultType"] == "vector", body
    return {
        json.dumps(sample["metric"], sort_keys=True): float(sample["value"][1])
        for sample in body["data"]["result"]
    }


def _check_reads(
    querier: lokistack_process.LokistackProcess,
    flushed: Sequence[Line],
    in_memory: Sequence[Line],
    state: str,
) -> None:
    expected = [*flushed, *in_memory]
    first = min(ts for _, ts, _ in expected)
    last = max(ts for _, ts, _ in expected)
    start, end = first, last + 1  # [start, end) holds exactly the expected lines

    for direction in ("forward", "backward"):
        what = f"{state}, {direction}"
        found = _query_range(querier, start, end, direction, 1000)
        _assert_once(found, expected, what)
        # Start is inclusive and end exclusive: moving each by 1ns drops the lines on it.
        inner = _query_range(querier, start + 1, end - 1, direction, 1000)
        _assert_once(
            inner, [e for e in expected if start < e[1] < last], f"{what}, [start+1, end-1)"
        )
        # A limited query returns the first lines in its direction (ties may go either way).
        limited = _query_range(querier, start, end, direction, 10)
        want = [ts for _, ts, _ in _in_order(expected, direction)[:10]]
        assert [ts for _, ts, _ in _in_order(limited, direction)] == want, f"{what}, limit 10"
        pages = _paginate(querier, start, end, direction)
        _assert_once(pages, expected, f"{what}, pages of {PAGE}")
        assert [ts for _, ts, _ in pages] == [ts for _, ts, _ in _in_order(expected, direction)], (
            f"{what}: pages of {PAGE} out of order"
        )

    # The flushed lines' range alone.
    flushed_end = max(ts for _, ts, _ in flushed) + 1
    for direction in ("forward", "backward"):
        found = _query_range(querier, start, flushed_end, direction, 1000)
        _assert_once(found, flushed, f"{state}, {direction}, flushed lines' range")

    # Metric queries count each line once: replicas, and lines both flushed and in memory.
    per_pod = collections.Counter(pod for pod, _, _ in expected)
    assert _instant(querier, f"sum(count_over_time({SELECTOR}[1h]))", end) == {
        "{}": float(len(expected))
    }, state
    assert _instant(querier, f"sum by (pod) (count_over_time({SELECTOR}[1h]))", end) == {
        json.dumps({"pod": pod}): float(count) for pod, count in per_pod.items()
    }, state
    step = 10 * 10**9
    body = _get(
        querier,
        "/loki/api/v1/query_range",
        query=f"sum(count_over_time({SELECTOR}[10s]))",
        start=start,
        end=end + step,
        step="10s",
    )
    assert body["data"]["resultType"] == "matrix", body
    points = {
        round(float(t) * 1000): float(v)
        for series in body["data"]["result"]
        for t, v in series["values"]
    }
    want_points: dict[int, float] = {}
    for at in range(start, end + step + 1, step):
        count = sum(1 for _, ts, _ in expected if at - step < ts <= at)
        if count:
            want_points[at // 10**6] = float(count)
    assert points == want_points, f"{state}: count_over_time[10s] every 10s"

    # Labels and series are the pushed sets, each once (the distributor adds service_name).
    # Over the flushed lines' range alone, in memory or not, the answers are the same.
    for until in (end, flushed_end):
        labels = _get(querier, "/loki/api/v1/labels", start=start, end=until)
        assert labels["data"] == ["app", "pod", "service_name"], (state, labels)
        values = _get(querier, "/loki/api/v1/label/pod/values", start=start, end=until)
        assert values["data"] == list(PODS), (state, values)
        series = _get(
            querier, "/loki/api/v1/series", start=start, end=until, **{"match[]": SELECTOR}
        )
        assert sorted(series["data"], key=lambda s: s["pod"]) == [
            {"app": "reads", "pod": pod, "service_name": "reads"} for pod in PODS
        ], (state, series)


@pytest.fixture
def stack(
    kubeconfig: pathlib.Path,
    namespace: str,
    minio_server: minio_infra.MinioServer,
    minio_bucket: str,
    tmp_path: pathlib.Path,
) -> Iterator[stacks.WritePath]:
    settings = lokistack_process.deep_merge(
        stored.s3_settings(minio_server, minio_bucket),
        {
            "ring": {"replication_factor": 3},  # heartbeat_timeout stays 1m: see the kill
            "limits": {"ingestion_rate_mb": 64, "ingestion_burst_size_mb": 128},
            "ingester": {"flush_check_period": "1s", "chunk_retain_period": RETAIN},
        },
    )
    with stacks.replicated_write_path(
        tmp_path, kubeconfig, namespace, settings, querier=True
    ) as write_path:
        yield write_path


def _memory_chunks(ingester: lokistack_process.LokistackProcess) -> float:
    return ingester.metric("loki_ingester_memory_chunks")


def test_reads_span_store_and_ingesters_each_line_once(stack: stacks.WritePath) -> None:
    distributor, ingesters, querier = stack.distributor, stack.ingesters, stack.querier
    assert querier is not None
    t0 = (time.time_ns() // 10**9 - 600) * 10**9  # ten minutes ago, on a whole second

    flushed = _lines(t0, FLUSHED_A)
    _push(distributor, flushed)
    _wait_replicated(ingesters, len(flushed))
    _flush(ingesters[:1])
    flushed += _lines(t0, FLUSHED_B)
    _push(distributor, _lines(t0, FLUSHED_B))
    _wait_replicated(ingesters, len(flushed))
    _flush(ingesters)

    in_memory = _lines(t0, IN_MEMORY)
    _push(distributor, in_memory)
    everything = flushed + in_memory
    _wait_replicated(ingesters, len(everything))

    # Flushed chunks are still retained: the flushed lines are in memory and in the store.
    polling.wait_until(
        lambda: all(_memory_chunks(ingester) > len(PODS) for ingester in ingesters),
        timeout=5,
        describe=lambda: f"chunks in memory: {[_memory_chunks(i) for i in ingesters]}",
    )
    _check_reads(querier, flushed, in_memory, "flushed lines in memory and in the store")

    # Once the retain period is over, the flushed lines are only in the store.
    polling.wait_until(
        lambda: all(_memory_chunks(ingester) == len(PODS) for ingester in ingesters),
        timeout=30,
        describe=lambda: f"chunks in memory: {[_memory_chunks(i) for i in ingesters]}",
    )
    _check_reads(querier, flushed, in_memory, "flushed lines only in the store")

    ingesters[1].kill()
    _check_reads(querier, flushed, in_memory, "one ingester killed")
