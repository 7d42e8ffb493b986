"""The ingester's Querier gRPC service: log queries, samples, labels, series, stats and tails
over the streams held in memory.

This module is the servicer: it reads the tenant and parses the request (a bad one is refused
with ``INVALID_ARGUMENT`` before anything is read), then turns what the readers produce into
responses, with each response carrying the statistics gathered since the previous one. Reading
the streams, and why a query reads them a block at a time, is :mod:`query_scan
<lokistack.ingester.query_scan>`; the live tails, fed by the ingester's pushes, are
:mod:`tailers <lokistack.ingester.tailers>`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, NoReturn

import grpc

from lokistack.ingester import instance as tenant_instance
from lokistack.ingester import query_scan, tailers
from lokistack.logql import syntax
from lokistack.logql.log import pipeline as log_pipeline
from lokistack.logql.syntax import ast
from lokistack.model import labels as model_labels
from lokistack.model import tenant as model_tenant
from lokistack.proto import querier_pb2, querier_pb2_grpc
from lokistack.wal import record as wal_record

Labels = model_labels.Labels


# Requests -----------------------------------------------------------------------------------


class _BadRequestError(Exception):
    """A request the service refuses with INVALID_ARGUMENT (its text is the gRPC details)."""


async def _abort(context: Any, code: grpc.StatusCode, message: str) -> NoReturn:
    await context.abort(code, message)
    raise AssertionError("context.abort returned")


def _tenant(context: Any) -> str:
    tenant = dict(context.invocation_metadata() or ()).get(model_tenant.GRPC_METADATA_KEY)
    if not tenant or not isinstance(tenant, str):
        raise _BadRequestError("no org id")
    return tenant


def _parse_log(text: str, *, validate: bool = True) -> ast.LogQueryExpr:
    try:
        return syntax.parse_log_selector(text, validate=validate)
    except ValueError as error:  # ParseError, or a regex RE2 refuses
        raise _BadRequestError(str(error)) from None


def _pipeline(stages: Sequence[ast.Stage], unwrap: ast.Unwrap | None) -> log_pipeline.Pipeline:
    try:
        return log_pipeline.Pipeline.from_ast(stages, unwrap)
    except log_pipeline.PipelineError as error:
        raise _BadRequestError(str(error)) from None


def _range_aggregation(text: str) -> ast.RangeAggregation:
    """The first (leftmost) range aggregation of a metric query: it defines the samples."""
    try:
        pending: list[ast.SampleExpr] = [syntax.parse_sample_expr(text)]
    except ValueError as error:
        raise _BadRequestError(str(error)) from None
    while pending:
        node = pending.pop()
        if isinstance(node, ast.RangeAggregation):
            return node
        if isinstance(node, ast.VectorAggregation | ast.LabelReplace):
            pending.append(node.inner)
        elif isinstance(node, ast.BinaryOp):
            pending.extend((node.rhs, node.lhs))
    raise _BadRequestError("the sample query has no range aggregation")


class _StatsReporter:
    """Turns a query's running totals into the per-response deltas the proto carries."""

    def __init__(self, progress: query_scan.Progress) -> None:
        self._progress = progress
        self._reported = (0, 0, 0, 0)

    def delta(self) -> querier_pb2.QueryStats:
        stats = self._progress.stats
        now = (stats.lines, stats.bytes, self._progress.chunks, stats.post_filter_lines)
        before = self._reported
        self._reported = now
        return querier_pb2.QueryStats(
            lines_processed=now[0] - before[0],
            bytes_processed=now[1] - before[1],
            chunks_matched=now[2] - before[2],
            post_filter_lines=now[3] - before[3],
        )


# The service --------------------------------------------------------------------------------


