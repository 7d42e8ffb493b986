"""Splitting a range query into time-window sub-queries, as Loki's ``split_by_interval`` does.

Short sub-queries run in parallel on different queriers, finish early when a log query's limit
is met, and give the results cache fixed windows to key on (reference §4.4).

* **Log queries** (``defaultSplitter`` with ``util.ForInterval``): pieces are half-open
  ``[start, end)`` windows whose inner boundaries are multiples of the interval since the epoch,
  so the pieces of any two queries line up. They cover ``[start, end)`` exactly, without
  overlap; for ``backward`` the list is newest first, the order the caller runs and merges them.
* **Metric queries** (``metricQuerySplitter``): ``start`` is aligned down and ``end`` up to a
  multiple of ``step``, so every evaluation timestamp is a step multiple whichever piece computes
  it. Pieces are *inclusive* ``[start, end]`` evaluation ranges; each ends on the last step before
  an interval boundary and the next begins one step later, so no step is evaluated twice and
  concatenating the per-series points of the pieces gives exactly the unsplit (aligned) result.
  The querier reads ``end`` of a metric query as inclusive (it evaluates every ``t <= end``).

Timestamps are integer Unix nanoseconds; alignment uses floor division (Loki uses Go's truncating
``%``, which differs only before 1970).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Final, Literal

from lokistack.logql.syntax import ast

Direction = Literal["forward", "backward"]

_EPOCH: Final = datetime.datetime(1970, 1, 1)
_NS_PER_MS: Final = 10**6
_SECOND: Final = 10**9
_MAX_SECONDS_DIGITS: Final = 10
"""Loki reads an integer timestamp of at most 10 characters as seconds, longer ones as ns."""


@dataclasses.dataclass(frozen=True, slots=True)
class Interval:
    """One sub-query's time range: half-open for log queries, inclusive for metric queries."""

    start_ns: int
    end_ns: int


def split_log_query(
    start_ns: int, end_ns: int, interval_ns: int, direction: Direction
) -> list[Interval]:
    """Half-open ``[start, end)`` pieces at epoch-aligned multiples of ``interval_ns``.

    Newest first for ``backward``. Always at least one piece: with ``interval_ns <= 0``
    (splitting off) or an empty range (``start >= end``) the request is one piece, unchanged,
    as Loki forwards such a request unsplit.
    """
    if interval_ns <= 0 or start_ns >= end_ns:
        return [Interval(start_ns, end_ns)]
    pieces = []
    boundary = start_ns - start_ns % interval_ns
    while boundary < end_ns:
        pieces.append(Interval(max(boundary, start_ns), min(boundary + interval_ns, end_ns)))
        boundary += interval_ns
    if direction == "backward":
        pieces.reverse()
    return pieces


def align_to_step(start_ns: int, end_ns: int, step_ns: int) -> tuple[int, int]:
    """``alignStartEnd``: ``start`` rounded down and ``end`` up to multiples of ``step_ns``."""
    _check_step(step_ns)
    return start_ns - start_ns % step_ns, end_ns + (-end_ns) % step_ns


def split_metric_query(
    start_ns: int, end_ns: int, step_ns: int, interval_ns: int, max_range_ns: int
) -> list[Interval]:
    """Inclusive ``[start, end]`` evaluation ranges, oldest first, sharing no step timestamp.

    ``max_range_ns`` is the query's largest ``[range]`` (:func:`max_range_ns`): a range longer
    than ``interval_ns`` becomes the interval, since splitting finer than the range makes every
    piece read the same data again. When ``step_ns >= interval`` every step is its own piece
    (Loki splits by step there too, but with pieces that share their boundary step and relies on
    the merge to drop the duplicate). With ``interval_ns <= 0`` (splitting off) the request is
    one piece, not even aligned, as Loki skips the whole split middleware then.
    """
    _check_step(step_ns)
    if interval_ns <= 0:
        return [Interval(start_ns, end_ns)]
    start, end = align_to_step(start_ns, end_ns, step_ns)
    interval = max(interval_ns, max_range_ns)
    if start >= end:
        return [Interval(start, end)]
    if step_ns >= interval:
        return [Interval(t, t) for t in range(start, end + 1, step_ns)]
    pieces = []
    piece_start = start
    while piece_start < end:
        piece_end = _last_step_before_boundary(piece_start, step_ns, interval)
        if piece_end + step_ns >= end:
            piece_end = end
        pieces.append(Interval(piece_start, piece_end))
        piece_start = piece_end + step_ns
    return pieces


