"""The metric-query evaluator: from an AST and a sample source to a Vector, Matrix or Scalar.

Evaluation is step-wise, as Loki's: a query is *instant* when ``start == end`` and ``step ==
0`` and is then evaluated at one time; otherwise at ``start, start + step, ... <= end``. Each
node yields either one scalar per step (literals) or one step vector (label set -> value) per
step; vector aggregations, binary operators and ``label_replace`` work step by step.

Samples come from a :class:`SampleSource`. For every range aggregation the evaluator asks for
the samples of its inner log query over ``[start - range - offset, end - offset + 1ns)``, all
fetches running concurrently and identical ones shared, then slides the windows itself
(:mod:`.range_vector`). A series still carrying ``__error__`` fails the query as Loki's
``PipelineError`` when it contributes to a step; the result may hold at most ``max_series``
series (Loki's ``max_query_series``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Protocol

from lokistack.logql.engine import (
    binary,
    errors,
    functions,
    range_vector,
    samples,
    vector_agg,
)
from lokistack.logql.syntax import ast
from lokistack.model import labels as model_labels

SeriesData = dict[samples.Labels, tuple[list[int], list[float]]]
"""Samples by label set: sorted timestamps and their values."""


SampleRow = tuple[samples.Labels, int, float]
"""One line's sample: its label set after the pipeline, its timestamp and its value."""


class SampleSource(Protocol):
    """What the querier provides: the per-line samples of a log query, in batches.

    ``sample_batches`` is an async generator (``async def`` with ``yield``) of lists of
    ``(labels, ts_ns, value)`` rows, one for every entry of ``query`` that survives its
    pipeline, with ``from_ns <= ts_ns < through_ns``. ``labels`` is the full label set after the
    pipeline (stream labels, structured metadata, parsed labels). Without ``unwrap`` the value
    is the line's length in bytes (the count functions ignore it, the bytes functions sum it);
    with ``unwrap`` it is the extracted value, the unwrapped label removed and the post-filters
    applied, and lines without the label are skipped. Entries of one series come in time order;
    series may interleave. Batches, not single rows, because a day-long query has millions of
    rows and one ``async for`` step per row would cost more than the rest of the evaluation.
    """

    def sample_batches(
        self,
        query: ast.LogQueryExpr,
        unwrap: ast.Unwrap | None,
        from_ns: int,
        through_ns: int,
    ) -> AsyncIterator[list[SampleRow]]:
        """Yield the samples of ``query`` in ``[from_ns, through_ns)``, a list at a time."""
        ...


@dataclasses.dataclass(slots=True)
class _Scalars:
    values: list[float]


@dataclasses.dataclass(slots=True)
class _Vectors:
    steps: list[vector_agg.StepVector]


_Value = _Scalars | _Vectors
_FetchKey = tuple[ast.LogQueryExpr, ast.Unwrap | None, int, int]


def _fetch_key(node: ast.RangeAggregation) -> _FetchKey:
    return (node.query, node.unwrap, node.range_ns, node.offset_ns)


async def _fetch(
    source: SampleSource, node: ast.RangeAggregation, steps: range_vector.Steps
) -> SeriesData:
    """All samples any step of ``node`` can see, grouped by series and sorted by time."""
    from_ns = steps.start_ns - node.range_ns - node.offset_ns
    through_ns = steps.time(steps.count - 1) - node.offset_ns + 1
    series: SeriesData = {}
    batches = source.sample_batches(node.query, node.unwrap, from_ns, through_ns)
    async for batch in batches:
        for labels, ts, value in batch:
            entry = series.get(labels)
            if entry is None:
                entry = series[labels] = ([], [])
            entry[0].append(ts)
            entry[1].append(value)
    for labels, (ts_list, values) in series.items():
        if ts_list != sorted(ts_list):
            pairs = sorted(zip(ts_list, values, strict=True), key=lambda p: p[0])
            series[labels] = ([p[0] for p in pairs], [p[1] for p in pairs])
    return series


