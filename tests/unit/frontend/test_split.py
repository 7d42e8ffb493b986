"""Splitting range queries by time: alignment, boundaries, coverage, Loki's metric rules."""

from __future__ import annotations

import itertools
from typing import Final

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lokistack.frontend import split
from lokistack.loghttp import params
from lokistack.logql import syntax

SECOND: Final = 10**9
MINUTE: Final = 60 * SECOND
HOUR: Final = 60 * MINUTE
T0: Final = 1_700_000_000 * SECOND  # 2023-11-14T22:13:20Z, not hour-aligned


def _intervals(*pairs: tuple[int, int]) -> list[split.Interval]:
    return [split.Interval(start, end) for start, end in pairs]


# Log queries ---------------------------------------------------------------------------------


def test_log_pieces_are_epoch_aligned_and_half_open() -> None:
    start, end = 10 * HOUR + 20 * MINUTE, 12 * HOUR + 5 * MINUTE
    pieces = split.split_log_query(start, end, HOUR, "forward")
    assert pieces == _intervals((start, 11 * HOUR), (11 * HOUR, 12 * HOUR), (12 * HOUR, end))


def test_log_pieces_backward_are_newest_first() -> None:
    start, end = 10 * HOUR + 20 * MINUTE, 12 * HOUR + 5 * MINUTE
    forward = split.split_log_query(start, end, HOUR, "forward")
    assert split.split_log_query(start, end, HOUR, "backward") == forward[::-1]


def test_log_range_on_boundaries_has_no_empty_piece() -> None:
    pieces = split.split_log_query(10 * HOUR, 12 * HOUR, HOUR, "forward")
    assert pieces == _intervals((10 * HOUR, 11 * HOUR), (11 * HOUR, 12 * HOUR))


@pytest.mark.parametrize(("start", "end", "interval"), [(5, 5, HOUR), (5, 3, HOUR), (0, HOUR, 0)])
def test_log_unsplittable_requests_are_one_piece(start: int, end: int, interval: int) -> None:
    assert split.split_log_query(start, end, interval, "backward") == _intervals((start, end))


