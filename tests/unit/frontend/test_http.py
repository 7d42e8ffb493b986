"""The frontend's query API: range queries split, dispatched through the queue to in-process
querier workers that answer from a fake querier, and merged; errors, limits and the cache."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import itertools
import json
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, Final, cast

import pytest
from aiohttp import test_utils, web
from lokistack import config, limits
from lokistack.frontend import frontend as frontend_mod
from lokistack.frontend import http as frontend_http
from lokistack.loghttp import params as loghttp_params
from lokistack.proto import frontend_pb2

from tests.support.polling import eventually

SECOND: Final = 10**9
MINUTE: Final = 60 * SECOND
HOUR: Final = 60 * MINUTE
T0: Final = 1_700_000_000 * SECOND // HOUR * HOUR  # an hour boundary
NOW: Final = T0 + 10 * HOUR
LOG_QUERY: Final = '{app="api"}'
METRIC_QUERY: Final = 'sum(count_over_time({app="api"}[1m]))'

Json = Any
Answer = Callable[[frontend_pb2.HTTPRequest], Awaitable[frontend_pb2.HTTPResponse]]


@dataclasses.dataclass
class Seen:
    """One sub-request as the fake querier received it."""

    path: str
    params: dict[str, str]
    headers: dict[str, list[str]]

    @property
    def window(self) -> tuple[int, int]:
        return int(self.params["start"]), int(self.params["end"])


def _ok(body: Json) -> frontend_pb2.HTTPResponse:
    return frontend_pb2.HTTPResponse(
        code=200,
        body=json.dumps(body).encode(),
        headers=[frontend_pb2.Header(key="Content-Type", values=["application/json"])],
    )


def _error(code: int, message: str) -> frontend_pb2.HTTPResponse:
    return frontend_pb2.HTTPResponse(
        code=code,
        body=message.encode(),
        headers=[frontend_pb2.Header(key="Content-Type", values=["text/plain; charset=utf-8"])],
    )


def _stats(lines: int) -> Json:
    return {"summary": {"totalLinesProcessed": lines, "execTime": 0.5}}


class QuerierDiedError(Exception):
    """Raised by the fake querier: its worker's stream ends with the piece unanswered."""


class FakeQuerier:
    """Canned answers per piece: ``entries_per_piece`` log lines inside the piece's window, or
    one point per step for a metric query. ``fail`` may replace the answer of a piece."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.entries_per_piece = 1
        self.fail: Callable[[Seen], frontend_pb2.HTTPResponse | None] = lambda _: None
        self.hold: asyncio.Event | None = None
        """When set, pieces wait for it before answering."""
        self.die: Callable[[Seen], bool] = lambda _: False
        """Whether the querier dies instead of answering a piece."""

    async def __call__(self, request: frontend_pb2.HTTPRequest) -> frontend_pb2.HTTPResponse:
        url = urllib.parse.urlsplit(request.url)
        seen = Seen(
            url.path,
            dict(urllib.parse.parse_qsl(url.query)),
            {h.key: list(h.values) for h in request.headers},
        )
        self.seen.append(seen)
        if self.hold is not None:
            await self.hold.wait()
        if self.die(seen):
            raise QuerierDiedError(request.url)
        failed = self.fail(seen)
        if failed is not None:
            return failed
        if url.path != "/loki/api/v1/query_range":
            return _ok({"status": "success", "data": [seen.path]})
        start, end = seen.window
        if seen.params["query"] == LOG_QUERY:
            return _ok(self._log_answer(start, end, seen.params.get("direction", "backward")))
        step = loghttp_params.parse_duration("step", seen.params["step"])
        points = [[t / SECOND, "1"] for t in range(start, end + 1, step)]
        return _ok(
            {
                "status": "success",
                "data": {
                    "resultType": "matrix",
                    "result": [{"metric": {}, "values": points}],
                    "stats": _stats(len(points)),
                },
            }
        )

    def _log_answer(self, start: int, end: int, direction: str) -> Json:
        count = self.entries_per_piece
        stamps = [start + i * SECOND for i in range(count)]
        if direction == "backward":
            stamps = [end - 1 - i * SECOND for i in range(count)]
        values = [[str(ts), f"line at {ts}"] for ts in stamps]
        return {
            "status": "success",
            "data": {
                "resultType": "streams",
                "result": [{"stream": {"app": "api"}, "values": values}] if values else [],
                "stats": _stats(count),
            },
        }

    def windows(self) -> list[tuple[int, int]]:
        return [seen.window for seen in self.seen]


async def _worker(frontend: frontend_mod.Frontend, answer: Answer, client_id: str) -> None:
    """A querier worker in process: the frontend's ``Process`` stream without the network."""
    inbox: asyncio.Queue[frontend_pb2.ClientToFrontend] = asyncio.Queue()
    await inbox.put(frontend_pb2.ClientToFrontend(client_id=client_id))

    async def incoming() -> AsyncIterator[frontend_pb2.ClientToFrontend]:
        while True:
            yield await inbox.get()

    stream = cast(
        AsyncGenerator[frontend_pb2.FrontendToClient, None],
        frontend.Process(incoming(), cast(Any, None)),
    )
    try:
        async for message in stream:
            try:
                response = await answer(message.http_request)
            except QuerierDiedError:
                return
            await inbox.put(frontend_pb2.ClientToFrontend(id=message.id, http_response=response))
    finally:
        await stream.aclose()


