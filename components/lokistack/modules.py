"""Which components a ``--target`` runs, and how they are wired into one process.

As Loki's modules do, this is the one place that knows the dependencies between parts: the
ingester needs the ring lifecycler and the limits; the distributor needs the ingester ring, its
own ring (to share the global rate limit) and the ingester clients; ``all`` runs both in one
process, where the distributor reaches the ingester over its own gRPC port. Start order is
servers first (the ring address needs the bound gRPC port), then ring membership; stop order is
the reverse, so an ingester leaves the ring before its servers close.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import os
import pathlib
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import prometheus_client
from aiohttp import web

from lokistack import config, limits, logs
from lokistack import server as server_mod
from lokistack.distributor import decode, ingester_client, rate, validation
from lokistack.distributor import distributor as distributor_mod
from lokistack.distributor import http as distributor_http
from lokistack.frontend import frontend as frontend_mod
from lokistack.frontend import http as frontend_http
from lokistack.frontend import tail_proxy
from lokistack.ingester import ingester as ingester_mod
from lokistack.proto import frontend_pb2_grpc, push_pb2_grpc, querier_pb2_grpc
from lokistack.querier import chunk_cache, ingesters, worker
from lokistack.querier import http as querier_http
from lokistack.querier import querier as querier_mod
from lokistack.querier import store as querier_store
from lokistack.querier import tail as querier_tail
from lokistack.ring import http as ring_http
from lokistack.ring import kv as ring_kv
from lokistack.ring import lifecycler as ring_lifecycler
from lokistack.ring import ring as ring_mod
from lokistack.storage import chunk_store, index_reader
from lokistack.storage import factory as storage_factory

log = logging.getLogger(__name__)

INGESTER_RING = "ingester"
DISTRIBUTOR_RING = "distributor"

RUNS_INGESTER = frozenset({"all", "ingester"})
RUNS_DISTRIBUTOR = frozenset({"all", "distributor"})
RUNS_QUERIER = frozenset({"all", "querier"})
RUNS_FRONTEND = frozenset({"query-frontend"})
IMPLEMENTED_TARGETS = RUNS_INGESTER | RUNS_DISTRIBUTOR | RUNS_QUERIER | RUNS_FRONTEND


def instance_id(configured: str) -> str:
    return configured or socket.gethostname()


def instance_addr(configured: str, grpc_listen_address: str) -> str:
    """The address other components dial to reach this process's gRPC server.

    The configured ``instance_addr`` if any; else the gRPC listen address when it names one
    interface (a process bound to 127.0.0.1 is reachable only there); else this host's primary
    address, as a Pod's IP.
    """
    if configured:
        return configured
    if grpc_listen_address not in ("", "0.0.0.0", "::"):
        return grpc_listen_address
    with contextlib.suppress(OSError):
        return socket.gethostbyname(socket.gethostname())
    return "127.0.0.1"


def ring_store(
    kvstore: config.KVStore, ring_name: str, heartbeat_timeout: datetime.timedelta
) -> ring_kv.RingStore:
    """The membership store of one ring: process-wide in memory, or Leases in Kubernetes.

    Outside a cluster (tests, a laptop against `make cluster`) the Lease store uses the
    kubeconfig named by ``KUBECONFIG``; in a Pod it uses the service account.
    """
    kubeconfig = os.environ.get("KUBECONFIG")
    return ring_kv.new_store(
        kvstore,
        ring_name,
        heartbeat_timeout,
        kubeconfig=pathlib.Path(kubeconfig) if kubeconfig else None,
    )


def ring_routes(path: str, ring: ring_mod.Ring) -> list[web.RouteDef]:
    """``GET <path>``: the ring as HTML for people, as JSON for ``Accept: application/json``."""

    async def show(request: web.Request) -> web.Response:
        status = ring_http.ring_status(ring, now=time.time())
        if "application/json" in request.headers.get("Accept", ""):
            return web.json_response(status)
        return web.Response(text=ring_http.ring_status_html(status), content_type="text/html")

    return [web.get(path, show)]


@dataclasses.dataclass
class Process:
    """The started parts of one process, stopped in reverse order."""

    cfg: config.Config
    server: server_mod.Server
    startups: list[Callable[[], Awaitable[None]]] = dataclasses.field(default_factory=list)
    shutdowns: list[Callable[[], Awaitable[None]]] = dataclasses.field(default_factory=list)
    background_jobs: list[Callable[[], Coroutine[Any, Any, None]]] = dataclasses.field(
        default_factory=list
    )
    stop: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    _spawned: set[asyncio.Task[None]] = dataclasses.field(default_factory=set)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background, keeping a reference until it ends."""
        task = asyncio.create_task(work)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)