class _Evaluation:
    """One query's evaluation: fetched samples and the steps."""

    def __init__(self, steps: range_vector.Steps, fetched: dict[_FetchKey, SeriesData]) -> None:
        self.steps = steps
        self.fetched = fetched

    def eval(self, expr: ast.SampleExpr) -> _Value:
        count = self.steps.count
        if isinstance(expr, ast.Literal):
            return _Scalars([expr.value] * count)
        if isinstance(expr, ast.VectorLiteral):
            return _Vectors([functions.vector_literal(expr) for _ in range(count)])
        if isinstance(expr, ast.RangeAggregation):
            return self.range_aggregation(expr)
        if isinstance(expr, ast.VectorAggregation):
            aggregate = vector_agg.VectorAggregator(expr)
            return _Vectors([aggregate(vector) for vector in self.vectors(expr.inner)])
        if isinstance(expr, ast.LabelReplace):
            replace = functions.label_replacer(expr)
            return _Vectors([replace(vector) for vector in self.vectors(expr.inner)])
        return self.binary(expr)

    def vectors(self, expr: ast.SampleExpr) -> list[vector_agg.StepVector]:
        value = self.eval(expr)
        if isinstance(value, _Scalars):  # the parser refuses this; keep the engine total
            raise errors.EvaluationError("expected a vector expression, got a scalar")
        return value.steps

    def binary(self, expr: ast.BinaryOp) -> _Value:
        lhs, rhs = self.eval(expr.lhs), self.eval(expr.rhs)
        if isinstance(lhs, _Scalars) and isinstance(rhs, _Scalars):
            pairs = zip(lhs.values, rhs.values, strict=True)
            return _Scalars([binary.scalar_scalar(expr, a, b) for a, b in pairs])
        if isinstance(lhs, _Scalars) and isinstance(rhs, _Vectors):
            pairs_sv = zip(lhs.values, rhs.steps, strict=True)
            return _Vectors([binary.vector_scalar(expr, v, s, True) for s, v in pairs_sv])
        if isinstance(lhs, _Vectors) and isinstance(rhs, _Scalars):
            pairs_vs = zip(lhs.steps, rhs.values, strict=True)
            return _Vectors([binary.vector_scalar(expr, v, s, False) for v, s in pairs_vs])
        assert isinstance(lhs, _Vectors) and isinstance(rhs, _Vectors)
        pairs_vv = zip(lhs.steps, rhs.steps, strict=True)
        return _Vectors([binary.vector_vector(expr, a, b) for a, b in pairs_vv])

    def range_aggregation(self, node: ast.RangeAggregation) -> _Vectors:
        steps = self.steps
        data = self.fetched[_fetch_key(node)]
        out: list[vector_agg.StepVector] = [{} for _ in range(steps.count)]
        self._check_errors(node, data)
        if node.op is ast.RangeOp.ABSENT_OVER_TIME:
            labels = functions.absent_labels(node.query)
            series_ts = (ts for ts, _ in data.values())
            for index in range_vector.absent_steps(series_ts, steps, node.range_ns, node.offset_ns):
                out[index][labels] = 1.0
            return _Vectors(out)
        if node.grouping is not None:
            flat = ((labels, ts, values) for labels, (ts, values) in data.items())
            data = range_vector.group_series(flat, node.grouping)
        for labels, (ts, values) in data.items():
            for index, value in range_vector.aggregate(node, ts, values, steps):
                out[index][labels] = value
        return _Vectors(out)

    def _check_errors(self, node: ast.RangeAggregation, data: SeriesData) -> None:
        """Loki fails a metric query whose samples keep ``__error__`` (``PipelineError``)."""
        for labels, (ts, _) in data.items():
            if model_labels.get(labels, errors.ERROR_LABEL) == "":
                continue
            if model_labels.get(labels, errors.PRESERVE_ERROR_LABEL) == "true":
                continue
            if range_vector.windows(ts, self.steps, node.range_ns, node.offset_ns):
                raise errors.PipelineError(labels)


def _is_sorted_by_value(expr: ast.SampleExpr) -> bool:
    return isinstance(expr, ast.VectorAggregation) and expr.op in (
        ast.VectorOp.SORT,
        ast.VectorOp.SORT_DESC,
    )


def _check_series(count: int, max_series: int) -> None:
    if 0 < max_series < count:
        raise errors.SeriesLimitError(max_series)


async def evaluate(
    expr: ast.SampleExpr,
    source: SampleSource,
    start_ns: int,
    end_ns: int,
    step_ns: int,
    *,
    max_series: int,
) -> samples.Matrix | samples.Vector | samples.Scalar:
    """Evaluate a metric query; instant when ``start_ns == end_ns`` and ``step_ns == 0``.

    ``max_series <= 0`` disables the series limit. Raises :class:`errors.EvaluationError` (or
    a subclass) for what Loki answers with 400.
    """
    instant = start_ns == end_ns and step_ns == 0
    if not instant and step_ns <= 0:
        raise ValueError("zero or negative query resolution step widths are not accepted")
    if end_ns < start_ns:
        raise ValueError("end timestamp must not be before start time")
    steps = range_vector.Steps(start_ns, end_ns, step_ns)
    nodes = {_fetch_key(node): node for node in ast.range_aggregations(expr)}
    results = await asyncio.gather(*(_fetch(source, node, steps) for node in nodes.values()))
    value = _Evaluation(steps, dict(zip(nodes, results, strict=True))).eval(expr)
    if instant:
        if isinstance(value, _Scalars):
            return samples.Scalar(start_ns, value.values[0])
        items = list(value.steps[0].items())
        _check_series(len(items), max_series)
        if not _is_sorted_by_value(expr):
            items.sort(key=lambda item: item[0])
        return samples.Vector(start_ns, items)
    if isinstance(value, _Scalars):
        points = [samples.Sample(steps.time(i), v) for i, v in enumerate(value.values)]
        return samples.Matrix([samples.Series(samples.EMPTY_LABELS, points)])
    series: dict[samples.Labels, list[samples.Sample]] = {}
    for index, vector in enumerate(value.steps):
        ts = steps.time(index)
        for labels, v in vector.items():
            found = series.get(labels)
            if found is None:
                found = series[labels] = []
                _check_series(len(series), max_series)
            found.append(samples.Sample(ts, v))
    return samples.Matrix([samples.Series(k, series[k]) for k in sorted(series)])