@dataclasses.dataclass
class Stack:
    client: test_utils.TestClient[web.Request, web.Application]
    frontend: frontend_mod.Frontend
    querier: FakeQuerier

    async def get(
        self, path: str, params: dict[str, str], headers: dict[str, str] | None = None
    ) -> tuple[int, str, Json]:
        """Status, body text and (for JSON answers) the parsed body."""
        async with self.client.get(path, params=params, headers=headers) as response:
            text = await response.text()
            parsed = json.loads(text) if response.content_type == "application/json" else None
            return response.status, text, parsed

    async def query_range(
        self, params: dict[str, str], headers: dict[str, str] | None = None
    ) -> Json:
        status, text, parsed = await self.get("/loki/api/v1/query_range", params, headers)
        assert status == 200, text
        return parsed


StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def make_stack() -> AsyncIterator[StackFactory]:
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def make(
        *,
        auth_enabled: bool = False,
        workers: int = 4,
        max_outstanding: int = 100,
        max_retries: int = 0,
        frontend_cfg: config.Frontend | None = None,
        **tenant_limits: Any,
    ) -> Stack:
        cfg = config.Config(
            auth_enabled=auth_enabled,
            limits=config.Limits(**tenant_limits),
            frontend=dataclasses.replace(
                frontend_cfg or config.Frontend(),
                max_outstanding_per_tenant=max_outstanding,
                max_retries=max_retries,
            ),
        )
        frontend = frontend_mod.Frontend(
            cfg.frontend.max_outstanding_per_tenant, cfg.frontend.max_retries
        )
        api = frontend_http.FrontendAPI(
            cfg, limits.Overrides.from_config(cfg), frontend, clock=lambda: NOW
        )
        querier = FakeQuerier()
        tasks = [
            asyncio.create_task(_worker(frontend, querier, f"querier-{i}")) for i in range(workers)
        ]
        app = web.Application()
        app.add_routes(api.routes())
        client: test_utils.TestClient[web.Request, web.Application] = test_utils.TestClient(
            test_utils.TestServer(app)
        )
        await client.start_server()

        async def cleanup() -> None:
            await client.close()
            if querier.hold is not None:
                querier.hold.set()
            await frontend.stop()
            await asyncio.wait_for(asyncio.gather(*tasks), 5)

        cleanups.append(cleanup)
        return Stack(client, frontend, querier)

    try:
        yield make
    finally:
        for cleanup in cleanups:
            await cleanup()


def _entries(body: Json) -> list[int]:
    return [int(ts) for stream in body["data"]["result"] for ts, _ in stream["values"]]