def step_timestamps(interval: Interval, step_ns: int) -> range:
    """The evaluation timestamps of a metric piece: ``start, start+step, ... <= end``."""
    _check_step(step_ns)
    return range(interval.start_ns, interval.end_ns + 1, step_ns)


def max_range_and_offset_ns(expr: ast.Expr) -> tuple[int, int]:
    """``maxRangeVectorAndOffsetDuration``: the largest ``[range]`` and the largest ``offset``.

    They are maxima over all range aggregations independently, not of one aggregation's sum;
    a log query has neither, ``(0, 0)``.
    """
    ranges = list(ast.range_aggregations(expr))
    if not ranges:
        return 0, 0
    return max(r.range_ns for r in ranges), max(r.offset_ns for r in ranges)


def max_range_ns(expr: ast.Expr) -> int:
    """The largest ``[range]`` of a metric query, what Loki compares with the split interval.

    The offset is left out as in Loki: it shifts the data a piece reads but does not widen it.
    """
    return max_range_and_offset_ns(expr)[0]


def sub_request_params(
    original: Mapping[str, str], interval: Interval, *, step_ns: int
) -> dict[str, str]:
    """The client's parameters for one piece: explicit ``start``/``end`` and ``step``.

    ``start`` and ``end`` are the piece's bounds, the same numbers for log (end exclusive) and
    metric (end inclusive) pieces, since the querier reads ``end`` that way for each kind.
    ``since`` is dropped: both bounds are explicit now. ``step`` is kept verbatim when the client
    sent one (the querier parses it to the same ``step_ns``); otherwise the default step the
    frontend computed for the *whole* range is written out, because the querier would compute
    a different default from the shorter piece.
    """
    params = {key: value for key, value in original.items() if key != "since"}
    params["start"] = format_timestamp(interval.start_ns)
    params["end"] = format_timestamp(interval.end_ns)
    if not original.get("step"):
        params["step"] = format_duration(step_ns)
    return params


def format_timestamp(ts_ns: int) -> str:
    """``ts_ns`` as a ``start``/``end`` value Loki's ``parseTimestamp`` reads back exactly.

    Nanosecond integers, except those of 10 characters or fewer (within 10 s of the epoch),
    which Loki would read as seconds: those are written as RFC 3339 with nanoseconds.
    """
    text = str(ts_ns)
    if len(text) > _MAX_SECONDS_DIGITS:
        return text
    seconds, nanos = divmod(ts_ns, _SECOND)
    moment = _EPOCH + datetime.timedelta(seconds=seconds)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


def format_duration(duration_ns: int) -> str:
    """A ``step`` value the querier parses back to exactly ``duration_ns``.

    Whole milliseconds as a Prometheus duration (``15000ms``). Anything finer can only be float
    seconds, which Loki multiplies by 1e9 and truncates; half a nanosecond is added so that the
    float error (far below 0.5 ns for steps under a day) cannot truncate to the step below.
    """
    if duration_ns % _NS_PER_MS == 0:
        return f"{duration_ns // _NS_PER_MS}ms"
    seconds, nanos = divmod(duration_ns, _SECOND)
    return f"{seconds}.{nanos:09d}5"


def _last_step_before_boundary(t: int, step_ns: int, interval_ns: int) -> int:
    """``nextIntervalBoundary``: the last step (counted from ``t``) before the next boundary."""
    next_boundary = (t // interval_ns + 1) * interval_ns
    target = next_boundary - (next_boundary - t) % step_ns
    if target == next_boundary:
        target -= step_ns
    return target


def _check_step(step_ns: int) -> None:
    if step_ns <= 0:
        raise ValueError(f"step must be positive, got {step_ns} ns")
