"""Loki's HTTP query API: parameters in, LogQL evaluated by the querier, Loki's JSON out.

Every route accepts GET and POST (form bodies are merged with the URL's parameters, as Loki's
``ParseForm``). Errors are plain text with Loki's status codes (reference §1.11): 400 for bad
parameters, parse errors, pipeline and limit errors and instant log queries, 401 without a
tenant, 504 when ``query_timeout`` passes, 500 for anything else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar

from aiohttp import web

import lokistack
from lokistack.iter import entries
from lokistack.loghttp import encoding, params, requests
from lokistack.logql import syntax
from lokistack.logql.engine import errors as engine_errors
from lokistack.logql.engine import evaluator, samples
from lokistack.logql.log import pipeline as log_pipeline
from lokistack.logql.syntax import ast, printer
from lokistack.model import labels as model_labels
from lokistack.model import tenant as model_tenant
from lokistack.querier import ingesters
from lokistack.querier import querier as querier_mod

log = logging.getLogger(__name__)

TIMEOUT_MESSAGE: Final = (
    "request timed out, decrease the duration of the request or add more label matchers "
    "(prefer exact match over regex match) to reduce the amount of data processed"
)
INSTANT_LOG_QUERY: Final = (
    "log queries are not supported as an instant query type, please change your query to a "
    "range query type"
)
ONLY_MATCHERS: Final = "only label matchers are supported"
FORMAT_QUERY_CONTENT_TYPE: Final = "application/json; charset=utf-8"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


def parse_selector(text: str) -> ast.LogQueryExpr:
    """A stream selector with no pipeline (labels, series, stats)."""
    query = syntax.parse_log_selector(text)
    if query.stages:
        raise requests.RequestError(400, ONLY_MATCHERS)
    return query


def streams_of(
    found: Sequence[entries.Entry],
) -> list[tuple[model_labels.Labels, list[tuple[int, str]]]]:
    """Entries grouped by label set, streams ordered by their label string as Loki's."""
    grouped: dict[model_labels.Labels, list[tuple[int, str]]] = {}
    for entry in found:
        values = grouped.get(entry.labels)
        if values is None:
            values = grouped[entry.labels] = []
        values.append((entry.ts, entry.line))
    return sorted(grouped.items(), key=lambda item: model_labels.canonical(item[0]))


def thin(
    found: list[entries.Entry], interval_ns: int, direction: entries.Direction
) -> list[entries.Entry]:
    """Loki's ``interval``: keep an entry only ``interval`` after the last one kept."""
    if interval_ns <= 0:
        return found
    kept: list[entries.Entry] = []
    last: int | None = None
    for entry in found:
        if last is None or (
            entry.ts >= last + interval_ns
            if direction == "forward"
            else entry.ts <= last - interval_ns
        ):
            kept.append(entry)
            last = entry.ts
    return kept


