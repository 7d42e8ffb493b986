"""A query frontend in front of three queriers, over a day of logs in MinIO.

A day of lines in three streams goes through a distributor into an ingester, which flushes it
all to MinIO (``chunk_retain_period`` 0, so nothing stays in memory and every answer comes from
the store). A query frontend starts, then three queriers whose workers pull sub-queries from it.
One of the queriers is also asked directly, unsplit: the reference answer.

Through the frontend a 24h query is cut into 30m pieces run on different queriers and merged;
the answer must be exactly the direct one: log queries in both directions with limits that stop
after the first piece, after several, and never (entries, their order, and the order of the
streams), and metric queries over a step-aligned range and over one that is not (by default the
frontend keeps the client's step grid, so even then both evaluate the same timestamps).

Metric pieces older than ``query_ingesters_within`` (3h) are cached: the same query again is
answered from the cache (hit counter up, same answer), and not with ``Cache-Control: no-cache``.
A querier frozen with sub-queries in hand (SIGSTOP: its connections stay open) is dropped by the
frontend's gRPC keepalive and the query completes on the others. Finally a querier is killed
while it holds sub-queries of a query in flight: the frontend gives them to the other queriers
and the answer is still right. Last, a live tail through the frontend (relayed to a querier)
gets the newest lines and then a line pushed while it is open.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import pathlib
import signal
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import aiohttp
import pytest
from testinfra import minio as minio_infra
from testinfra import processes

from tests.support import component_logs, lokistack_process, polling, push, stacks, stored

SECOND = 10**9
DAY = 24 * 3600 * SECOND
APPS = ("a0", "a1", "a2")
LINES_PER_APP = 1200
SPACING = DAY // LINES_PER_APP  # 72 s between the lines of one stream
STEP_S = 300
QUERIERS = 3
SELECTOR = '{job="fe"}'
LEVELS = ("info", "warn", "error", "debug")

LOG_QUERIES = (SELECTOR, f'{SELECTOR} |= "level=error"', '{job="fe", app="a1"} |~ "seq=1.*"')
METRIC_QUERIES = (
    f"sum by (app) (count_over_time({SELECTOR}[5m]))",
    f"rate({SELECTOR}[5m])",
    f'sum by (app) (rate({SELECTOR} |= "level=error" [5m]))',
    f"sum(bytes_over_time({SELECTOR}[1h]))",  # a range longer than the split interval
)
CACHED_QUERY = f"sum by (level) (count_over_time({SELECTOR} | logfmt [10m]))"
SLOW_QUERY = f'{SELECTOR} |~ "(?i)msg=.*(ä|<tag>|&).*"'


FRONTEND_KEEPALIVE: Final = {
    "grpc_server_keepalive_time": "2s",
    "grpc_server_keepalive_timeout": "2s",
}
"""Short, so a frozen querier is dropped within seconds (the defaults are 10s and 10s)."""


def _lines(data_start: int) -> dict[str, list[tuple[int, str]]]:
    """Each app's lines, oldest first; no two lines of the day share a timestamp, so every
    limit cuts between distinct timestamps and the answer does not depend on tie order."""
    streams: dict[str, list[tuple[int, str]]] = {}
    for k, app in enumerate(APPS):
        entries = []
        for i in range(LINES_PER_APP):
            ts = data_start + i * SPACING + k * (SPACING // len(APPS)) + k * 1000 + i % 7
            level = LEVELS[(i + k) % len(LEVELS)]
            text = ("plain", "ä ünïcode", "<tag> & co", 'quote "q" \\ back')[i % 4]
            entries.append((ts, f"seq={i} app={app} level={level} msg={text!r}"))
        streams[f'{{job="fe", app="{app}"}}'] = entries
    return streams


def _get(
    process: lokistack_process.LokistackProcess,
    path: str,
    params: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
    timeout: float = 30,
) -> Any:
    url = f"{process.url}{path}?{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        raise AssertionError(f"GET {url}: {error.code} {error.read().decode()}") from None


def _query_range(
    process: lokistack_process.LokistackProcess,
    *,
    headers: Mapping[str, str] | None = None,
    **params: Any,
) -> Any:
    body = _get(process, "/loki/api/v1/query_range", params, headers)
    assert body["status"] == "success", body
    return body


def _ready(process: lokistack_process.LokistackProcess) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{process.url}/ready", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _same(
    frontend: lokistack_process.LokistackProcess,
    querier: lokistack_process.LokistackProcess,
    **params: Any,
) -> Any:
    """The frontend's answer equals the querier's (all but the statistics); returns it."""
    through_frontend = _query_range(frontend, **params)["data"]
    direct = _query_range(querier, **params)["data"]
    assert through_frontend["resultType"] == direct["resultType"], params
    assert through_frontend["result"] == direct["result"], f"frontend != querier for {params}"
    return direct


def _entries(data: Mapping[str, Any]) -> list[tuple[str, int, str]]:
    return [
        (stream["stream"]["app"], int(ts), line)
        for stream in data["result"]
        for ts, line, *_ in stream["values"]
    ]


@pytest.fixture
def write_path(
    kubeconfig: pathlib.Path,
    namespace: str,
    minio_server: minio_infra.MinioServer,
    minio_bucket: str,
    tmp_path: pathlib.Path,
) -> Iterator[tuple[stacks.WritePath, dict[str, Any]]]:
    """One ingester and a distributor on MinIO; yields them and the settings queriers need."""
    settings = lokistack_process.deep_merge(
        stored.s3_settings(minio_server, minio_bucket),
        {
            "ring": {"replication_factor": 1},
            "limits": {"max_entries_limit_per_query": 100_000},
            "ingester": {"chunk_retain_period": "0s", "flush_check_period": "1s"},
        },
    )
    with stacks.replicated_write_path(
        tmp_path, kubeconfig, namespace, settings, ingesters=1
    ) as stack:
        kvstore = {"store": "kubernetes", "kubernetes": {"namespace": namespace}}
        yield stack, lokistack_process.deep_merge(settings, {"ring": {"kvstore": kvstore}})


@pytest.fixture
def read_path(
    write_path: tuple[stacks.WritePath, dict[str, Any]],
    kubeconfig: pathlib.Path,
    tmp_path: pathlib.Path,
) -> Iterator[tuple[lokistack_process.LokistackProcess, list[lokistack_process.LokistackProcess]]]:
    """A query frontend and (not started yet) three queriers pointed at its gRPC port."""
    _, settings = write_path
    tail_querier_port = processes.free_port()  # querier-0's: the frontend relays tails to it
    frontend = lokistack_process.LokistackProcess(
        "query-frontend",
        tmp_path / "query-frontend",
        lokistack_process.deep_merge(
            settings,
            {
                "target": "query-frontend",
                "server": FRONTEND_KEEPALIVE,
                "frontend": {"tail_proxy_url": f"http://127.0.0.1:{tail_querier_port}"},
            },
        ),
    )
    address = f"127.0.0.1:{frontend.grpc_port}"
    queriers = [
        lokistack_process.LokistackProcess(
            f"querier-{i}",
            tmp_path / f"querier-{i}",
            lokistack_process.deep_merge(
                settings, {"target": "querier", "querier": {"frontend_addresses": [address]}}
            ),
            env={"KUBECONFIG": str(kubeconfig)},
            http_port=tail_querier_port if i == 0 else 0,
        )
        for i in range(QUERIERS)
    ]
    component_logs.register("read_path", {p.name: p.log_path for p in (frontend, *queriers)})
    try:
        yield frontend, queriers
    finally:
        for process in (*queriers, frontend):
            process.stop()


def _push_and_flush(stack: stacks.WritePath, streams: Mapping[str, list[tuple[int, str]]]) -> None:
    """Push every line, flush the ingester and wait until its chunks and index are in MinIO."""
    (ingester,) = stack.ingesters
    answer = push.post(stack.distributor.url + "/loki/api/v1/push", push.protobuf_body(streams))
    assert answer == push.Answer(204, ""), answer
    total = sum(len(entries) for entries in streams.values())
    polling.wait_until(
        lambda: ingester.metric("lokistack_ingester_entries_appended_total") == total,
        timeout=10,
        describe=lambda: (
            f"{ingester.metric('lokistack_ingester_entries_appended_total')} "
            f"entries appended, want {total}"
        ),
    )
    answer = push.post(ingester.url + "/flush", b"", content_type="")
    assert answer.status == 204, answer
    # Nothing left in memory (the flush loop drops flushed chunks every second, and a stream
    # with none left), and the index uploaded after the flush. Entries stored may exceed the
    # total: the flush loop (chunks older than max_chunk_age) can store a chunk /flush stores too.
    polling.wait_until(
        lambda: (
            ingester.metric("loki_ingester_memory_chunks") == 0
            and ingester.metric("loki_ingester_chunk_entries_sum") >= total
            and ingester.metric("lokistack_index_files_uploaded_total") > 0
            and ingester.metric("lokistack_index_files_pending_upload") == 0
        ),
        timeout=20,
        describe=lambda: (
            f"chunks in memory {ingester.metric('loki_ingester_memory_chunks')}, entries stored "
            f"{ingester.metric('loki_ingester_chunk_entries_sum')} of {total}, index files "
            f"uploaded {ingester.metric('lokistack_index_files_uploaded_total')}, pending "
            f"{ingester.metric('lokistack_index_files_pending_upload')}"
        ),
    )


def _start_read_path(
    frontend: lokistack_process.LokistackProcess,
    queriers: Sequence[lokistack_process.LokistackProcess],
) -> None:
    """The frontend first: it is ready with no querier connected; then the queriers."""
    frontend.start()
    assert _ready(frontend) == (200, "ready\n")
    assert frontend.metric("loki_query_frontend_connected_clients") == 0
    with concurrent.futures.ThreadPoolExecutor(len(queriers)) as pool:
        list(pool.map(lokistack_process.LokistackProcess.start, queriers))
    polling.wait_until(
        lambda: all(
            querier.metric("loki_ring_members", name="ingester", state="ACTIVE") == 1
            for querier in queriers
        ),
        timeout=30,
        describe="a querier never saw the ingester ACTIVE",
    )
    polling.wait_until(
        lambda: frontend.metric("loki_query_frontend_connected_clients") == len(queriers),
        timeout=30,
        describe=lambda: (
            f"{frontend.metric('loki_query_frontend_connected_clients')} queriers connected, "
            f"want {len(queriers)}"
        ),
    )
    assert _ready(frontend) == (200, "ready\n")


def test_frontend_answers_as_one_querier(
    write_path: tuple[stacks.WritePath, dict[str, Any]],
    read_path: tuple[lokistack_process.LokistackProcess, list[lokistack_process.LokistackProcess]],
) -> None:
    stack, _ = write_path
    frontend, queriers = read_path
    now = time.time_ns()
    data_start = now - DAY
    streams = _lines(data_start)
    everything = sorted(
        (labels.split('app="')[1][:2], ts, line)
        for labels, entries in streams.items()
        for ts, line in entries
    )
    _push_and_flush(stack, streams)
    _start_read_path(frontend, queriers)
    direct = queriers[0]

    step = STEP_S * SECOND
    start = (data_start // step - 1) * step  # step-aligned, and before the first line
    end = (now // step + 1) * step  # step-aligned, and after the last line
    window: dict[str, Any] = {"start": start, "end": end}

    # The reference itself holds every line, from MinIO.
    for direction in ("forward", "backward"):
        data = _query_range(direct, query=SELECTOR, direction=direction, limit=100_000, **window)
        assert sorted(_entries(data["data"])) == everything, direction

    # Log queries: one piece (limit 10), several (1000, about 7h of the day), all of them.
    for query in LOG_QUERIES:
        for direction in ("backward", "forward"):
            for limit in (10, 1000, 100_000):
                data = _same(
                    frontend, direct, query=query, direction=direction, limit=limit, **window
                )
                found = _entries(data)
                assert found, (query, direction, limit)
                if query == SELECTOR:
                    assert len(found) == min(limit, len(everything)), (direction, limit)

    # Metric queries: every step point of the day, in both; also off the step grid.
    unaligned = {"start": start + 17 * SECOND + 123, "end": end - 101 * SECOND}
    for query in METRIC_QUERIES:
        for bounds in (window, unaligned):
            data = _same(frontend, direct, query=query, step=STEP_S, **bounds)
            assert data["resultType"] == "matrix", query
            assert data["result"], query
    counts = _same(frontend, direct, query=METRIC_QUERIES[0], step=STEP_S, **window)
    assert sorted(series["metric"]["app"] for series in counts["result"]) == list(APPS)
    for series in counts["result"]:
        # Every line is counted at exactly one step (5m windows, 5m steps, no overlap).
        assert sum(int(value) for _, value in series["values"]) == LINES_PER_APP, series["metric"]

    _check_results_cache(frontend, direct, window)
    _check_frozen_querier_gives_its_pieces_back(frontend, queriers, window)
    _check_querier_killed_mid_query(frontend, queriers, window)
    asyncio.run(_check_tail_through_the_frontend(stack, frontend, streams))


def _check_results_cache(
    frontend: lokistack_process.LokistackProcess,
    direct: lokistack_process.LokistackProcess,
    window: Mapping[str, Any],
) -> None:
    """A metric query again is answered from the cache; with ``no-cache`` it is not."""
    params: dict[str, Any] = {"query": CACHED_QUERY, "step": STEP_S, **window}
    reference = _query_range(direct, **params)["data"]["result"]
    assert reference
    hits = "lokistack_frontend_results_cache_hits_total"
    misses = "lokistack_frontend_results_cache_misses_total"
    hits_before, misses_before = frontend.metric(hits), frontend.metric(misses)
    first = _query_range(frontend, **params)["data"]["result"]
    assert first == reference
    assert frontend.metric(hits) == hits_before, "a query never run before hit the cache"
    looked_up = frontend.metric(misses) - misses_before
    # Pieces entirely older than 3h (query_ingesters_within): about 21h of 30m pieces.
    assert 38 <= looked_up <= 44, f"{looked_up} cache lookups for a 24h query"

    second = _query_range(frontend, **params)["data"]["result"]
    assert second == reference
    assert frontend.metric(hits) - hits_before == looked_up, "the second query missed the cache"
    # One more piece may have become old enough to cache since the first query.
    assert frontend.metric(misses) - misses_before - looked_up <= 1

    hits_before = frontend.metric(hits)
    uncached = _query_range(frontend, headers={"Cache-Control": "no-cache"}, **params)["data"][
        "result"
    ]
    assert uncached == reference
    assert frontend.metric(hits) == hits_before, "a no-cache query was served from the cache"


def _check_frozen_querier_gives_its_pieces_back(
    frontend: lokistack_process.LokistackProcess,
    queriers: Sequence[lokistack_process.LokistackProcess],
    window: Mapping[str, Any],
) -> None:
    """A querier that holds sub-queries and stops answering without closing its connections (a
    lost node; here SIGSTOP) is dropped by the frontend's gRPC keepalive, and its pieces run on
    the others: the query completes while it is still frozen. Thawed, it connects again."""
    direct, victim = queriers[0], queriers[-1]
    params: dict[str, Any] = {"query": SLOW_QUERY, "direction": "forward", "limit": 100_000}
    reference = _query_range(direct, **params, **window)["data"]["result"]
    retries_before = frontend.metric("loki_query_frontend_retries_total")
    assert victim.process is not None and victim.process.popen is not None
    victim.process.popen.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        result = _query_range(frontend, **params, **window)["data"]["result"]
        took = time.monotonic() - started
    finally:
        victim.process.popen.send_signal(signal.SIGCONT)
    assert result == reference
    assert frontend.metric("loki_query_frontend_retries_total") > retries_before, (
        f"no piece was retried; the query took {took:.1f}s"
    )
    polling.wait_until(
        lambda: frontend.metric("loki_query_frontend_connected_clients") == len(queriers),
        timeout=30,
        describe="the thawed querier did not connect again",
    )


def _check_querier_killed_mid_query(
    frontend: lokistack_process.LokistackProcess,
    queriers: Sequence[lokistack_process.LokistackProcess],
    window: Mapping[str, Any],
) -> None:
    """SIGKILL a querier that holds sub-queries of a query in flight: it still answers right.

    The victim is stopped (SIGSTOP) first, so its workers take sub-queries and never answer:
    the query is certainly in flight with work on it when it is killed.
    """
    direct, victim = queriers[0], queriers[-1]
    params: dict[str, Any] = {
        "query": SLOW_QUERY,
        "direction": "backward",
        "limit": 100_000,
        **window,
    }
    reference = _query_range(direct, **params)["data"]["result"]
    assert reference
    retries_before = frontend.metric("loki_query_frontend_retries_total")
    assert victim.process is not None and victim.process.popen is not None
    victim.process.popen.send_signal(signal.SIGSTOP)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(_query_range, frontend, **params)
        # Unsplit, the query takes well under a second; pieces on the stopped querier hold it.
        done, _ = concurrent.futures.wait([answer], timeout=2)
        assert not done, "the query finished without the stopped querier's pieces"
        victim.kill()
        result = answer.result(timeout=30)["data"]["result"]
    assert result == reference
    assert frontend.metric("loki_query_frontend_retries_total") > retries_before
    polling.wait_until(
        lambda: frontend.metric("loki_query_frontend_connected_clients") == len(queriers) - 1,
        timeout=10,
        describe="the killed querier is still counted as connected",
    )
    # And the two left answer everything as before.
    for direction in ("forward", "backward"):
        _same(frontend, direct, query=SELECTOR, direction=direction, limit=1000, **window)
    _same(frontend, direct, query=METRIC_QUERIES[1], step=STEP_S, **window)


async def _check_tail_through_the_frontend(
    stack: stacks.WritePath,
    frontend: lokistack_process.LokistackProcess,
    streams: Mapping[str, list[tuple[int, str]]],
) -> None:
    """Live tail through the frontend (relayed to querier-0): the newest lines as history, then
    a line pushed now; bad LogQL is refused by the frontend itself."""
    selector = '{job="fe", app="a0"}'
    newest = streams[selector][-3:]
    url = frontend.url.replace("http://", "ws://") + "/loki/api/v1/tail"
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, params={"query": selector, "limit": "3"}) as ws,
    ):
        received: list[tuple[int, str]] = []
        async with asyncio.timeout(20):
            while len(received) < len(newest):
                message = await ws.receive()
                assert message.type == aiohttp.WSMsgType.TEXT, message
                for stream in json.loads(message.data)["streams"]:
                    received += [(int(ts), line) for ts, line in stream["values"]]
        assert received == newest
        now = time.time_ns()
        live = {selector: [(now, "live through the frontend")]}
        answer = await asyncio.to_thread(
            push.post, stack.distributor.url + "/loki/api/v1/push", push.protobuf_body(live)
        )
        assert answer == push.Answer(204, ""), answer
        async with asyncio.timeout(20):
            message = await ws.receive()
        assert message.type == aiohttp.WSMsgType.TEXT, message
        values = [v for stream in json.loads(message.data)["streams"] for v in stream["values"]]
        assert values == [[str(now), "live through the frontend"]]
    async with (
        aiohttp.ClientSession() as session,
        session.get(frontend.url + "/loki/api/v1/tail", params={"query": '{job="fe"'}) as bad,
    ):
        assert bad.status == 400
        assert "parse error" in await bad.text()