# Log queries -----------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["backward", "forward"])
async def test_log_query_is_split_by_interval_and_merged(
    make_stack: StackFactory, direction: str
) -> None:
    stack = await make_stack(split_queries_by_interval=datetime.timedelta(minutes=30))
    start, end = T0 + 10 * MINUTE, T0 + 100 * MINUTE
    body = await stack.query_range(
        {
            "query": LOG_QUERY,
            "start": str(start),
            "end": str(end),
            "limit": "100",
            "direction": direction,
        },
        {"X-Query-Tags": "source=test"},
    )

    pieces = [
        (start, T0 + 30 * MINUTE),
        (T0 + 30 * MINUTE, T0 + 60 * MINUTE),
        (T0 + 60 * MINUTE, T0 + 90 * MINUTE),
        (T0 + 90 * MINUTE, end),
    ]
    assert sorted(stack.querier.windows()) == pieces
    for seen in stack.querier.seen:
        assert seen.path == "/loki/api/v1/query_range"
        assert seen.params["query"] == LOG_QUERY
        assert seen.params["limit"] == "100"
        assert seen.params["direction"] == direction
        assert "step" in seen.params
        assert seen.headers["X-Query-Tags"] == ["source=test"]

    assert body["status"] == "success"
    assert body["data"]["resultType"] == "streams"
    assert len(body["data"]["result"]) == 1
    assert body["data"]["result"][0]["stream"] == {"app": "api"}
    expected = [s for s, _ in pieces] if direction == "forward" else [e - 1 for _, e in pieces]
    assert _entries(body) == (expected if direction == "forward" else expected[::-1])
    assert body["data"]["stats"]["summary"]["totalLinesProcessed"] == 4
    assert body["data"]["stats"]["summary"]["splits"] == 4


async def test_split_off_sends_the_query_whole(make_stack: StackFactory) -> None:
    stack = await make_stack(split_queries_by_interval=datetime.timedelta(0))
    await stack.query_range({"query": LOG_QUERY, "start": str(T0), "end": str(T0 + 5 * HOUR)})
    assert stack.querier.windows() == [(T0, T0 + 5 * HOUR)]


async def test_post_form_query_is_split_too(make_stack: StackFactory) -> None:
    stack = await make_stack()
    form = {"query": LOG_QUERY, "start": str(T0), "end": str(T0 + HOUR)}
    async with stack.client.post("/loki/api/v1/query_range", data=form) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    assert len(stack.querier.seen) == 2
    assert len(_entries(body)) == 2


@pytest.mark.parametrize(
    ("parallelism", "limit", "dispatched"),
    [
        (1, 3, 2),  # one at a time: two pieces of two entries reach the limit
        (2, 3, 2),  # the first wave of two is enough
        (2, 5, 4),  # the second wave is needed
        (32, 1, 4),  # one wave holds every piece
        (1, 100, 4),  # never reached
    ],
)
async def test_log_dispatch_stops_once_the_limit_is_reached(
    make_stack: StackFactory, parallelism: int, limit: int, dispatched: int
) -> None:
    stack = await make_stack(
        max_query_parallelism=parallelism, split_queries_by_interval=datetime.timedelta(hours=1)
    )
    stack.querier.entries_per_piece = 2
    body = await stack.query_range(
        {"query": LOG_QUERY, "start": str(T0), "end": str(T0 + 4 * HOUR), "limit": str(limit)}
    )

    assert len(stack.querier.seen) == dispatched
    # Newest first: the pieces dispatched are the newest ones.
    newest = [(T0 + h * HOUR, T0 + (h + 1) * HOUR) for h in (3, 2, 1, 0)][:dispatched]
    assert sorted(stack.querier.windows()) == sorted(newest)
    if parallelism == 1:
        assert stack.querier.windows() == newest
    entries = _entries(body)
    assert len(entries) == min(limit, 2 * dispatched)
    assert entries == sorted(entries, reverse=True)
    assert entries[0] == T0 + 4 * HOUR - 1


