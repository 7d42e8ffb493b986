"""Range aggregations: window bounds, each function against a naive per-window reference."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import statistics
from collections.abc import Callable

import hypothesis
import pytest
from hypothesis import strategies as st
from lokistack.logql.engine import range_vector
from lokistack.logql.syntax import ast

S = 1_000_000_000
QUERY = ast.LogQueryExpr(ast.StreamSelector((ast.Matcher("app", ast.MatchOp.EQ, "a"),)))
UNWRAP = ast.Unwrap("v")


def node(
    op: ast.RangeOp,
    range_s: int,
    offset_s: int = 0,
    unwrap: bool = True,
    param: float | None = None,
) -> ast.RangeAggregation:
    return ast.RangeAggregation(
        op, QUERY, range_s * S, offset_s * S, UNWRAP if unwrap else None, param
    )


def test_window_excludes_lower_bound_and_includes_upper() -> None:
    ts = [10 * S, 20 * S, 30 * S, 40 * S]
    steps = range_vector.Steps(30 * S, 30 * S, 0)
    assert range_vector.windows(ts, steps, 20 * S, 0) == [(0, 1, 3)]  # (10s, 30s]


def test_offset_shifts_the_window_back() -> None:
    ts = [10 * S, 20 * S, 30 * S, 40 * S]
    steps = range_vector.Steps(60 * S, 60 * S, 0)
    assert range_vector.windows(ts, steps, 20 * S, 30 * S) == [(0, 1, 3)]  # (10s, 30s]


def test_empty_windows_emit_no_point() -> None:
    ts = [15 * S, 105 * S]
    steps = range_vector.Steps(0, 120 * S, 30 * S)
    found = range_vector.aggregate(
        node(ast.RangeOp.COUNT_OVER_TIME, 20, unwrap=False), ts, [1.0, 1.0], steps
    )
    assert found == [(1, 1.0), (4, 1.0)]


def test_steps_include_the_end() -> None:
    assert range_vector.Steps(0, 60 * S, 30 * S).count == 3
    assert range_vector.Steps(0, 59 * S, 30 * S).count == 2
    assert range_vector.Steps(5, 5, 0).count == 1


def _counter_rate(window: list[tuple[int, float]], range_s: float, end_s: float) -> float:
    values = [v for _, v in window]
    if len(values) < 2:
        return 0.0
    increase = values[-1] - values[0]
    increase += sum(prev for prev, cur in itertools.pairwise(values) if cur < prev)
    first_t, last_t = window[0][0] / S, window[-1][0] / S
    sampled = last_t - first_t
    if sampled == 0:
        return math.nan
    average = sampled / (len(values) - 1)
    to_start = first_t - (end_s - range_s)
    to_end = end_s - last_t
    if to_start >= average * 1.1:
        to_start = average / 2
    if increase > 0 and values[0] >= 0:
        to_start = min(to_start, sampled * values[0] / increase)
    if to_end >= average * 1.1:
        to_end = average / 2
    return increase * (sampled + to_start + to_end) / sampled / range_s


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(len(ordered) - 1, low + 1)
    return ordered[low] * (1 - (rank - low)) + ordered[high] * (rank - low)


_NAIVE: dict[ast.RangeOp, Callable[[list[float], float, float], float]] = {
    ast.RangeOp.COUNT_OVER_TIME: lambda vs, _r, _q: float(len(vs)),
    ast.RangeOp.RATE: lambda vs, r, _q: sum(vs) / r,
    ast.RangeOp.SUM_OVER_TIME: lambda vs, _r, _q: sum(vs),
    ast.RangeOp.AVG_OVER_TIME: lambda vs, _r, _q: sum(vs) / len(vs),
    ast.RangeOp.MIN_OVER_TIME: lambda vs, _r, _q: min(vs),
    ast.RangeOp.MAX_OVER_TIME: lambda vs, _r, _q: max(vs),
    ast.RangeOp.STDVAR_OVER_TIME: lambda vs, _r, _q: statistics.pvariance(vs),
    ast.RangeOp.QUANTILE_OVER_TIME: lambda vs, _r, q: _quantile(vs, q),
    ast.RangeOp.FIRST_OVER_TIME: lambda vs, _r, _q: vs[0],
    ast.RangeOp.LAST_OVER_TIME: lambda vs, _r, _q: vs[-1],
}


def _reference(
    op: ast.RangeOp, window: list[tuple[int, float]], aggregation: ast.RangeAggregation, end: int
) -> float:
    """The function recomputed from scratch over one window (unwrapped values)."""
    range_s = aggregation.range_ns / S
    if op is ast.RangeOp.RATE_COUNTER:
        return _counter_rate(window, range_s, end / S)
    return _NAIVE[op]([v for _, v in window], range_s, aggregation.param or 0.0)


OPS = [
    ast.RangeOp.COUNT_OVER_TIME,
    ast.RangeOp.RATE,
    ast.RangeOp.SUM_OVER_TIME,
    ast.RangeOp.AVG_OVER_TIME,
    ast.RangeOp.MIN_OVER_TIME,
    ast.RangeOp.MAX_OVER_TIME,
    ast.RangeOp.STDVAR_OVER_TIME,
    ast.RangeOp.QUANTILE_OVER_TIME,
    ast.RangeOp.FIRST_OVER_TIME,
    ast.RangeOp.LAST_OVER_TIME,
    ast.RangeOp.RATE_COUNTER,
]


@dataclasses.dataclass(frozen=True)
class Scenario:
    op: ast.RangeOp
    gaps: list[int]
    values: list[float]
    range_s: int
    step_s: int
    offset_s: int
    start_s: int
    steps: int
    q: float


SCENARIOS = st.builds(
    Scenario,
    op=st.sampled_from(OPS),
    gaps=st.lists(st.integers(0, 20), min_size=0, max_size=60),
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=60, max_size=60),
    range_s=st.integers(1, 60),
    step_s=st.integers(1, 40),
    offset_s=st.integers(0, 30),
    start_s=st.integers(-20, 200),
    steps=st.integers(0, 30),
    q=st.floats(0, 1),
)


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(case=SCENARIOS)
def test_sliding_windows_match_a_naive_rescan(case: Scenario) -> None:
    op, range_s, step_s, offset_s, start_s = (
        case.op,
        case.range_s,
        case.step_s,
        case.offset_s,
        case.start_s,
    )
    ts: list[int] = []
    now = 0
    for gap in case.gaps:
        now += gap * S
        ts.append(now)
    vals = case.values[: len(ts)]
    aggregation = node(op, range_s, offset_s, param=case.q)
    last = (start_s + case.steps * step_s) * S
    step_list = range_vector.Steps(start_s * S, last, step_s * S)
    got = dict(range_vector.aggregate(aggregation, ts, vals, step_list))
    for index in range(step_list.count):
        end = step_list.time(index) - offset_s * S
        window = [(t, v) for t, v in zip(ts, vals, strict=True) if end - range_s * S < t <= end]
        if not window:
            assert index not in got
            continue
        expected = _reference(op, window, aggregation, end)
        scale = max(1.0, *(abs(v) for _, v in window))
        if op is ast.RangeOp.STDVAR_OVER_TIME:
            scale *= scale
        if math.isnan(expected):
            assert math.isnan(got[index])
        else:
            assert got[index] == pytest.approx(expected, rel=1e-9, abs=1e-9 * scale * len(window))


def test_sum_follows_ieee_for_nan_and_infinities() -> None:
    ts = [1 * S, 2 * S, 3 * S, 4 * S]
    vals = [math.inf, 1.0, -math.inf, 2.0]
    steps = range_vector.Steps(2 * S, 4 * S, 1 * S)
    found = dict(range_vector.aggregate(node(ast.RangeOp.SUM_OVER_TIME, 2), ts, vals, steps))
    assert found[0] == math.inf  # (0s, 2s]: +Inf, 1
    assert found[1] == -math.inf  # (1s, 3s]: 1, -Inf (the +Inf has left)
    assert found[2] == -math.inf  # (2s, 4s]: -Inf, 2


def test_min_ignores_nan_unless_all_nan() -> None:
    ts = [1 * S, 2 * S, 3 * S]
    steps = range_vector.Steps(3 * S, 3 * S, 0)
    mins = range_vector.aggregate(
        node(ast.RangeOp.MIN_OVER_TIME, 10), ts, [math.nan, 7.0, 3.0], steps
    )
    assert mins == [(0, 3.0)]
    nans = range_vector.aggregate(node(ast.RangeOp.MAX_OVER_TIME, 10), ts, [math.nan] * 3, steps)
    assert math.isnan(nans[0][1])


def test_stdvar_of_a_window_with_nan_is_nan_and_constant_is_zero() -> None:
    ts = [1 * S, 2 * S, 3 * S]
    steps = range_vector.Steps(3 * S, 3 * S, 0)
    assert range_vector.aggregate(node(ast.RangeOp.STDVAR_OVER_TIME, 10), ts, [4.0] * 3, steps) == [
        (0, 0.0)
    ]
    found = range_vector.aggregate(
        node(ast.RangeOp.STDDEV_OVER_TIME, 10), ts, [1.0, math.nan, 2.0], steps
    )
    assert math.isnan(found[0][1])


def test_quantile_out_of_range_is_infinite_and_nan_ranks_first() -> None:
    ts = [1 * S, 2 * S, 3 * S]
    steps = range_vector.Steps(3 * S, 3 * S, 0)
    above = range_vector.aggregate(
        node(ast.RangeOp.QUANTILE_OVER_TIME, 10, param=1.5), ts, [1.0, 2.0, 3.0], steps
    )
    assert above == [(0, math.inf)]
    top = range_vector.aggregate(
        node(ast.RangeOp.QUANTILE_OVER_TIME, 10, param=1.0), ts, [math.nan, 2.0, 3.0], steps
    )
    assert top == [(0, 3.0)]


def test_bytes_rate_divides_the_byte_sum_by_the_range() -> None:
    ts = [1 * S, 2 * S]
    steps = range_vector.Steps(2 * S, 2 * S, 0)
    rate = range_vector.aggregate(
        node(ast.RangeOp.BYTES_RATE, 10, unwrap=False), ts, [4.0, 6.0], steps
    )
    assert rate == [(0, 1.0)]


def test_absent_steps_span_all_series() -> None:
    steps = range_vector.Steps(0, 100 * S, 20 * S)
    absent = range_vector.absent_steps([[15 * S], [55 * S]], steps, 10 * S, 0)
    assert absent == [0, 2, 4, 5]


def test_group_series_merges_in_time_order() -> None:
    grouped = range_vector.group_series(
        [
            ((("app", "a"), ("pod", "1")), [1, 5], [1.0, 5.0]),
            ((("app", "a"), ("pod", "2")), [3, 5], [3.0, 6.0]),
            ((("app", "b"), ("pod", "1")), [2], [2.0]),
        ],
        ast.Grouping(("pod",), without=True),
    )
    assert grouped == {
        (("app", "a"),): ([1, 3, 5, 5], [1.0, 3.0, 5.0, 6.0]),
        (("app", "b"),): ([2], [2.0]),
    }


@pytest.mark.parametrize("seed", range(3))
def test_incremental_paths_on_long_overlapping_windows(seed: int) -> None:
    """Windows of ~200 samples moving by one or two: the in-place updates, not the rebuilds."""
    rng = random.Random(seed)
    ts = [i * S for i in range(1000)]
    vals = [
        rng.choice([math.nan, rng.uniform(-100, 100)]) if i % 97 == 0 else rng.uniform(-100, 100)
        for i in range(1000)
    ]
    steps = range_vector.Steps(200 * S, 999 * S, 1 * S)
    quantiles = dict(
        range_vector.aggregate(
            node(ast.RangeOp.QUANTILE_OVER_TIME, 200, param=0.3), ts, vals, steps
        )
    )
    sums = dict(range_vector.aggregate(node(ast.RangeOp.SUM_OVER_TIME, 200), ts, vals, steps))
    for index in range(steps.count):
        end = steps.time(index)
        window = [v for t, v in zip(ts, vals, strict=True) if end - 200 * S < t <= end]
        nan_first = [v for v in window if math.isnan(v)] + sorted(
            v for v in window if not math.isnan(v)
        )
        rank = 0.3 * (len(window) - 1)
        low = math.floor(rank)
        expected = nan_first[low] * (1 - (rank - low)) + nan_first[low + 1] * (rank - low)
        if math.isnan(expected):
            assert math.isnan(quantiles[index])
        else:
            assert quantiles[index] == pytest.approx(expected, rel=1e-12)
        if any(math.isnan(v) for v in window):
            assert math.isnan(sums[index])
        else:
            assert sums[index] == pytest.approx(math.fsum(window), abs=1e-9)