class QueryAPI:
    """The query routes of one process, over one :class:`~.querier.Querier`."""

    def __init__(self, querier: querier_mod.Querier, auth_enabled: bool) -> None:
        self.querier = querier
        self.auth_enabled = auth_enabled

    def routes(self) -> list[web.RouteDef]:
        table: list[tuple[str, Handler]] = [
            ("/loki/api/v1/query_range", self.query_range),
            ("/loki/api/v1/query", self.query),
            ("/loki/api/v1/labels", self.labels),
            ("/loki/api/v1/label", self.labels),
            ("/loki/api/v1/label/{name}/values", self.label_values),
            ("/loki/api/v1/series", self.series),
            ("/loki/api/v1/index/stats", self.index_stats),
            ("/loki/api/v1/format_query", self.format_query),
            ("/loki/api/v1/status/buildinfo", self.buildinfo),
            ("/api/prom/query", self.legacy_query),
            ("/api/prom/label", self.legacy_labels),
            ("/api/prom/label/{name}/values", self.legacy_label_values),
            ("/api/prom/series", self.series),
        ]
        routes: list[web.RouteDef] = []
        for path, handler in table:
            wrapped = self._guard(handler)
            routes.append(web.get(path, wrapped, allow_head=False))
            routes.append(web.post(path, wrapped))
        return routes

    def tenant(self, request: web.Request) -> str:
        try:
            return model_tenant.tenant_from_header(
                request.headers.get("X-Scope-OrgID"), self.auth_enabled
            )
        except model_tenant.TenantError as error:
            raise requests.RequestError(error.status, error.message) from None

    def _guard(self, handler: Handler) -> Handler:
        """Map the query errors to Loki's status codes and plain-text bodies."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except (requests.RequestError, ingesters.IngesterQueryError) as error:
                return requests.error_response(error.status, error.message)
            except (
                params.ParamError,
                syntax.ParseError,
                querier_mod.LimitError,
                engine_errors.EvaluationError,
                log_pipeline.PipelineError,
            ) as error:
                return requests.error_response(400, str(error))
            except TimeoutError:
                return requests.error_response(504, TIMEOUT_MESSAGE)
            except Exception as error:
                log.exception("query failed", extra={"path": request.path})
                return requests.error_response(500, str(error) or type(error).__name__)

        return guarded

    async def _timed(self, tenant: str, work: Awaitable[T]) -> T:
        timeout = self.querier.limits_for(tenant).query_timeout.total_seconds()
        async with asyncio.timeout(timeout if timeout > 0 else None):
            return await work

    # Queries ----------------------------------------------------------------------------------

    async def query_range(self, request: web.Request) -> web.Response:
        tenant = self.tenant(request)
        query = params.parse_range_query(await requests.request_params(request), time.time_ns())
        expr = syntax.parse_expr(query.query)
        stats = encoding.Stats()
        started = time.perf_counter()
        if isinstance(expr, ast.LogQueryExpr):
            self.querier.check_entries_limit(tenant, query.limit)
            found = await self._timed(
                tenant,
                self.querier.select_logs(
                    tenant,
                    expr,
                    query.start_ns,
                    query.end_ns,
                    query.direction,
                    query.limit,
                    stats,
                ),
            )
            found = thin(found, query.interval_ns, query.direction)
            stats.total_entries_returned = len(found)
            stats.exec_time_s = time.perf_counter() - started
            result = encoding.encode_streams(streams_of(found))
            return requests.json_response(encoding.query_response("streams", result, stats))
        value = await self._timed(
            tenant, self._evaluate(tenant, expr, query.start_ns, query.end_ns, query.step_ns, stats)
        )
        stats.exec_time_s = time.perf_counter() - started
        return requests.json_response(
            encoding.query_response(value.result_type, encoding.encode_json(value.to_json()), stats)
        )

    async def query(self, request: web.Request) -> web.Response:
        tenant = self.tenant(request)
        query = params.parse_instant_query(await requests.request_params(request), time.time_ns())
        expr = syntax.parse_expr(query.query)
        if isinstance(expr, ast.LogQueryExpr):
            raise requests.RequestError(400, INSTANT_LOG_QUERY)
        stats = encoding.Stats()
        started = time.perf_counter()
        value = await self._timed(
            tenant, self._evaluate(tenant, expr, query.ts_ns, query.ts_ns, 0, stats)
        )
        stats.exec_time_s = time.perf_counter() - started
        return requests.json_response(
            encoding.query_response(value.result_type, encoding.encode_json(value.to_json()), stats)
        )

    async def _evaluate(  # noqa: PLR0917
        self,
        tenant: str,
        expr: ast.SampleExpr,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        stats: encoding.Stats,
    ) -> samples.Matrix | samples.Vector | samples.Scalar:
        return await evaluator.evaluate(
            expr,
            self.querier.sample_source(tenant, stats),
            start_ns,
            end_ns,
            step_ns,
            max_series=self.querier.limits_for(tenant).max_query_series,
        )

    async def legacy_query(self, request: web.Request) -> web.Response:
        """``/api/prom/query``: a range query; log results in the v0 shape."""
        tenant = self.tenant(request)
        query = params.parse_range_query(await requests.request_params(request), time.time_ns())
        expr = syntax.parse_expr(query.query)
        if not isinstance(expr, ast.LogQueryExpr):
            return await self.query_range(request)
        self.querier.check_entries_limit(tenant, query.limit)
        stats = encoding.Stats()
        found = await self._timed(
            tenant,
            self.querier.select_logs(
                tenant, expr, query.start_ns, query.end_ns, query.direction, query.limit, stats
            ),
        )
        return requests.json_response(encoding.legacy_streams_response(streams_of(found), stats))

    # Metadata ---------------------------------------------------------------------------------

    async def _label(self, request: web.Request, name: str | None) -> list[str]:
        tenant = self.tenant(request)
        query = params.parse_label_query(
            await requests.request_params(request), time.time_ns(), name
        )
        selector = parse_selector(query.query) if query.query else None
        return await self._timed(
            tenant, self.querier.label(tenant, name, query.start_ns, query.end_ns, selector)
        )

    async def labels(self, request: web.Request) -> web.Response:
        return requests.json_response(encoding.label_response(await self._label(request, None)))

    async def label_values(self, request: web.Request) -> web.Response:
        values = await self._label(request, request.match_info["name"])
        return requests.json_response(encoding.label_response(values))

    async def legacy_labels(self, request: web.Request) -> web.Response:
        return requests.json_response(
            encoding.legacy_label_response(await self._label(request, None))
        )

    async def legacy_label_values(self, request: web.Request) -> web.Response:
        values = await self._label(request, request.match_info["name"])
        return requests.json_response(encoding.legacy_label_response(values))

    async def series(self, request: web.Request) -> web.Response:
        tenant = self.tenant(request)
        query = params.parse_series_query(await requests.request_params(request), time.time_ns())
        selectors = [parse_selector(text) for text in query.matchers]
        found = await self._timed(
            tenant, self.querier.series(tenant, selectors, query.start_ns, query.end_ns)
        )
        return requests.json_response(encoding.series_response(found))

    async def index_stats(self, request: web.Request) -> web.Response:
        tenant = self.tenant(request)
        query = params.parse_index_stats_query(
            await requests.request_params(request), time.time_ns()
        )
        selector = parse_selector(query.query)
        streams, chunks, size, count = await self._timed(
            tenant, self.querier.index_stats(tenant, selector, query.start_ns, query.end_ns)
        )
        return requests.json_response(encoding.index_stats_response(streams, chunks, size, count))

    async def format_query(self, request: web.Request) -> web.Response:
        text = (await requests.request_params(request)).get("query", "")
        try:
            formatted = printer.format(syntax.parse_expr(text))
        except syntax.ParseError as error:
            body = encoding.encode_std_json({"status": "invalid-query", "error": str(error)})
            return _format_query_response(body, 400)
        return _format_query_response(
            encoding.encode_std_json({"status": "success", "data": formatted}), 200
        )

    async def buildinfo(self, request: web.Request) -> web.Response:
        return web.Response(
            body=encoding.buildinfo_response(lokistack.__version__),
            headers={"Content-Type": encoding.BUILDINFO_CONTENT_TYPE},
        )


def _format_query_response(body: bytes, status: int) -> web.Response:
    """``/format_query`` is written by ``encoding/json`` with its own content type."""
    return web.Response(
        status=status, body=body, headers={"Content-Type": FORMAT_QUERY_CONTENT_TYPE}
    )