async def test_a_querier_dying_mid_piece_is_retried_on_another(make_stack: StackFactory) -> None:
    stack = await make_stack(max_retries=1, workers=2)
    died: list[tuple[int, int]] = []

    def die_once(seen: Seen) -> bool:
        if died:
            return False
        died.append(seen.window)
        return True

    stack.querier.die = die_once
    body = await stack.query_range({"query": LOG_QUERY, "start": str(T0), "end": str(T0 + HOUR)})
    assert len(_entries(body)) == 2
    assert [seen.window for seen in stack.querier.seen].count(died[0]) == 2


async def test_pieces_whose_queriers_all_died_are_a_500(make_stack: StackFactory) -> None:
    stack = await make_stack(max_retries=0, workers=2)
    stack.querier.die = lambda _: True
    status, text, _ = await stack.get(
        "/loki/api/v1/query_range", {"query": LOG_QUERY, "start": str(T0), "end": str(T0 + HOUR)}
    )
    assert status == 500
    assert "went away" in text


async def test_slow_queries_are_logged(
    make_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    slow = config.Frontend(log_queries_longer_than=datetime.timedelta(microseconds=1))
    stack = await make_stack(frontend_cfg=slow)
    with caplog.at_level("INFO", logger="lokistack.frontend.http"):
        await stack.query_range({"query": LOG_QUERY, "start": str(T0), "end": str(T0 + HOUR)})
    (record,) = [r for r in caplog.records if r.getMessage() == "slow query detected"]
    assert record.__dict__["tenant"] == "fake"
    assert record.__dict__["query"] == LOG_QUERY


# Metric queries and the results cache ------------------------------------------------------------


async def test_metric_query_pieces_are_cached_and_reused(make_stack: StackFactory) -> None:
    stack = await make_stack(split_queries_by_interval=datetime.timedelta(minutes=30))
    params = {"query": METRIC_QUERY, "start": str(T0), "end": str(T0 + 2 * HOUR), "step": "60s"}

    first = await stack.query_range(params)
    pieces = len(stack.querier.seen)
    assert pieces == 4
    points = first["data"]["result"][0]["values"]
    assert [p[0] for p in points] == [(T0 + m * MINUTE) / SECOND for m in range(121)]

    stack.querier.seen.clear()
    second = await stack.query_range(params)
    assert stack.querier.seen == []
    assert second["data"]["result"] == first["data"]["result"]

    # The same query written differently has the same cache key.
    spaced = dict(params, query='sum( count_over_time( {app = "api"} [1m] ) )')
    await stack.query_range(spaced)
    assert stack.querier.seen == []

    third = await stack.query_range(params, {"Cache-Control": "no-cache"})
    assert len(stack.querier.seen) == pieces
    assert all(seen.headers["Cache-Control"] == ["no-cache"] for seen in stack.querier.seen)
    assert third["data"]["result"] == first["data"]["result"]


@pytest.mark.parametrize("align", [False, True])
async def test_metric_pieces_keep_the_clients_step_grid_unless_aligned(
    make_stack: StackFactory, align: bool
) -> None:
    stack = await make_stack(frontend_cfg=config.Frontend(align_queries_with_step=align))
    start = T0 + 10 * SECOND
    body = await stack.query_range(
        {"query": METRIC_QUERY, "start": str(start), "end": str(T0 + HOUR), "step": "60s"}
    )
    first = min(window[0] for window in stack.querier.windows())
    stamps = [point[0] for point in body["data"]["result"][0]["values"]]
    if align:
        assert first == T0
        assert stamps[0] == T0 / SECOND
    else:
        assert first == start
        assert stamps[0] == start / SECOND
    assert all(b - a == 60 for a, b in itertools.pairwise(stamps))


async def test_recent_metric_pieces_are_not_cached(make_stack: StackFactory) -> None:
    stack = await make_stack(split_queries_by_interval=datetime.timedelta(hours=1))
    # Pieces ending within max(query_ingesters_within=3h, 10m) of NOW may still change.
    params = {
        "query": METRIC_QUERY,
        "start": str(NOW - 6 * HOUR),
        "end": str(NOW),
        "step": "300s",
    }
    await stack.query_range(params)
    assert len(stack.querier.seen) == 6

    stack.querier.seen.clear()
    await stack.query_range(params)
    assert sorted(stack.querier.windows()) == [
        (NOW - 3 * HOUR, NOW - 2 * HOUR - 5 * MINUTE),
        (NOW - 2 * HOUR, NOW - HOUR - 5 * MINUTE),
        (NOW - HOUR, NOW),
    ]


async def test_log_queries_are_not_cached(make_stack: StackFactory) -> None:
    stack = await make_stack()
    params = {"query": LOG_QUERY, "start": str(T0), "end": str(T0 + HOUR)}
    await stack.query_range(params)
    await stack.query_range(params)
    assert len(stack.querier.seen) == 4


async def test_a_failed_metric_piece_is_not_cached(make_stack: StackFactory) -> None:
    stack = await make_stack(split_queries_by_interval=datetime.timedelta(hours=1))
    params = {"query": METRIC_QUERY, "start": str(T0), "end": str(T0 + 2 * HOUR), "step": "60s"}
    stack.querier.fail = lambda seen: _error(500, "boom") if seen.window[0] == T0 else None
    status, text, _ = await stack.get("/loki/api/v1/query_range", params)
    assert (status, text) == (500, "boom")

    stack.querier.fail = lambda _: None
    stack.querier.seen.clear()
    await stack.query_range(params)
    assert [window[0] for window in stack.querier.windows()] == [T0]


# Errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"query": "{app="}, "parse error"),
        ({"query": LOG_QUERY, "start": str(T0 + HOUR), "end": str(T0)}, "end timestamp"),
        ({"query": LOG_QUERY, "start": "yesterday"}, "yesterday"),
        ({"query": LOG_QUERY, "step": "0"}, "step"),
        ({"query": LOG_QUERY, "limit": "-1"}, "limit"),
        ({"query": LOG_QUERY, "direction": "sideways"}, "direction"),
        ({}, ""),
    ],
)
async def test_bad_requests_are_400_without_any_dispatch(
    make_stack: StackFactory, params: dict[str, str], message: str
) -> None:
    stack = await make_stack()
    status, text, _ = await stack.get("/loki/api/v1/query_range", params)
    assert status == 400, text
    assert message in text
    assert stack.querier.seen == []
    assert len(stack.frontend.queue) == 0


