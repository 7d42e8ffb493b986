"""The frontend's dispatcher over a real gRPC server, with hand-driven querier worker streams."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, Final, cast

import grpc
import prometheus_client
import pytest
from lokistack.frontend import frontend as frontend_mod
from lokistack.frontend import queue as queue_mod
from lokistack.proto import frontend_pb2, frontend_pb2_grpc

from tests.support.polling import eventually

TIMEOUT: Final = 5.0


@dataclasses.dataclass
class Server:
    frontend: frontend_mod.Frontend
    address: str
    channels: list[grpc.aio.Channel] = dataclasses.field(default_factory=list)

    async def worker(self, client_id: str = "querier-1") -> Worker:
        """A querier worker stream that has announced itself and is counted as connected."""
        channel = grpc.aio.insecure_channel(self.address)
        self.channels.append(channel)
        worker = Worker(frontend_pb2_grpc.FrontendStub(channel).Process())
        before = self.frontend.clients[client_id] if client_id else 0
        await worker.call.write(frontend_pb2.ClientToFrontend(client_id=client_id))
        if client_id:
            await eventually(
                lambda: self.frontend.clients[client_id] > before,
                lambda: f"{client_id} never counted: {dict(self.frontend.clients)}",
            )
        return worker


@dataclasses.dataclass
class Worker:
    """One ``Process`` stream, driven by the test: read a request, answer it, or break."""

    call: grpc.aio.StreamStreamCall[frontend_pb2.ClientToFrontend, frontend_pb2.FrontendToClient]

    async def receive(self) -> frontend_pb2.FrontendToClient:
        message = await asyncio.wait_for(self.call.read(), TIMEOUT)
        assert message is not grpc.aio.EOF, "the frontend ended the stream"
        assert isinstance(message, frontend_pb2.FrontendToClient)
        return message

    async def answer(
        self, message: frontend_pb2.FrontendToClient, code: int = 200, body: bytes = b"ok"
    ) -> None:
        response = frontend_pb2.HTTPResponse(
            code=code,
            body=body,
            headers=[frontend_pb2.Header(key="Content-Type", values=["text/plain"])],
        )
        await self.call.write(frontend_pb2.ClientToFrontend(id=message.id, http_response=response))


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    frontend = frontend_mod.Frontend(max_outstanding_per_tenant=100, max_retries=2)
    grpc_server = grpc.aio.server()
    frontend_pb2_grpc.add_FrontendServicer_to_server(frontend, grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    started = Server(frontend, f"127.0.0.1:{port}")
    try:
        yield started
    finally:
        await frontend.stop()
        for channel in started.channels:
            await channel.close()
        await grpc_server.stop(None)


def _request(url: str) -> frontend_pb2.HTTPRequest:
    return frontend_pb2.HTTPRequest(
        method="GET",
        url=url,
        headers=[frontend_pb2.Header(key="X-Scope-OrgID", values=["t"])],
    )


def _submit(
    frontend: frontend_mod.Frontend, url: str, tenant: str = "t"
) -> asyncio.Task[frontend_pb2.HTTPResponse]:
    return asyncio.create_task(frontend.run(tenant, _request(url)))


def _retries() -> float:
    return prometheus_client.REGISTRY.get_sample_value("loki_query_frontend_retries_total") or 0.0


async def test_request_is_delivered_and_answered(server: Server) -> None:
    worker = await server.worker()
    running = _submit(server.frontend, "/loki/api/v1/query?query=x")

    message = await worker.receive()
    assert message.id > 0
    assert message.http_request == _request("/loki/api/v1/query?query=x")
    await worker.answer(message, 200, b'{"status":"success"}')

    response = await asyncio.wait_for(running, TIMEOUT)
    assert response.code == 200
    assert response.body == b'{"status":"success"}'
    assert [(h.key, list(h.values)) for h in response.headers] == [("Content-Type", ["text/plain"])]


async def test_one_request_at_a_time_per_stream(server: Server) -> None:
    worker = await server.worker()
    first, second = _submit(server.frontend, "/1"), _submit(server.frontend, "/2")

    message = await worker.receive()
    assert message.http_request.url == "/1"
    # The second request waits for the first answer.
    read_next = asyncio.create_task(worker.receive())
    await eventually(lambda: server.frontend.queue.length("t") == 1, lambda: "not queued")
    assert not read_next.done()
    await worker.answer(message, body=b"one")
    message = await read_next
    assert message.http_request.url == "/2"
    await worker.answer(message, body=b"two")

    assert (await first).body == b"one"
    assert (await second).body == b"two"


async def test_waiting_workers_share_the_requests(server: Server) -> None:
    workers = [await server.worker("querier-1"), await server.worker("querier-2")]
    running = [_submit(server.frontend, f"/{i}") for i in range(2)]

    messages = [await worker.receive() for worker in workers]
    assert sorted(m.http_request.url for m in messages) == ["/0", "/1"]
    for worker, message in zip(workers, messages, strict=True):
        await worker.answer(message, body=message.http_request.url.encode())
    assert [(await task).body for task in running] == [b"/0", b"/1"]


def _cancel(worker: Worker) -> Awaitable[None]:
    worker.call.cancel()
    return asyncio.sleep(0)


async def _half_close(worker: Worker) -> None:
    await worker.call.done_writing()


@pytest.mark.parametrize("break_stream", [_cancel, _half_close], ids=["cancelled", "half-closed"])
async def test_broken_stream_mid_request_is_retried_on_another_worker(
    server: Server, break_stream: Callable[[Worker], Awaitable[None]]
) -> None:
    retries = _retries()
    dying = await server.worker("querier-1")
    running = _submit(server.frontend, "/q")
    message = await dying.receive()
    assert message.http_request.url == "/q"

    healthy = await server.worker("querier-2")
    await break_stream(dying)

    retried = await healthy.receive()
    assert retried.http_request == message.http_request
    assert retried.id != message.id
    await healthy.answer(retried, body=b"answer")
    response = await asyncio.wait_for(running, TIMEOUT)
    assert (response.code, response.body) == (200, b"answer")
    assert _retries() == retries + 1
    await eventually(
        lambda: "querier-1" not in server.frontend.clients,
        lambda: f"the broken stream is still counted: {dict(server.frontend.clients)}",
    )


async def test_request_fails_once_its_streams_broke_max_retries_plus_one_times(
    server: Server,
) -> None:
    running = _submit(server.frontend, "/q")
    for attempt in range(server.frontend.max_retries + 1):
        worker = await server.worker(f"querier-{attempt}")
        await worker.receive()
        worker.call.cancel()
    with pytest.raises(frontend_mod.QuerierUnavailableError, match="went away"):
        await asyncio.wait_for(running, TIMEOUT)
    assert len(server.frontend.queue) == 0


async def test_5xx_is_retried_max_retries_times_then_returned(server: Server) -> None:
    worker = await server.worker()
    running = _submit(server.frontend, "/q")

    attempts = server.frontend.max_retries + 1
    for attempt in range(attempts):
        message = await worker.receive()
        assert message.http_request.url == "/q"
        await worker.answer(message, 503, f"busy {attempt}".encode())

    response = await asyncio.wait_for(running, TIMEOUT)
    assert (response.code, response.body) == (503, f"busy {attempts - 1}".encode())
    # Nothing is queued again after the last answer.
    assert len(server.frontend.queue) == 0


async def test_5xx_then_success_returns_the_success(server: Server) -> None:
    worker = await server.worker()
    running = _submit(server.frontend, "/q")
    await worker.answer(await worker.receive(), 500, b"boom")
    await worker.answer(await worker.receive(), 200, b"fine")
    response = await asyncio.wait_for(running, TIMEOUT)
    assert (response.code, response.body) == (200, b"fine")


async def test_4xx_is_returned_at_once(server: Server) -> None:
    worker = await server.worker()
    running = _submit(server.frontend, "/bad")
    await worker.answer(await worker.receive(), 400, b"parse error")

    response = await asyncio.wait_for(running, TIMEOUT)
    assert (response.code, response.body) == (400, b"parse error")
    # Not retried: the next request the worker sees is a new one.
    later = _submit(server.frontend, "/next")
    message = await worker.receive()
    assert message.http_request.url == "/next"
    await worker.answer(message)
    await later


async def test_caller_cancelled_while_queued_removes_its_request(server: Server) -> None:
    running = _submit(server.frontend, "/abandoned")
    await eventually(lambda: server.frontend.queue.length("t") == 1, lambda: "never queued")

    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert server.frontend.queue.length("t") == 0

    worker = await server.worker()
    later = _submit(server.frontend, "/next")
    message = await worker.receive()
    assert message.http_request.url == "/next"
    await worker.answer(message)
    await later


async def test_caller_cancelled_while_running_discards_the_answer(server: Server) -> None:
    worker = await server.worker()
    running = _submit(server.frontend, "/slow")
    message = await worker.receive()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    await worker.answer(message, body=b"nobody reads this")
    # The stream goes on serving.
    later = _submit(server.frontend, "/next")
    message = await worker.receive()
    assert message.http_request.url == "/next"
    await worker.answer(message, body=b"next")
    assert (await later).body == b"next"


async def test_full_tenant_queue_raises_too_many_outstanding(server: Server) -> None:
    frontend = frontend_mod.Frontend(max_outstanding_per_tenant=1, max_retries=0)
    queued = asyncio.create_task(frontend.run("t", _request("/1")))
    await eventually(lambda: frontend.queue.length("t") == 1, lambda: "never queued")
    with pytest.raises(queue_mod.TooManyOutstandingError):
        await frontend.run("t", _request("/2"))
    queued.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await queued


async def test_connected_queriers_counts_distinct_client_ids(server: Server) -> None:
    frontend = server.frontend
    gauge = "loki_query_frontend_connected_clients"
    assert frontend.connected_queriers == 0
    first = await server.worker("querier-1")
    second = await server.worker("querier-1")
    await server.worker("querier-2")
    assert frontend.connected_queriers == 2
    assert frontend.clients["querier-1"] == 2
    assert prometheus_client.REGISTRY.get_sample_value(gauge) == 2

    first.call.cancel()
    await eventually(lambda: frontend.clients["querier-1"] == 1, lambda: str(frontend.clients))
    assert frontend.connected_queriers == 2
    second.call.cancel()
    await eventually(lambda: frontend.connected_queriers == 1, lambda: str(frontend.clients))
    assert prometheus_client.REGISTRY.get_sample_value(gauge) == 1


async def test_a_client_without_an_id_is_counted_by_its_peer(server: Server) -> None:
    await server.worker(client_id="")
    await eventually(
        lambda: server.frontend.connected_queriers == 1, lambda: str(server.frontend.clients)
    )
    (peer,) = server.frontend.clients
    assert "127.0.0.1" in peer


async def test_stop_ends_the_worker_streams(server: Server) -> None:
    worker = await server.worker()
    await server.frontend.stop()
    assert await asyncio.wait_for(worker.call.read(), TIMEOUT) is grpc.aio.EOF
    assert await asyncio.wait_for(worker.call.code(), TIMEOUT) == grpc.StatusCode.OK
    await eventually(
        lambda: server.frontend.connected_queriers == 0, lambda: str(server.frontend.clients)
    )


async def test_a_stream_closed_while_its_request_is_sent_queues_the_request_again() -> None:
    """gRPC abandons the servicer's generator at its ``yield`` when writing the request fails
    (or the server stops); closing it there must not lose the request."""
    frontend = frontend_mod.Frontend(max_outstanding_per_tenant=10, max_retries=2)
    inbox: asyncio.Queue[frontend_pb2.ClientToFrontend] = asyncio.Queue()
    await inbox.put(frontend_pb2.ClientToFrontend(client_id="querier-1"))

    async def incoming() -> AsyncIterator[frontend_pb2.ClientToFrontend]:
        while True:
            yield await inbox.get()

    stream = cast(
        AsyncGenerator[frontend_pb2.FrontendToClient, None],
        frontend.Process(incoming(), cast(Any, None)),
    )
    running = _submit(frontend, "/q")
    message = await asyncio.wait_for(anext(stream), TIMEOUT)
    assert message.http_request.url == "/q"
    assert frontend.queue.length("t") == 0

    await stream.aclose()

    assert frontend.queue.length("t") == 1
    assert frontend.connected_queriers == 0
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running


async def test_a_stream_that_ends_before_announcing_itself_is_not_counted(server: Server) -> None:
    channel = grpc.aio.insecure_channel(server.address)
    server.channels.append(channel)
    call = frontend_pb2_grpc.FrontendStub(channel).Process()
    await call.done_writing()
    assert await asyncio.wait_for(call.code(), TIMEOUT) == grpc.StatusCode.OK
    assert server.frontend.connected_queriers == 0


async def test_a_retry_that_finds_the_queue_full_is_a_429(server: Server) -> None:
    frontend = frontend_mod.Frontend(max_outstanding_per_tenant=1, max_retries=3)
    server_ = grpc.aio.server()
    frontend_pb2_grpc.add_FrontendServicer_to_server(frontend, server_)
    port = server_.add_insecure_port("127.0.0.1:0")
    await server_.start()
    small = Server(frontend, f"127.0.0.1:{port}", server.channels)
    try:
        worker = await small.worker()
        first = _submit(frontend, "/first")
        message = await worker.receive()
        second = _submit(frontend, "/second")  # fills the tenant's queue
        await eventually(lambda: frontend.queue.length("t") == 1, lambda: "never queued")

        await worker.answer(message, 503, b"busy")
        with pytest.raises(queue_mod.TooManyOutstandingError):
            await asyncio.wait_for(first, TIMEOUT)
        message = await worker.receive()
        assert message.http_request.url == "/second"
        await worker.answer(message)
        assert (await second).code == 200
    finally:
        await frontend.stop()
        await server_.stop(None)


async def test_a_request_abandoned_while_running_is_not_retried(server: Server) -> None:
    worker = await server.worker()
    running = _submit(server.frontend, "/abandoned")
    message = await worker.receive()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    await worker.answer(message, 500, b"failed")  # would be retried if anyone still waited
    later = _submit(server.frontend, "/next")
    message = await worker.receive()
    assert message.http_request.url == "/next"
    await worker.answer(message)
    await later
