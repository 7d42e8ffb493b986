"""The frontend's query API: range queries split by time and merged, the rest passed through.

Clients (Grafana, logcli) talk to the frontend exactly as to a querier. A range query is
validated here (bad parameters and LogQL are answered at once, without a querier), cut into
sub-queries at multiples of the tenant's ``split_queries_by_interval`` (metric queries aligned to
the step, as Loki's ``metricQuerySplitter``), and the sub-queries are queued for the querier
workers, at most ``max_query_parallelism`` of one query at a time.

Log sub-queries run in direction order; once the pieces answered so far, with none missing
before them, hold ``limit`` entries, the rest are not dispatched. Metric pieces entirely older
than ``max(query_ingesters_within, max_cache_freshness_per_query)`` are served from, and stored
in, the results cache unless the client sends ``Cache-Control: no-cache``. Instant queries,
labels, series, index stats and the rest go to one querier unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, Final

import prometheus_client
from aiohttp import web

from lokistack import config, limits
from lokistack.frontend import frontend as frontend_mod
from lokistack.frontend import merge, results_cache, split
from lokistack.frontend import queue as queue_mod
from lokistack.loghttp import params, requests
from lokistack.logql import syntax
from lokistack.logql.syntax import ast, printer
from lokistack.model import tenant as model_tenant
from lokistack.proto import frontend_pb2

FORWARDED_HEADERS: Final = ("X-Scope-OrgID", "Content-Type", "Cache-Control", "X-Query-Tags")
QUERYING_DISABLED: Final = "querying is disabled, please contact your Loki operator"
TIMEOUT_MESSAGE: Final = (
    "request timed out, decrease the duration of the request or add more label matchers "
    "(prefer exact match over regex match) to reduce the amount of data processed"
)
PASS_THROUGH: Final = (
    "/loki/api/v1/query",
    "/loki/api/v1/labels",
    "/loki/api/v1/label",
    "/loki/api/v1/label/{name}/values",
    "/loki/api/v1/series",
    "/loki/api/v1/index/stats",
    "/loki/api/v1/format_query",
    "/loki/api/v1/status/buildinfo",
    "/api/prom/label",
    "/api/prom/label/{name}/values",
    "/api/prom/series",
)

log = logging.getLogger(__name__)

PARTITIONS = prometheus_client.Histogram(
    "loki_query_frontend_partitions",
    "Number of time-based partitions (sub-queries) a query was split into.",
    buckets=(1, 2, 4, 8, 16, 32, 48, 64, 128, 256),
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _AnsweredError(Exception):
    """A sub-query answered with an error: the client gets that answer."""

    def __init__(self, response: frontend_pb2.HTTPResponse) -> None:
        super().__init__(response.code)
        self.response = response


def _web_response(response: frontend_pb2.HTTPResponse) -> web.Response:
    headers = {h.key: h.values[0] for h in response.headers if h.values}
    headers.pop("Content-Length", None)
    return web.Response(status=response.code, body=response.body, headers=headers)


class FrontendAPI:
    """The query routes of a frontend, dispatching to querier workers through the queue."""

    def __init__(
        self,
        cfg: config.Config,
        overrides: limits.Overrides,
        frontend: frontend_mod.Frontend,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.cfg = cfg
        self.overrides = overrides
        self.frontend = frontend
        self.clock = clock
        cache_cfg = cfg.frontend.results_cache
        self.cache = (
            results_cache.ResultsCache(cache_cfg.max_size_bytes, cache_cfg.ttl.total_seconds())
            if cache_cfg.enabled and cache_cfg.max_size_bytes > 0
            else None
        )

    def routes(self) -> list[web.RouteDef]:
        table: list[tuple[str, Handler]] = [
            ("/loki/api/v1/query_range", self.query_range),
            ("/api/prom/query", self.query_range),
        ]
        table += [(path, self.pass_through) for path in PASS_THROUGH]
        routes: list[web.RouteDef] = []
        for path, handler in table:
            wrapped = self._guard(handler)
            routes.append(web.get(path, wrapped, allow_head=False))
            routes.append(web.post(path, wrapped))
        return routes

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(  # noqa: PLR0911 - one answer per error kind
            request: web.Request,
        ) -> web.StreamResponse:
            try:
                return await handler(request)
            except requests.RequestError as error:
                return requests.error_response(error.status, error.message)
            except model_tenant.TenantError as error:
                return requests.error_response(error.status, error.message)
            except (params.ParamError, syntax.ParseError) as error:
                return requests.error_response(400, str(error))
            except _AnsweredError as answered:
                return _web_response(answered.response)
            except queue_mod.TooManyOutstandingError:
                return requests.error_response(429, queue_mod.TOO_MANY_OUTSTANDING)
            except frontend_mod.QuerierUnavailableError as error:
                return requests.error_response(500, str(error))
            except TimeoutError:
                return requests.error_response(504, TIMEOUT_MESSAGE)
            except Exception as error:  # logged, and answered as Loki does: 500 with the text
                log.exception("query failed", extra={"path": request.path})
                return requests.error_response(500, str(error) or type(error).__name__)

        return guarded

    def _tenant(self, request: web.Request) -> str:
        return model_tenant.tenant_from_header(
            request.headers.get("X-Scope-OrgID"), self.cfg.auth_enabled
        )

    async def _run(
        self, tenant: str, request: web.Request, url: str, body: bytes = b""
    ) -> frontend_pb2.HTTPResponse:
        headers = [
            frontend_pb2.Header(key=name, values=request.headers.getall(name))
            for name in FORWARDED_HEADERS
            if name in request.headers
        ]
        sub = frontend_pb2.HTTPRequest(method=request.method, url=url, headers=headers, body=body)
        return await self.frontend.run(tenant, sub)

    async def pass_through(self, request: web.Request) -> web.StreamResponse:
        tenant = self._tenant(request)
        timeout = self.overrides.limits_for(tenant).query_timeout.total_seconds()
        async with asyncio.timeout(timeout if timeout > 0 else None):
            answer = await self._run(tenant, request, request.path_qs, await request.read())
        return _web_response(answer)

    async def query_range(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        tenant = self._tenant(request)
        raw = await requests.request_params(request)
        query = params.parse_range_query(raw, self.clock())
        expr = syntax.parse_expr(query.query)
        tenant_limits = self.overrides.limits_for(tenant)
        parallelism = tenant_limits.max_query_parallelism
        if parallelism < 1:
            raise requests.RequestError(429, QUERYING_DISABLED)
        interval_ns = int(tenant_limits.split_queries_by_interval.total_seconds() * 1e9)
        original = {key: raw[key] for key in raw}
        timeout = tenant_limits.query_timeout.total_seconds()
        async with asyncio.timeout(timeout if timeout > 0 else None):
            if isinstance(expr, ast.LogQueryExpr):
                parts = await self._log_pieces(
                    tenant, request, original, query, interval_ns, parallelism
                )
            else:
                parts = await self._metric_pieces(
                    tenant, request, original, query, expr, interval_ns, parallelism
                )
        body = merge.merge_responses(parts, query.direction, query.limit)
        self._log_if_slow(tenant, query, started)
        return requests.json_response(body)

    def _log_if_slow(self, tenant: str, query: params.RangeQuery, started: float) -> None:
        threshold = self.cfg.frontend.log_queries_longer_than.total_seconds()
        elapsed = time.perf_counter() - started
        if 0 < threshold < elapsed:
            log.info(
                "slow query detected",
                extra={
                    "tenant": tenant,
                    "query": query.query,
                    "start": query.start_ns,
                    "end": query.end_ns,
                    "step": query.step_ns,
                    "duration_s": round(elapsed, 3),
                },
            )

    async def _piece(
        self, tenant: str, request: web.Request, sub_params: dict[str, str]
    ) -> dict[str, Any]:
        url = request.path + "?" + urllib.parse.urlencode(sub_params)
        answer = await self._run(tenant, request, url)
        if answer.code != 200:
            raise _AnsweredError(answer)
        parsed: dict[str, Any] = json.loads(answer.body)
        return parsed

    async def _log_pieces(  # noqa: PLR0917 - one query's context
        self,
        tenant: str,
        request: web.Request,
        original: dict[str, str],
        query: params.RangeQuery,
        interval_ns: int,
        parallelism: int,
    ) -> list[dict[str, Any]]:
        """Pieces in direction order, a wave of ``parallelism`` at a time, until the limit."""
        pieces = split.split_log_query(query.start_ns, query.end_ns, interval_ns, query.direction)
        PARTITIONS.observe(len(pieces))
        parts: list[dict[str, Any]] = []
        for first in range(0, len(pieces), parallelism):
            wave = pieces[first : first + parallelism]
            parts += await _all(
                *(
                    self._piece(
                        tenant,
                        request,
                        split.sub_request_params(original, piece, step_ns=query.step_ns),
                    )
                    for piece in wave
                )
            )
            if merge.limit_reached((part["data"]["result"] for part in parts), query.limit):
                break
        return parts

    async def _metric_pieces(  # noqa: PLR0917
        self,
        tenant: str,
        request: web.Request,
        original: dict[str, str],
        query: params.RangeQuery,
        expr: ast.Expr,
        interval_ns: int,
        parallelism: int,
    ) -> list[dict[str, Any]]:
        pieces = self._metric_split(query, interval_ns, split.max_range_ns(expr))
        PARTITIONS.observe(len(pieces))
        semaphore = asyncio.Semaphore(parallelism)
        use_cache = self.cache is not None and (
            request.headers.get("Cache-Control", "").strip().lower() != "no-cache"
        )
        now = self.clock()
        tenant_limits = self.overrides.limits_for(tenant)
        freshness = int(tenant_limits.max_cache_freshness_per_query.total_seconds() * 1e9)
        within = int(self.cfg.querier.query_ingesters_within.total_seconds() * 1e9)
        text = printer.format(expr)

        async def one(piece: split.Interval) -> dict[str, Any]:
            key = results_cache.cache_key(tenant, text, query.step_ns, piece.start_ns, piece.end_ns)
            cacheable = use_cache and results_cache.cacheable(piece.end_ns, now, freshness, within)
            if cacheable and self.cache is not None:
                hit = self.cache.get(key)
                if hit is not None:
                    found: dict[str, Any] = json.loads(hit)
                    return found
            async with semaphore:
                part = await self._piece(
                    tenant,
                    request,
                    split.sub_request_params(original, piece, step_ns=query.step_ns),
                )
            if cacheable and self.cache is not None:
                self.cache.put(key, json.dumps(part).encode())
            return part

        return await _all(*(one(piece) for piece in pieces))

    def _metric_split(
        self, query: params.RangeQuery, interval_ns: int, max_range_ns: int
    ) -> list[split.Interval]:
        """Metric pieces. With ``frontend.align_queries_with_step`` (Loki's behaviour) start and
        end move to multiples of the step; without it (the default) the pieces keep the
        client's step grid, so the answer has exactly the timestamps an unsplit query has."""
        start, end, step = query.start_ns, query.end_ns, query.step_ns
        if self.cfg.frontend.align_queries_with_step:
            return split.split_metric_query(start, end, step, interval_ns, max_range_ns)
        offset = start % step
        pieces = split.split_metric_query(
            start - offset, end - offset, step, interval_ns, max_range_ns
        )
        return [
            split.Interval(piece.start_ns + offset, min(piece.end_ns + offset, end))
            for piece in pieces
            if piece.start_ns + offset <= end
        ]


async def _all(*pieces: Awaitable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``asyncio.gather``, but the first failure cancels the other pieces, so their queued
    requests are withdrawn instead of holding the tenant's queue and a querier."""
    tasks = [asyncio.ensure_future(piece) for piece in pieces]
    try:
        return list(await asyncio.gather(*tasks))
    except Exception:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