async def test_querying_disabled_by_parallelism_zero_is_429(make_stack: StackFactory) -> None:
    stack = await make_stack(max_query_parallelism=0)
    status, text, _ = await stack.get(
        "/loki/api/v1/query_range", {"query": LOG_QUERY, "start": str(T0), "end": str(T0 + HOUR)}
    )
    assert (status, text.rstrip("\n")) == (429, frontend_http.QUERYING_DISABLED)
    assert stack.querier.seen == []


async def test_full_queue_is_429_and_leaves_nothing_queued(make_stack: StackFactory) -> None:
    stack = await make_stack(workers=0, max_outstanding=2)
    status, text, _ = await stack.get(
        "/loki/api/v1/query_range",
        {"query": LOG_QUERY, "start": str(T0), "end": str(T0 + 2 * HOUR)},  # four pieces
    )
    assert (status, text.rstrip("\n")) == (429, "too many outstanding requests")
    # The pieces that did get in are withdrawn: nobody will read their answers.
    await eventually(
        lambda: len(stack.frontend.queue) == 0,
        lambda: f"{len(stack.frontend.queue)} orphaned pieces still queued",
    )


@pytest.mark.parametrize(
    ("query", "code", "message"),
    [
        (LOG_QUERY, 400, "max entries limit per query exceeded"),
        (LOG_QUERY, 500, "ingester unavailable"),
        (METRIC_QUERY, 400, "maximum of series (500) reached for a single query"),
    ],
)
async def test_an_error_from_a_piece_is_the_answer(
    make_stack: StackFactory, query: str, code: int, message: str
) -> None:
    stack = await make_stack(split_queries_by_interval=datetime.timedelta(hours=1))
    failing = T0 + HOUR
    stack.querier.fail = lambda seen: _error(code, message) if seen.window[0] == failing else None
    async with stack.client.get(
        "/loki/api/v1/query_range",
        params={"query": query, "start": str(T0), "end": str(T0 + 3 * HOUR), "step": "60s"},
    ) as response:
        assert response.status == code
        assert await response.text() == message
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


