"""The evaluator end to end over the in-memory source: result shapes, limits, errors, fetches."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from lokistack.logql import syntax
from lokistack.logql.engine import errors, evaluator, samples
from lokistack.logql.syntax import ast

from tests.support import memory_source

S = 1_000_000_000
A: samples.Labels = (("app", "a"),)
B: samples.Labels = (("app", "b"),)


def stream(labels: samples.Labels, *entries: tuple[int, str]) -> memory_source.MemoryStream:
    return memory_source.MemoryStream(labels, [(ts * S, line, ()) for ts, line in entries])


SOURCE = memory_source.MemorySource(
    [
        stream(A, (10, "xx"), (20, "yyyy"), (30, "z")),
        stream(B, (20, "b"), (40, "bb")),
    ]
)


async def run(
    query: str,
    start: int,
    end: int,
    step: int = 0,
    *,
    source: evaluator.SampleSource = SOURCE,
    max_series: int = 0,
) -> samples.Matrix | samples.Vector | samples.Scalar:
    expr = syntax.parse_expr(query)
    assert not isinstance(expr, ast.LogQueryExpr)
    return await evaluator.evaluate(
        expr, source, start * S, end * S, step * S, max_series=max_series
    )


async def test_instant_query_gives_a_vector_sorted_by_labels() -> None:
    result = await run('count_over_time({app=~"a|b"}[30s])', 30, 30)
    assert result == samples.Vector(30 * S, [(A, 3.0), (B, 1.0)])


async def test_range_query_gives_a_matrix_with_a_point_per_non_empty_step() -> None:
    result = await run('bytes_over_time({app="a"}[10s])', 0, 40, 10)
    assert isinstance(result, samples.Matrix)
    (series,) = result.series
    assert series.labels == A
    assert series.points == [
        samples.Sample(10 * S, 2.0),
        samples.Sample(20 * S, 4.0),
        samples.Sample(30 * S, 1.0),
    ]


async def test_literals_are_scalars_when_instant_and_series_in_range() -> None:
    assert await run("2", 5, 5) == samples.Scalar(5 * S, 2.0)
    matrix = await run("2", 0, 20, 10)
    assert isinstance(matrix, samples.Matrix)
    assert [p.value for p in matrix.series[0].points] == [2.0, 2.0, 2.0]


async def test_vector_literal_plus_vector_literal() -> None:
    assert await run("vector(1) + vector(1)", 5, 5) == samples.Vector(5 * S, [((), 2.0)])


async def test_sum_by_of_rate() -> None:
    result = await run('sum(rate({app=~"a|b"}[40s]))', 40, 40)
    assert result == samples.Vector(40 * S, [((), 5 / 40)])


async def test_sort_desc_keeps_value_order_in_instant_results() -> None:
    result = await run('sort_desc(count_over_time({app=~"a|b"}[40s]))', 40, 40)
    assert isinstance(result, samples.Vector)
    assert [labels for labels, _ in result.samples] == [A, B]
    ascending = await run('sort(count_over_time({app=~"a|b"}[40s]))', 40, 40)
    assert isinstance(ascending, samples.Vector)
    assert [labels for labels, _ in ascending.samples] == [B, A]


async def test_binary_between_two_range_aggregations() -> None:
    query = 'count_over_time({app="a"}[1m]) / on() count_over_time({app="b"}[1m])'
    assert await run(query, 60, 60) == samples.Vector(60 * S, [((), 1.5)])


async def test_absent_over_time_reports_selector_labels() -> None:
    result = await run('absent_over_time({app="a"}[10s])', 0, 60, 20)
    assert isinstance(result, samples.Matrix)
    assert [(p.ts_ns // S, p.value) for p in result.series[0].points] == [
        (0, 1.0),
        (40, 1.0),  # (30s, 40s]: the sample at 30s is on the excluded bound
        (60, 1.0),
    ]


async def test_series_limit() -> None:
    with pytest.raises(errors.SeriesLimitError, match=r"maximum number of series \(1\)"):
        await run('count_over_time({app=~"a|b"}[1m])', 60, 60, max_series=1)
    with pytest.raises(errors.SeriesLimitError):
        await run('count_over_time({app=~"a|b"}[1m])', 0, 60, 30, max_series=1)
    assert await run('sum(count_over_time({app=~"a|b"}[1m]))', 60, 60, max_series=1)


async def test_samples_with_error_label_fail_the_query() -> None:
    broken = memory_source.MemorySource(
        [stream((("__error__", "JSONParserErr"), ("app", "a")), (5, "x"))]
    )
    with pytest.raises(errors.PipelineError, match="pipeline error: 'JSONParserErr'"):
        await run('count_over_time({app="a"}[10s])', 10, 10, source=broken)
    # Outside every window the error does not matter.
    assert await run('count_over_time({app="a"}[1s])', 10, 10, source=broken) == samples.Vector(
        10 * S, []
    )


class RecordingSource:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    async def sample_batches(
        self, query: ast.LogQueryExpr, unwrap: ast.Unwrap | None, from_ns: int, through_ns: int
    ) -> AsyncIterator[list[evaluator.SampleRow]]:
        self.calls.append((from_ns, through_ns))
        yield [(A, 70 * S, 1.0)]
        yield [(A, 50 * S, 1.0)]  # out of order: the evaluator sorts


async def test_fetch_range_and_shared_fetches() -> None:
    source = RecordingSource()
    query = 'count_over_time({app="a"}[1m] offset 10s) + count_over_time({app="a"}[1m] offset 10s)'
    result = await run(query, 100, 200, 50, source=source)
    assert source.calls == [((100 - 60 - 10) * S, (200 - 10) * S + 1)]
    assert isinstance(result, samples.Matrix)
    assert [p.value for p in result.series[0].points] == [4.0]


async def test_invalid_steps_are_refused() -> None:
    with pytest.raises(ValueError, match="zero or negative"):
        await run('count_over_time({app="a"}[1m])', 0, 10, 0)