class QueryService(querier_pb2_grpc.QuerierServicer):
    """Answers the Querier rpcs from ``instances`` (tenant -> instance, the ingester's own dict,
    read live; a tenant without an instance simply has no data)."""

    def __init__(
        self,
        instances: Mapping[str, tenant_instance.TenantInstance],
        *,
        tail_queue_size: int = tailers.QUEUE_SIZE,
    ) -> None:
        self._instances = instances
        self._selector = query_scan.Selector(instances)
        self._tails = tailers.Registry(instances, self._selector.labels, queue_size=tail_queue_size)

    # Queries ------------------------------------------------------------------------------

    async def Query(  # noqa: N802 (the gRPC method name)
        self,
        request: querier_pb2.QueryRequest,
        context: grpc.aio.ServicerContext[querier_pb2.QueryRequest, querier_pb2.QueryResponse],
    ) -> AsyncIterator[querier_pb2.QueryResponse]:
        try:
            tenant = _tenant(context)
            query = _parse_log(request.selector)
            pipeline = _pipeline(query.stages, None)
        except _BadRequestError as error:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(error))
        backward = request.direction == querier_pb2.BACKWARD
        progress = query_scan.Progress()
        scans = query_scan.stream_scans(
            self._selector.select(tenant, query.matchers),
            pipeline,
            from_ns=request.start,
            through_ns=request.end,
            backward=backward,
            progress=progress,
        )
        stats = _StatsReporter(progress)
        sent = False
        async for batch in query_scan.merge_scans(scans, backward, request.limit):
            yield querier_pb2.QueryResponse(
                batches=query_scan.entry_batches(batch), stats=stats.delta()
            )
            sent = True
        last = stats.delta()
        if not sent or last.ByteSize():
            yield querier_pb2.QueryResponse(stats=last)

    async def QuerySample(  # noqa: N802 (the gRPC method name)
        self,
        request: querier_pb2.SampleQueryRequest,
        context: grpc.aio.ServicerContext[
            querier_pb2.SampleQueryRequest, querier_pb2.SampleQueryResponse
        ],
    ) -> AsyncIterator[querier_pb2.SampleQueryResponse]:
        try:
            tenant = _tenant(context)
            node = _range_aggregation(request.selector)
            pipeline = _pipeline(node.query.stages, node.unwrap)
        except _BadRequestError as error:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(error))
        progress = query_scan.Progress()
        stats = _StatsReporter(progress)
        sent = False
        async for batches in query_scan.sample_batches(
            self._selector.select(tenant, node.query.matchers),
            pipeline,
            unwrap=node.unwrap is not None,
            from_ns=request.start,
            through_ns=request.end,
            progress=progress,
        ):
            yield querier_pb2.SampleQueryResponse(batches=batches, stats=stats.delta())
            sent = True
        if not sent:
            yield querier_pb2.SampleQueryResponse(batches=[], stats=stats.delta())

    # Metadata -----------------------------------------------------------------------------

    async def Label(  # noqa: N802 (the gRPC method name)
        self,
        request: querier_pb2.LabelRequest,
        context: grpc.aio.ServicerContext[querier_pb2.LabelRequest, querier_pb2.LabelResponse],
    ) -> querier_pb2.LabelResponse:
        try:
            tenant = _tenant(context)
            matchers = _parse_log(request.query, validate=False).matchers if request.query else ()
        except _BadRequestError as error:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(error))
        found: set[str] = set()
        for stream, labels in self._selector.select(tenant, matchers):
            if not query_scan.touches(stream, request.start, request.end):
                continue
            if request.name:
                value = model_labels.get(labels, request.name)
                if value:
                    found.add(value)
            else:
                found.update(name for name, _ in labels)
        return querier_pb2.LabelResponse(values=sorted(found))

    async def Series(  # noqa: N802 (the gRPC method name)
        self,
        request: querier_pb2.SeriesRequest,
        context: grpc.aio.ServicerContext[querier_pb2.SeriesRequest, querier_pb2.SeriesResponse],
    ) -> querier_pb2.SeriesResponse:
        try:
            tenant = _tenant(context)
            selectors = [_parse_log(text, validate=False).matchers for text in request.selectors]
        except _BadRequestError as error:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(error))
        found: set[Labels] = set()
        for matchers in selectors or [()]:
            for stream, labels in self._selector.select(tenant, matchers):
                if labels not in found and query_scan.touches(stream, request.start, request.end):
                    found.add(labels)
        return querier_pb2.SeriesResponse(
            series=[
                querier_pb2.LabelSet(labels=query_scan.label_pairs(labels))
                for labels in sorted(found)
            ]
        )

    async def GetStats(  # noqa: N802 (the gRPC method name)
        self,
        request: querier_pb2.IndexStatsRequest,
        context: grpc.aio.ServicerContext[
            querier_pb2.IndexStatsRequest, querier_pb2.IndexStatsResponse
        ],
    ) -> querier_pb2.IndexStatsResponse:
        try:
            tenant = _tenant(context)
            matchers = _parse_log(request.selector, validate=False).matchers
        except _BadRequestError as error:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(error))
        response = querier_pb2.IndexStatsResponse()
        for stream, _labels in self._selector.select(tenant, matchers):
            chunks = query_scan.overlapping(stream, request.start, request.end)
            if chunks:
                response.streams += 1
                response.chunks += len(chunks)
                response.bytes += sum(chunk.uncompressed_size for chunk in chunks)
                response.entries += sum(chunk.num_entries for chunk in chunks)
        return response

    # Tails --------------------------------------------------------------------------------

    async def TailersCount(  # noqa: N802 (the gRPC method name)
        self,
        request: querier_pb2.TailersCountRequest,
        context: grpc.aio.ServicerContext[
            querier_pb2.TailersCountRequest, querier_pb2.TailersCountResponse
        ],
    ) -> querier_pb2.TailersCountResponse:
        try:
            tenant = _tenant(context)
        except _BadRequestError as error:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(error))
        return querier_pb2.TailersCountResponse(count=self._tails.count(tenant))

    async def Tail(  # noqa: N802 (the gRPC method name)
        self,
        request: querier_pb2.TailRequest,
        context: grpc.aio.ServicerContext[querier_pb2.TailRequest, querier_pb2.TailResponse],
    ) -> AsyncIterator[querier_pb2.TailResponse]:
        try:
            tenant = _tenant(context)
            query = _parse_log(request.query)
            pipeline = _pipeline(query.stages, None)
        except _BadRequestError as error:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(error))
        with self._tails.tailing(tenant, query.matchers, pipeline) as tailer:
            while True:
                yield await tailer.queue.get()

    def on_records(self, tenant: str, records: Iterable[wal_record.Record]) -> None:
        """Hand the entries of a push (the WAL records of what was stored) to the tenant's
        tails. Cheap when the tenant has none, so the ingester calls it on every push."""
        self._tails.on_records(tenant, records)