async def test_a_5xx_piece_is_retried(make_stack: StackFactory) -> None:
    stack = await make_stack(max_retries=1)
    failed: list[tuple[int, int]] = []

    def fail_once(seen: Seen) -> frontend_pb2.HTTPResponse | None:
        if seen.window in failed:
            return None
        failed.append(seen.window)
        return _error(503, "try again")

    stack.querier.fail = fail_once
    body = await stack.query_range({"query": LOG_QUERY, "start": str(T0), "end": str(T0 + HOUR)})
    assert len(_entries(body)) == 2
    assert len(stack.querier.seen) == 4


async def test_a_piece_that_fails_after_its_retries_is_a_500(make_stack: StackFactory) -> None:
    stack = await make_stack(max_retries=2, workers=1)
    stack.querier.fail = lambda _: _error(502, "bad gateway")
    status, text, _ = await stack.get(
        "/loki/api/v1/query_range", {"query": LOG_QUERY, "start": str(T0), "end": str(T0 + HOUR)}
    )
    assert (status, text) == (502, "bad gateway")


async def test_timeout_is_504_and_withdraws_the_pieces(make_stack: StackFactory) -> None:
    stack = await make_stack(workers=1, query_timeout=datetime.timedelta(milliseconds=100))
    stack.querier.hold = asyncio.Event()
    status, _, _ = await stack.get(
        "/loki/api/v1/query_range", {"query": LOG_QUERY, "start": str(T0), "end": str(T0 + HOUR)}
    )
    assert status == 504
    assert len(stack.frontend.queue) == 0
    assert len(stack.querier.seen) == 1  # the one worker holds one piece; the other was queued


# Tenants -----------------------------------------------------------------------------------------


async def test_auth_enabled_needs_a_tenant(make_stack: StackFactory) -> None:
    stack = await make_stack(auth_enabled=True)
    params = {"query": LOG_QUERY, "start": str(T0), "end": str(T0 + HOUR)}
    status, text, _ = await stack.get("/loki/api/v1/query_range", params)
    assert (status, text.rstrip("\n")) == (401, "no org id")
    status, text, _ = await stack.get("/loki/api/v1/labels", {})
    assert (status, text.rstrip("\n")) == (401, "no org id")
    assert stack.querier.seen == []

    await stack.query_range(params, {"X-Scope-OrgID": "tenant-a"})
    assert len(stack.querier.seen) == 2
    assert all(seen.headers["X-Scope-OrgID"] == ["tenant-a"] for seen in stack.querier.seen)


# Pass-through routes ----------------------------------------------------------------------------


async def test_other_routes_go_to_one_querier_unchanged(make_stack: StackFactory) -> None:
    stack = await make_stack()
    status, text, parsed = await stack.get(
        "/loki/api/v1/label/app/values", {"start": str(T0), "end": str(T0 + 5 * HOUR)}
    )
    assert status == 200, text
    assert parsed == {"status": "success", "data": ["/loki/api/v1/label/app/values"]}
    (seen,) = stack.querier.seen
    assert seen.params == {"start": str(T0), "end": str(T0 + 5 * HOUR)}


async def test_pass_through_answers_keep_their_status_and_body(make_stack: StackFactory) -> None:
    stack = await make_stack()
    stack.querier.fail = lambda _: _error(400, "instant log queries are not supported")
    status, text, _ = await stack.get("/loki/api/v1/query", {"query": LOG_QUERY})
    assert (status, text) == (400, "instant log queries are not supported")
