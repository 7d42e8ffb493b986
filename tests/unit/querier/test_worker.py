"""Querier workers: how many per frontend, frontend discovery, and the pull loop end to end
against a real frontend gRPC server and a stand-in for the querier's own HTTP API."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import gc
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

import grpc
import pytest
from aiohttp import web
from lokistack import config
from lokistack.frontend import frontend as frontend_mod
from lokistack.proto import frontend_pb2, frontend_pb2_grpc
from lokistack.querier import worker
from multidict import CIMultiDict

from tests.support.polling import eventually

TIMEOUT: Final = 5.0


# worker_counts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("addresses", "max_concurrent", "expected"),
    [
        ([], 4, {}),
        (["f1:9095"], 4, {"f1:9095": 4}),
        (["f1:9095", "f2:9095"], 4, {"f1:9095": 2, "f2:9095": 2}),
        # Rounded up when it does not divide evenly ...
        (["f1:9095", "f2:9095", "f3:9095"], 4, {"f1:9095": 2, "f2:9095": 2, "f3:9095": 2}),
        # ... and at least one per frontend.
        (["f1", "f2", "f3", "f4", "f5"], 4, dict.fromkeys(["f1", "f2", "f3", "f4", "f5"], 1)),
        (["f1"], 0, {"f1": 1}),
    ],
)
def test_worker_counts(addresses: list[str], max_concurrent: int, expected: dict[str, int]) -> None:
    assert worker.worker_counts(addresses, max_concurrent) == expected


def test_worker_counts_are_sorted_by_address() -> None:
    assert list(worker.worker_counts(["b:1", "c:1", "a:1"], 3)) == ["a:1", "b:1", "c:1"]


def test_worker_counts_count_a_frontend_listed_twice_once() -> None:
    # A repeated address is one frontend, which still gets all the workers.
    assert worker.worker_counts(["f1:9095", "f1:9095"], 4) == {"f1:9095": 4}


# resolve ---------------------------------------------------------------------------------------


async def test_resolve_localhost() -> None:
    assert "127.0.0.1:9095" in await worker.resolve("localhost:9095")


async def test_resolve_an_ip_address_gives_itself() -> None:
    assert await worker.resolve("127.0.0.1:1234") == ["127.0.0.1:1234"]


async def test_resolve_an_unknown_name_gives_nothing() -> None:
    assert await worker.resolve("no-such-frontend.invalid:9095") == []


async def test_resolve_gives_one_address_per_pod_bracketing_ipv6(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def getaddrinfo(host: str, port: int, **_: object) -> list[tuple[object, ...]]:
        assert (host, port) == ("frontend-headless", 9095)
        return [
            (None, None, None, "", ("10.0.0.2", port)),
            (None, None, None, "", ("10.0.0.1", port)),
            (None, None, None, "", ("10.0.0.1", port)),
            (None, None, None, "", ("fd00::1", port, 0, 0)),
        ]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    assert await worker.resolve("frontend-headless:9095") == [
        "10.0.0.1:9095",
        "10.0.0.2:9095",
        "[fd00::1]:9095",
    ]


# Workers end to end ------------------------------------------------------------------------------


@dataclasses.dataclass
class FrontendServer:
    frontend: frontend_mod.Frontend
    server: grpc.aio.Server
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self) -> None:
        await self.frontend.stop()
        await self.server.stop(None)


async def _start_frontend(port: int = 0, max_retries: int = 0) -> FrontendServer:
    frontend = frontend_mod.Frontend(max_outstanding_per_tenant=100, max_retries=max_retries)
    server = grpc.aio.server()
    frontend_pb2_grpc.add_FrontendServicer_to_server(frontend, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return FrontendServer(frontend, server, bound)


@pytest.fixture
async def frontends() -> AsyncIterator[list[FrontendServer]]:
    started: list[FrontendServer] = []
    try:
        yield started
    finally:
        for server in started:
            await server.stop()


async def _echo(request: web.Request) -> web.Response:
    """The stand-in querier API: says what it received, answers with the status asked for."""
    body = {
        "method": request.method,
        "path_qs": request.path_qs,
        "query": request.query.get("query"),
        "org_ids": request.headers.getall("X-Scope-OrgID", []),
        "cache_control": request.headers.get("Cache-Control"),
        "body": (await request.read()).decode(),
    }
    headers = CIMultiDict([("X-Echo", "one"), ("X-Echo", "two")])
    status = int(request.query.get("status", "200"))
    return web.json_response(body, status=status, headers=headers)


@pytest.fixture
async def local_api() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture(autouse=True)
def fast_reconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "RECONNECT_BACKOFF_S", (0.01, 0.1))


WorkersFactory = Callable[..., Awaitable[worker.Workers]]


@pytest.fixture
async def make_workers(local_api: str) -> AsyncIterator[WorkersFactory]:
    started: list[worker.Workers] = []

    async def make(url: str = local_api, **querier: object) -> worker.Workers:
        workers = worker.Workers(config.Querier(**querier), "querier-1", lambda: url)  # type: ignore[arg-type]
        await workers.start()
        started.append(workers)
        return workers

    try:
        yield make
    finally:
        for workers in started:
            await workers.stop()


async def _connected(frontend: frontend_mod.Frontend, count: int) -> None:
    await eventually(
        lambda: frontend.clients["querier-1"] == count,
        lambda: f"expected {count} streams of querier-1, have {dict(frontend.clients)}",
    )


def _request(url: str, method: str = "GET", body: bytes = b"") -> frontend_pb2.HTTPRequest:
    return frontend_pb2.HTTPRequest(
        method=method,
        url=url,
        headers=[
            frontend_pb2.Header(key="X-Scope-OrgID", values=["tenant-a"]),
            frontend_pb2.Header(key="Cache-Control", values=["no-cache"]),
        ],
        body=body,
    )


async def _run(
    frontend: frontend_mod.Frontend, request: frontend_pb2.HTTPRequest
) -> tuple[frontend_pb2.HTTPResponse, dict[str, object]]:
    response = await asyncio.wait_for(frontend.run("tenant-a", request), TIMEOUT)
    return response, json.loads(response.body)


async def test_workers_forward_requests_and_return_answers(
    frontends: list[FrontendServer], make_workers: WorkersFactory
) -> None:
    frontends.append(served := await _start_frontend())
    await make_workers(frontend_addresses=(served.address,), max_concurrent=2)
    await _connected(served.frontend, 2)

    request = _request(
        "/loki/api/v1/query_range?query=%7Ba%3D%22b%22%7D&status=206", "POST", b"x=1"
    )
    response, echoed = await _run(served.frontend, request)

    assert echoed == {
        "method": "POST",
        "path_qs": "/loki/api/v1/query_range?query=%7Ba%3D%22b%22%7D&status=206",
        "query": '{a="b"}',
        "org_ids": ["tenant-a"],
        "cache_control": "no-cache",
        "body": "x=1",
    }
    assert response.code == 206
    headers = {h.key.lower(): list(h.values) for h in response.headers}
    assert headers["x-echo"] == ["one", "two"]
    assert headers["content-type"] == ["application/json; charset=utf-8"]
    assert not {"content-length", "transfer-encoding", "connection"} & set(headers)


async def test_error_answers_are_returned_as_they_are(
    frontends: list[FrontendServer], make_workers: WorkersFactory
) -> None:
    frontends.append(served := await _start_frontend())
    await make_workers(frontend_addresses=(served.address,), max_concurrent=1)
    await _connected(served.frontend, 1)
    response, echoed = await _run(served.frontend, _request("/x?status=400"))
    assert response.code == 400
    assert echoed["path_qs"] == "/x?status=400"


async def test_concurrent_requests_use_every_worker(
    frontends: list[FrontendServer], make_workers: WorkersFactory
) -> None:
    frontends.append(served := await _start_frontend())
    await make_workers(frontend_addresses=(served.address,), max_concurrent=3)
    await _connected(served.frontend, 3)
    answers = await asyncio.gather(*(_run(served.frontend, _request(f"/{i}")) for i in range(10)))
    assert sorted(str(echoed["path_qs"]) for _, echoed in answers) == sorted(
        f"/{i}" for i in range(10)
    )


async def test_unreachable_local_api_is_a_500(
    frontends: list[FrontendServer], make_workers: WorkersFactory
) -> None:
    frontends.append(served := await _start_frontend(max_retries=0))
    await make_workers("http://127.0.0.1:1", frontend_addresses=(served.address,), max_concurrent=1)
    await _connected(served.frontend, 1)
    response = await asyncio.wait_for(served.frontend.run("t", _request("/x")), TIMEOUT)
    assert response.code == 500
    assert response.body
    # The worker goes on serving.
    response = await asyncio.wait_for(served.frontend.run("t", _request("/y")), TIMEOUT)
    assert response.code == 500


async def test_a_worker_outlives_an_unexpected_error(
    frontends: list[FrontendServer], make_workers: WorkersFactory, local_api: str
) -> None:
    # The one worker fails its first request in a way no handler expects (aiohttp's total
    # timeout, for one, raises a plain TimeoutError): it reconnects, and the frontend hands the
    # request to it again.
    frontends.append(served := await _start_frontend(max_retries=1))
    calls = 0

    def url() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TimeoutError("the local API took too long")
        return local_api

    workers = worker.Workers(
        config.Querier(frontend_addresses=(served.address,), max_concurrent=1), "querier-1", url
    )
    await workers.start()
    try:
        await _connected(served.frontend, 1)
        response, echoed = await _run(served.frontend, _request("/again"))
        assert response.code == 200
        assert echoed["path_qs"] == "/again"
        assert calls == 2
    finally:
        await workers.stop()


async def test_worker_requests_have_no_client_timeout(make_workers: WorkersFactory) -> None:
    # The querier ends a query at the tenant's query_timeout; a client timeout of its own
    # would cut queries the tenant may run.
    workers = await make_workers(frontend_addresses=("127.0.0.1:1",))
    assert workers._session is not None
    assert workers._session.timeout.total is None


async def test_workers_are_spread_over_the_frontends(
    frontends: list[FrontendServer], make_workers: WorkersFactory
) -> None:
    frontends.extend([await _start_frontend(), await _start_frontend()])
    await make_workers(frontend_addresses=tuple(f.address for f in frontends), max_concurrent=3)
    for served in frontends:
        await _connected(served.frontend, 2)
        _, echoed = await _run(served.frontend, _request("/here"))
        assert echoed["path_qs"] == "/here"


async def test_workers_find_frontends_through_dns(
    frontends: list[FrontendServer], make_workers: WorkersFactory
) -> None:
    frontends.append(served := await _start_frontend())
    await make_workers(
        frontend_dns=f"localhost:{served.port}",
        frontend_dns_refresh_period=datetime.timedelta(milliseconds=50),
        max_concurrent=2,
    )
    await _connected(served.frontend, 2)
    _, echoed = await _run(served.frontend, _request("/dns"))
    assert echoed["path_qs"] == "/dns"


async def test_stop_closes_the_streams(
    frontends: list[FrontendServer], make_workers: WorkersFactory
) -> None:
    frontends.append(served := await _start_frontend())
    workers = await make_workers(frontend_addresses=(served.address,), max_concurrent=2)
    await _connected(served.frontend, 2)
    await workers.stop()
    await eventually(
        lambda: served.frontend.connected_queriers == 0, lambda: str(served.frontend.clients)
    )


async def test_without_frontends_nothing_starts(make_workers: WorkersFactory) -> None:
    workers = await make_workers()
    assert not workers.enabled
    assert workers._runner is None


@pytest.mark.parametrize("graceful", [True, False], ids=["stopped", "crashed"])
async def test_workers_reconnect_after_the_frontend_restarts(
    frontends: list[FrontendServer],
    make_workers: WorkersFactory,
    graceful: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = await _start_frontend()
    await make_workers(frontend_addresses=(first.address,), max_concurrent=2)
    await _connected(first.frontend, 2)
    _, echoed = await _run(first.frontend, _request("/before"))
    assert echoed["path_qs"] == "/before"

    if graceful:
        await first.stop()  # the streams end normally
    else:
        await first.server.stop(None)  # the streams fail
    frontends.append(second := await _start_frontend(port=first.port))
    await _connected(second.frontend, 2)
    _, echoed = await _run(second.frontend, _request("/after"))
    assert echoed["path_qs"] == "/after"
    # The broken streams left nothing behind that asyncio complains about (tasks destroyed
    # while pending, generators closed while running).
    gc.collect()
    await asyncio.sleep(0)
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


async def test_workers_follow_the_frontends_dns_finds(
    frontends: list[FrontendServer],
    make_workers: WorkersFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frontends.extend([await _start_frontend(), await _start_frontend()])
    first, second = frontends
    found = [first.address]

    async def resolve(target: str) -> list[str]:
        assert target == "frontend-headless:9095"
        return list(found)

    monkeypatch.setattr(worker, "resolve", resolve)
    await make_workers(
        frontend_dns="frontend-headless:9095",
        frontend_dns_refresh_period=datetime.timedelta(milliseconds=20),
        max_concurrent=4,
    )
    await _connected(first.frontend, 4)

    found.append(second.address)  # a second frontend Pod: the four workers are shared out
    await _connected(second.frontend, 2)
    await _connected(first.frontend, 2)

    found.remove(first.address)  # the first Pod is gone: all four go to the second
    await _connected(second.frontend, 4)
    await _connected(first.frontend, 0)
