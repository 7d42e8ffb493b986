"""The HTTP (aiohttp) and gRPC (grpc.aio) servers every component shares in one process.

Components do not import this module: they expose aiohttp handlers, gRPC servicers and readiness
checks, and :mod:`lokistack.modules` registers them here. What belongs to the server itself is
what Loki's server does for every route: ``/ready`` (combining the components' checks),
``/metrics``, ``/config``, and ``loki_request_duration_seconds`` per route.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import re
import time
from collections.abc import Awaitable, Callable

import grpc
import prometheus_client
from aiohttp import web

from lokistack import config

log = logging.getLogger(__name__)

REQUEST_DURATION = prometheus_client.Histogram(
    "loki_request_duration_seconds",
    "Time (in seconds) spent serving HTTP requests.",
    ["method", "route", "status_code", "ws"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100),
)
INFLIGHT = prometheus_client.Gauge(
    "loki_inflight_requests", "Current number of inflight requests.", ["method", "route"]
)

ReadinessCheck = Callable[[], str | None]
"""Returns None when the component is ready, or the reason it is not."""

_ROUTE_CHARS = re.compile(r"[^a-zA-Z0-9]+")


def _ms(duration: datetime.timedelta) -> int:
    return round(duration.total_seconds() * 1000)


def route_name(path: str) -> str:
    """Loki's route label: ``/loki/api/v1/push`` becomes ``loki_api_v1_push``."""
    return _ROUTE_CHARS.sub("_", path).strip("_") or "root"


@dataclasses.dataclass
class Server:
    """One HTTP and one gRPC listener, started and stopped together."""

    cfg: config.Config
    http_max_body: int = 0
    """Largest request body aiohttp reads; handlers that stream bodies check their own limits."""
    app: web.Application = dataclasses.field(init=False)
    grpc_server: grpc.aio.Server = dataclasses.field(init=False)
    http_port: int = 0
    grpc_port: int = 0
    _runner: web.AppRunner | None = None
    _checks: list[tuple[str, ReadinessCheck]] = dataclasses.field(default_factory=list)
    _stopping: bool = False

    def __post_init__(self) -> None:
        body_limit = self.http_max_body or self.cfg.distributor.max_recv_msg_size + 1
        self.app = web.Application(client_max_size=body_limit, middlewares=[self._instrument])
        self.app.router.add_get("/ready", self._ready)
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/config", self._config)
        server_cfg = self.cfg.server
        self.grpc_server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", server_cfg.grpc_server_max_recv_msg_size),
                ("grpc.max_send_message_length", server_cfg.grpc_server_max_send_msg_size),
                # Keepalive. gRPC core (1.85) gives up on an unanswered keepalive ping only
                # after grpc.http2.ping_timeout_ms (1m by default), so that is set too; and it
                # keeps pinging a peer that sends nothing (a frozen querier with a sub-query).
                ("grpc.keepalive_time_ms", _ms(server_cfg.grpc_server_keepalive_time)),
                ("grpc.keepalive_timeout_ms", _ms(server_cfg.grpc_server_keepalive_timeout)),
                ("grpc.http2.ping_timeout_ms", _ms(server_cfg.grpc_server_keepalive_timeout)),
                ("grpc.http2.max_pings_without_data", 0),
            ]
        )

    def add_readiness_check(self, name: str, check: ReadinessCheck) -> None:
        self._checks.append((name, check))

    def add_routes(self, routes: list[web.RouteDef]) -> None:
        self.app.router.add_routes(routes)

    async def start(self) -> None:
        server_cfg = self.cfg.server
        grpc_host = server_cfg.grpc_listen_address or "0.0.0.0"
        self.grpc_port = self.grpc_server.add_insecure_port(
            f"{grpc_host}:{server_cfg.grpc_listen_port}"
        )
        await self.grpc_server.start()
        # Bodies reach handlers as sent: the push API decodes Content-Encoding itself, with
        # Loki's limits and error messages (aiohttp would inflate gzip before any size check).
        # A handler whose client disconnects is cancelled (aiohttp's default is to let it run),
        # so a query nobody waits for stops, and the frontend dequeues its sub-queries.
        self._runner = web.AppRunner(
            self.app,
            access_log=None,
            handle_signals=False,
            auto_decompress=False,
            handler_cancellation=True,
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            server_cfg.http_listen_address or None,
            server_cfg.http_listen_port,
            reuse_address=True,
        )
        await site.start()
        addresses = self._runner.addresses
        self.http_port = int(addresses[0][1]) if addresses else server_cfg.http_listen_port
        log.info("server listening: http=%s grpc=%s", self.http_port, self.grpc_port)

    def begin_shutdown(self) -> None:
        """From now on /ready answers 503, so load balancers stop sending traffic."""
        self._stopping = True

    async def stop(self) -> None:
        self._stopping = True
        grace = self.cfg.server.graceful_shutdown_timeout.total_seconds()
        await self.grpc_server.stop(grace)
        if self._runner is not None:
            await self._runner.cleanup()

    async def _ready(self, request: web.Request) -> web.Response:
        if self._stopping:
            return web.Response(status=503, text="Application is stopping\n")
        for name, check in self._checks:
            reason = check()
            if reason is not None:
                return web.Response(status=503, text=f"{name} not ready: {reason}\n")
        return web.Response(text="ready\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        body = prometheus_client.generate_latest()
        return web.Response(
            body=body, headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST}
        )

    async def _config(self, request: web.Request) -> web.Response:
        return web.Response(text=config.to_yaml(self.cfg, redact=True), content_type="text/yaml")

    @web.middleware
    async def _instrument(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        resource = request.match_info.route.resource
        route = route_name(resource.canonical if resource is not None else "other")
        started = time.perf_counter()
        status = 500
        inflight = INFLIGHT.labels(request.method, route)
        inflight.inc()
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as error:
            status = error.status
            raise
        finally:
            inflight.dec()
            REQUEST_DURATION.labels(request.method, route, str(status), "false").observe(
                time.perf_counter() - started
            )