def build(cfg: config.Config) -> Process:
    """Create the components of ``cfg.target`` and register them with one server."""
    if cfg.target not in IMPLEMENTED_TARGETS:
        raise NotImplementedError(f"target {cfg.target} is not implemented yet in this build")
    server = server_mod.Server(cfg)
    process = Process(cfg, server)
    overrides = limits.Overrides.from_config(cfg)
    process.background_jobs.append(overrides.run)
    if cfg.target in RUNS_FRONTEND:
        _add_frontend(process, overrides)
    if cfg.target not in RUNS_INGESTER | RUNS_DISTRIBUTOR | RUNS_QUERIER:
        return process
    ring_cfg = cfg.ring

    ingester_store = ring_store(ring_cfg.kvstore, INGESTER_RING, ring_cfg.heartbeat_timeout)
    ingester_ring = ring_mod.Ring(
        ingester_store,
        ring_cfg.replication_factor,
        ring_cfg.heartbeat_timeout,
        ring_cfg.zone_awareness_enabled,
        name=INGESTER_RING,
    )
    process.startups.append(ingester_store.start)
    process.shutdowns.append(ingester_store.stop)
    server.add_routes(ring_routes("/ring", ingester_ring))

    if cfg.target in RUNS_INGESTER:
        _add_ingester(process, overrides, ingester_store, ingester_ring)
    if cfg.target in RUNS_DISTRIBUTOR:
        _add_distributor(process, overrides, ingester_ring)
    if cfg.target in RUNS_QUERIER:
        _add_querier(process, overrides, ingester_ring)
    return process


def _add_ingester(
    process: Process,
    overrides: limits.Overrides,
    store: ring_kv.RingStore,
    ingester_ring: ring_mod.Ring,
) -> None:
    cfg, server = process.cfg, process.server
    ring_cfg = cfg.ring
    tokens_file = pathlib.Path(cfg.ingester.wal.dir) / "tokens.json"
    member: ring_lifecycler.Lifecycler | None = None
    this_instance = instance_id(ring_cfg.instance_id)

    class _Member:
        def is_active(self) -> bool:
            return member is not None and member.is_active()

    ingester = ingester_mod.Ingester(
        cfg,
        overrides=overrides,
        member=_Member(),
        healthy_ingesters=ingester_ring.healthy_instances_count,
        store=storage_factory.new_object_store(cfg.storage),
        instance_id=this_instance,
    )
    push_pb2_grpc.add_PusherServicer_to_server(ingester, server.grpc_server)
    querier_pb2_grpc.add_QuerierServicer_to_server(ingester.query_service, server.grpc_server)
    server.add_readiness_check("Ingester", ingester.readiness)
    server.add_routes(ingester.routes())

    async def join() -> None:
        nonlocal member
        await ingester.start()  # WAL replay first: the ring sees this ingester only after it
        member = ring_lifecycler.Lifecycler(
            store,
            instance_id=this_instance,
            addr=f"{instance_addr(ring_cfg.instance_addr, cfg.server.grpc_listen_address)}:"
            f"{server.grpc_port}",
            zone=ring_cfg.instance_zone,
            num_tokens=ring_cfg.num_tokens,
            heartbeat_period=ring_cfg.heartbeat_period,
            tokens_file=tokens_file,
        )
        await member.start()

    stopped = False

    async def leave() -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        ingester.begin_shutdown()
        if member is not None:
            await member.leave()
        await ingester.stop()  # flushes while LEAVING: still in the ring, taking no writes
        if member is not None:
            await member.stop(unregister=True)

    def request_stop(terminate: bool) -> None:
        if terminate:
            process.stop.set()
        else:
            process.spawn(leave())

    ingester.request_stop = request_stop
    process.startups.append(join)
    process.shutdowns.append(leave)


