"""Retiring ingesters: the shutdown request, the wait for the ring Lease, the shrinking order.

A small aiohttp app plays the ingester's ``/ingester/shutdown`` and ``/ready`` on a free loopback
port; an in-memory stand-in for the API holds the pod and the ring Lease.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from kubernetes import client as kube_client
from lokistack_operator import kube, scaledown
from testinfra import processes

LOG = logging.getLogger("test")


@dataclasses.dataclass
class FakeKube(kube.Kube):
    """Pods and Leases in memory; only the reads :mod:`scaledown` makes."""

    pods: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    leases: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    async def get(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        assert kind == "Pod"
        return self.pods.get(name)

    async def list(
        self, api_version: str, kind: str, namespace: str, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        assert (kind, label_selector) == ("Lease", "lokistack.dev/ring=ingester")
        return list(self.leases)


def fake_kube() -> FakeKube:
    return FakeKube(kube_client.ApiClient(kube_client.Configuration()))


def running_pod() -> dict[str, Any]:
    return {"status": {"phase": "Running", "podIP": "127.0.0.1"}}


def lease(holder: str, uid: str) -> dict[str, Any]:
    return {"metadata": {"uid": uid}, "spec": {"holderIdentity": holder}}


@dataclasses.dataclass
class Ingester:
    """The two endpoints of an ingester the operator uses, with a scripted behaviour."""

    shutdown_status: int = 204
    ready: bool = True
    requests: list[str] = dataclasses.field(default_factory=list)
    on_shutdown: Any = None

    async def shutdown(self, request: web.Request) -> web.Response:
        self.requests.append(f"{request.method} {request.path_qs}")
        if self.on_shutdown is not None:
            self.on_shutdown()
        return web.Response(status=self.shutdown_status)

    async def readiness(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if self.ready else 503)


@pytest.fixture
async def served() -> AsyncIterator[tuple[Ingester, int]]:
    ingester = Ingester()
    app = web.Application()
    app.router.add_route("*", "/ingester/shutdown", ingester.shutdown)
    app.router.add_get("/ready", ingester.readiness)
    runner = web.AppRunner(app)
    await runner.setup()
    port = processes.free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield ingester, port
    finally:
        await runner.cleanup()


def timing(port: int, timeout: float = 5.0) -> scaledown.Timing:
    return scaledown.Timing(shutdown_timeout=timeout, poll_interval=0.02, http_port=port)


async def test_retire_waits_until_the_ring_lease_is_gone(served: tuple[Ingester, int]) -> None:
    ingester, port = served
    client = fake_kube()
    client.pods["s-ingester-2"] = running_pod()
    client.leases = [lease("s-ingester-2", "uid-1"), lease("s-ingester-1", "uid-0")]
    ingester.on_shutdown = lambda: setattr(ingester, "ready", False)

    async def leave_later() -> None:
        await asyncio.sleep(0.3)
        client.leases = [lease("s-ingester-1", "uid-0")]

    leaving = asyncio.create_task(leave_later())
    started = asyncio.get_running_loop().time()
    outcome = await scaledown.retire(client, "ns", "s-ingester-2", timing(port), LOG)
    await leaving
    assert outcome == scaledown.Outcome(
        "s-ingester-2", True, "s-ingester-2 flushed and left the ring"
    )
    # /ready failed at once, but the Lease was still there: the wait lasted until it was gone.
    assert asyncio.get_running_loop().time() - started >= 0.3
    assert ingester.requests == ["POST /ingester/shutdown?flush=true&terminate=true"]


async def test_a_new_lease_of_the_same_pod_counts_as_left(served: tuple[Ingester, int]) -> None:
    ingester, port = served
    client = fake_kube()
    client.pods["s-ingester-1"] = running_pod()
    client.leases = [lease("s-ingester-1", "before")]
    # The container restarted and registered again: another Lease object, another uid.
    ingester.on_shutdown = lambda: setattr(client, "leases", [lease("s-ingester-1", "after")])
    outcome = await scaledown.retire(client, "ns", "s-ingester-1", timing(port), LOG)
    assert outcome.left


async def test_without_a_lease_the_wait_ends_when_ready_fails(
    served: tuple[Ingester, int],
) -> None:
    ingester, port = served
    client = fake_kube()
    client.pods["p"] = running_pod()
    ingester.on_shutdown = lambda: setattr(ingester, "ready", False)
    outcome = await scaledown.retire(client, "ns", "p", timing(port), LOG)
    assert outcome == scaledown.Outcome("p", True, "p flushed and stopped")


async def test_an_ingester_already_stopping_is_waited_for(served: tuple[Ingester, int]) -> None:
    ingester, port = served
    ingester.shutdown_status = 503
    ingester.ready = False
    client = fake_kube()
    client.pods["p"] = running_pod()
    assert (await scaledown.retire(client, "ns", "p", timing(port), LOG)).left


async def test_a_refusal_is_reported(served: tuple[Ingester, int]) -> None:
    ingester, port = served
    ingester.shutdown_status = 500
    client = fake_kube()
    client.pods["p"] = running_pod()
    outcome = await scaledown.retire(client, "ns", "p", timing(port), LOG)
    assert not outcome.left
    assert "refused the shutdown: 500" in outcome.detail


async def test_the_wait_is_bounded(served: tuple[Ingester, int]) -> None:
    _, port = served
    client = fake_kube()
    client.pods["p"] = running_pod()
    client.leases = [lease("p", "uid")]  # never goes away
    outcome = await scaledown.retire(client, "ns", "p", timing(port, timeout=0.2), LOG)
    assert not outcome.left
    assert "did not leave the ring within 0s" in outcome.detail


async def test_pods_that_cannot_flush_are_not_waited_for() -> None:
    client = fake_kube()
    client.pods["pending"] = {"status": {"phase": "Pending"}}
    client.pods["silent"] = running_pod()  # nothing listens on the port
    port = processes.free_port()
    missing = await scaledown.retire(client, "ns", "missing", timing(port), LOG)
    pending = await scaledown.retire(client, "ns", "pending", timing(port), LOG)
    silent = await scaledown.retire(client, "ns", "silent", timing(port), LOG)
    assert not missing.left and "not running" in missing.detail
    assert not pending.left and "not running" in pending.detail
    assert not silent.left and "did not answer" in silent.detail


async def test_scale_down_goes_highest_first_and_shrinks_after_each(
    served: tuple[Ingester, int],
) -> None:
    ingester, port = served
    client = fake_kube()
    for ordinal in range(4):
        client.pods[f"s-ingester-{ordinal}"] = running_pod()
    ingester.on_shutdown = lambda: setattr(ingester, "ready", False)
    steps: list[str] = []

    async def progress(pod: str, current: int, desired: int) -> None:
        ingester.ready = True
        steps.append(f"retire {pod} ({current}->{desired})")

    async def apply(replicas: int) -> None:
        steps.append(f"replicas {replicas}")

    outcomes = await scaledown.scale_down(
        client, "ns", "s-ingester", 4, 2, apply=apply, progress=progress, timing=timing(port),
        logger=LOG,
    )  # fmt: skip
    assert [outcome.pod for outcome in outcomes] == ["s-ingester-3", "s-ingester-2"]
    assert steps == [
        "retire s-ingester-3 (4->2)",
        "replicas 3",
        "retire s-ingester-2 (4->2)",
        "replicas 2",
    ]