@given(
    start=st.integers(-(10**13), 10**13),
    length=st.integers(1, 10**12),
    interval=st.integers(1, 10**11),
    direction=st.sampled_from(["forward", "backward"]),
)
def test_log_pieces_cover_the_range_exactly(
    start: int, length: int, interval: int, direction: split.Direction
) -> None:
    end = start + length
    interval = max(interval, length // 2000 + 1)  # keep the piece count reasonable
    pieces = split.split_log_query(start, end, interval, direction)
    ordered = pieces if direction == "forward" else pieces[::-1]
    assert ordered[0].start_ns == start
    assert ordered[-1].end_ns == end
    for prev, nxt in itertools.pairwise(ordered):
        assert prev.end_ns == nxt.start_ns
        assert prev.end_ns % interval == 0
    assert all(p.start_ns < p.end_ns for p in pieces)
    assert all(p.end_ns - p.start_ns <= interval for p in pieces)


# Metric queries ------------------------------------------------------------------------------


def test_align_to_step() -> None:
    # T0 is 5s past a multiple of 15s.
    assert split.align_to_step(T0 + 7 * SECOND, T0 + 61 * SECOND, 15 * SECOND) == (
        T0 - 5 * SECOND,
        T0 + 70 * SECOND,
    )
    assert split.align_to_step(30 * SECOND, 60 * SECOND, 15 * SECOND) == (30 * SECOND, 60 * SECOND)
    assert split.align_to_step(31 * SECOND, 46 * SECOND, 15 * SECOND) == (30 * SECOND, 60 * SECOND)
    with pytest.raises(ValueError, match="step must be positive"):
        split.align_to_step(0, 1, 0)


def test_metric_pieces_end_on_the_last_step_before_each_boundary() -> None:
    step = 7 * MINUTE
    start, end = 10 * HOUR, 12 * HOUR + 30 * MINUTE
    pieces = split.split_metric_query(start, end, step, HOUR, 5 * MINUTE)
    a_start, a_end = split.align_to_step(start, end, step)
    assert pieces[0].start_ns == a_start
    assert pieces[-1].end_ns == a_end
    for piece in pieces[:-1]:
        next_boundary = (piece.end_ns // HOUR + 1) * HOUR
        assert piece.end_ns < next_boundary <= piece.end_ns + step
    assert [p.start_ns for p in pieces[1:]] == [p.end_ns + step for p in pieces[:-1]]


def test_metric_pieces_example() -> None:
    # 1m steps over 10:00..12:30: 10:00-10:59, 11:00-11:59, 12:00-12:30.
    pieces = split.split_metric_query(10 * HOUR, 12 * HOUR + 30 * MINUTE, MINUTE, HOUR, MINUTE)
    assert pieces == _intervals(
        (10 * HOUR, 10 * HOUR + 59 * MINUTE),
        (11 * HOUR, 11 * HOUR + 59 * MINUTE),
        (12 * HOUR, 12 * HOUR + 30 * MINUTE),
    )
    # A last piece of one step is folded into the one before (Loki: splEnd + step >= end).
    pieces = split.split_metric_query(10 * HOUR, 12 * HOUR, MINUTE, HOUR, MINUTE)
    assert pieces == _intervals((10 * HOUR, 10 * HOUR + 59 * MINUTE), (11 * HOUR, 12 * HOUR))


def test_metric_range_longer_than_interval_becomes_the_interval() -> None:
    pieces = split.split_metric_query(0, 6 * HOUR, MINUTE, HOUR, 3 * HOUR)
    assert pieces == _intervals((0, 3 * HOUR - MINUTE), (3 * HOUR, 6 * HOUR))


def test_metric_step_at_least_interval_gives_one_piece_per_step() -> None:
    pieces = split.split_metric_query(HOUR + 1, 5 * HOUR, 2 * HOUR, HOUR, MINUTE)
    assert pieces == _intervals(
        (0, 0), (2 * HOUR, 2 * HOUR), (4 * HOUR, 4 * HOUR), (6 * HOUR, 6 * HOUR)
    )


def test_metric_single_step_and_no_split() -> None:
    assert split.split_metric_query(HOUR, HOUR, MINUTE, HOUR, 0) == _intervals((HOUR, HOUR))
    # Splitting off: Loki forwards the request as it came, unaligned.
    assert split.split_metric_query(7, 100, 10, 0, 0) == _intervals((7, 100))


@given(
    start=st.integers(0, 10**13),
    length=st.integers(0, 10**12),
    step=st.integers(1, 10**10),
    interval=st.integers(1, 10**11),
    max_range=st.integers(0, 10**11),
)
def test_metric_pieces_evaluate_exactly_the_unsplit_steps(
    start: int, length: int, step: int, interval: int, max_range: int
) -> None:
    end = start + length
    if (end - start) // step > 20_000:  # the API caps a query at 11,000 points
        step = max(1, (end - start) // 20_000)
    pieces = split.split_metric_query(start, end, step, interval, max_range)
    a_start, a_end = split.align_to_step(start, end, step)
    evaluated = [t for piece in pieces for t in split.step_timestamps(piece, step)]
    assert evaluated == list(range(a_start, a_end + 1, step))
    assert all(p.start_ns <= p.end_ns for p in pieces)
    assert all(p.start_ns % step == 0 and p.end_ns % step == 0 for p in pieces)


# Expressions and sub-request parameters ------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('{a="b"} |= "x"', (0, 0)),
        ('rate({a="b"}[5m])', (5 * MINUTE, 0)),
        (
            'sum by (a) (rate({a="b"}[5m] offset 1h)) / count_over_time({a="b"}[2h])',
            (2 * HOUR, HOUR),
        ),
        (
            'label_replace(max_over_time({a="b"} | unwrap x [10m]), "d", "$1", "a", "(.*)")',
            (10 * MINUTE, 0),
        ),
        ("vector(1) + 1", (0, 0)),
    ],
)
def test_max_range_and_offset(query: str, expected: tuple[int, int]) -> None:
    expr = syntax.parse_expr(query)
    assert split.max_range_and_offset_ns(expr) == expected
    assert split.max_range_ns(expr) == expected[0]


def test_sub_request_params_replace_bounds_and_fix_the_step() -> None:
    original = {"query": 'rate({a="b"}[1m])', "start": "1700000000", "since": "1h", "limit": "5"}
    params = split.sub_request_params(original, split.Interval(T0, T0 + HOUR), step_ns=15 * SECOND)
    assert params == {
        "query": original["query"],
        "start": str(T0),
        "end": str(T0 + HOUR),
        "limit": "5",
        "step": "15000ms",
    }
    with_step = dict(original, step="0.5")
    params = split.sub_request_params(with_step, split.Interval(T0, T0 + HOUR), step_ns=SECOND // 2)
    assert params["step"] == "0.5"


def test_small_timestamps_are_not_read_as_seconds() -> None:
    assert split.format_timestamp(5 * SECOND) == "1970-01-01T00:00:05.000000000Z"
    assert split.format_timestamp(-1) == "1969-12-31T23:59:59.999999999Z"
    assert split.format_timestamp(12_345_678_901) == "12345678901"


# The querier parses sub-requests with lokistack.loghttp.params: what the frontend writes must
# read back as the same numbers.


@given(st.integers(-(2**62), 2**62))
def test_timestamps_round_trip_through_loki_parsing(ts: int) -> None:
    assert params.parse_timestamp("start", split.format_timestamp(ts), 0) == ts


@given(st.integers(1, 7 * 24 * HOUR))
def test_steps_round_trip_through_loki_parsing(step: int) -> None:
    assert params.parse_duration("step", split.format_duration(step)) == step