def _add_distributor(
    process: Process,
    overrides: limits.Overrides,
    ingester_ring: ring_mod.Ring,
) -> None:
    cfg, server = process.cfg, process.server
    dist_cfg = cfg.distributor
    store = ring_store(dist_cfg.ring.kvstore, DISTRIBUTOR_RING, dist_cfg.ring.heartbeat_timeout)
    distributor_ring = ring_mod.Ring(
        store,
        replication_factor=1,
        heartbeat_timeout=dist_cfg.ring.heartbeat_timeout,
        name=DISTRIBUTOR_RING,
    )
    clients = ingester_client.IngesterClients(dist_cfg.push_timeout)
    distributor = distributor_mod.Distributor(
        validation.Validator(overrides.limits_for),
        rate.IngestionRateLimiter(overrides, distributor_ring.healthy_instances_count),
        ingester_ring,
        clients,
    )
    handler = distributor_http.PushHandler(
        distributor,
        cfg.auth_enabled,
        decode.DecodeLimits(dist_cfg.max_recv_msg_size, dist_cfg.max_decompressed_size),
    )
    server.add_routes(handler.routes())
    server.add_routes(ring_routes("/distributor/ring", distributor_ring))
    member: ring_lifecycler.Lifecycler | None = None

    async def join() -> None:
        nonlocal member
        await store.start()
        member = ring_lifecycler.Lifecycler(
            store,
            instance_id=instance_id(dist_cfg.ring.instance_id),
            addr=f"{instance_addr(dist_cfg.ring.instance_addr, cfg.server.grpc_listen_address)}:"
            f"{server.grpc_port}",
            zone="",
            num_tokens=1,
            heartbeat_period=dist_cfg.ring.heartbeat_period,
            tokens_file=None,
            ring_name=DISTRIBUTOR_RING,
        )
        await member.start()

    async def leave() -> None:
        if member is not None:
            await member.stop(unregister=True)
        await distributor.close()
        await store.stop()

    process.startups.append(join)
    process.shutdowns.append(leave)


def _add_querier(
    process: Process, overrides: limits.Overrides, ingester_ring: ring_mod.Ring
) -> None:
    """The query API over the ingesters (gRPC, the ring's read set) and the object store."""
    cfg, server = process.cfg, process.server
    querier_cfg = cfg.querier
    objects = storage_factory.new_object_store(cfg.storage)
    store = querier_store.StoreQuerier(
        index_reader.IndexReader(objects, querier_cfg.index_cache_dir),
        chunk_store.ChunkStore(objects),
        chunk_cache.ChunkCache(querier_cfg.chunk_cache_size),
    )
    ingester_querier = ingesters.IngesterQuerier(ingester_ring, cfg.limits.query_timeout)
    querier = querier_mod.Querier(querier_cfg, overrides, ingester_querier, store)
    api = querier_http.QueryAPI(querier, cfg.auth_enabled)
    server.add_routes(api.routes())
    tail_api = querier_tail.TailAPI(
        api, ingester_querier, querier_cfg.tail_max_duration.total_seconds()
    )
    server.add_routes(tail_api.routes())
    process.shutdowns.append(ingester_querier.close)
    http_host = cfg.server.http_listen_address
    if http_host in ("", "0.0.0.0", "::"):
        http_host = "127.0.0.1"
    workers = worker.Workers(
        querier_cfg,
        instance_id(cfg.ring.instance_id),
        lambda: f"http://{http_host}:{server.http_port}",
    )
    process.startups.append(workers.start)
    process.shutdowns.append(workers.stop)


def _add_frontend(process: Process, overrides: limits.Overrides) -> None:
    """Splitting, per-tenant queues and merging in front of queriers that pull the work."""
    cfg, server = process.cfg, process.server
    frontend_cfg = cfg.frontend
    frontend = frontend_mod.Frontend(
        frontend_cfg.max_outstanding_per_tenant, frontend_cfg.max_retries
    )
    frontend_pb2_grpc.add_FrontendServicer_to_server(frontend, server.grpc_server)
    api = frontend_http.FrontendAPI(cfg, overrides, frontend)
    server.add_routes(api.routes())
    process.shutdowns.append(frontend.stop)
    if frontend_cfg.tail_proxy_url:
        proxy = tail_proxy.TailProxy(frontend_cfg.tail_proxy_url)
        server.add_routes(proxy.routes())
        process.shutdowns.append(proxy.stop)


async def serve(cfg: config.Config) -> None:
    """Run ``cfg.target`` until SIGTERM/SIGINT (or a component asks to stop), then shut down
    in order."""
    process = build(cfg)
    stop = process.stop
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    background = [asyncio.create_task(job()) for job in process.background_jobs]
    await process.server.start()
    try:
        for startup in process.startups:
            await startup()
        log.info(
            "lokistack started", extra={"target": cfg.target, "http_port": process.server.http_port}
        )
        await stop.wait()
        log.info("lokistack stopping")
    finally:
        process.server.begin_shutdown()
        for shutdown in reversed(process.shutdowns):
            try:
                await shutdown()
            except Exception:
                log.exception("shutdown step failed")
        for task in background:
            task.cancel()
        await process.server.stop()


def run(cfg: config.Config) -> int:
    """Entry point from the CLI: set up logging and run until a signal."""
    logs.setup(cfg.server)
    # Loki exposes no *_created series; neither do we.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    if cfg.target not in IMPLEMENTED_TARGETS:
        log.error("target %s is not implemented yet in this build", cfg.target)
        return 1
    asyncio.run(serve(cfg))
    return 0
