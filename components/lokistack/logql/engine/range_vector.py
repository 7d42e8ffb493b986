"""Range aggregations (``rate``, ``count_over_time``, ``*_over_time`` ...) over sliding windows.

Loki evaluates a range aggregation at each step ``t`` over the samples in the window
``(t - range - offset, t - offset]`` (lower bound exclusive, upper inclusive) of every series.
Steps overlap their windows whenever ``range > step``, so rescanning each window would cost
points x window-size. Here a series is two parallel lists (timestamps, values); the windows of
all steps are found with ``bisect`` (monotonic, so each search starts where the previous one
ended) and every function is computed incrementally as the window slides:

- counts are index differences; ``first``/``last`` are index look-ups;
- sums (``sum``/``avg_over_time``, unwrapped ``rate``, bytes) add what enters and subtract what
  leaves, with ``math.fsum`` over the changed slices; the window is summed afresh whenever more
  samples have churned through it than it holds, which bounds the rounding error and amortises
  to O(1) per sample;
- ``stdvar``/``stddev`` keep moments shifted by the last recomputed mean (no catastrophic
  cancellation), with the same recomputation rule;
- ``min``/``max`` use a monotonic deque; ``quantile`` keeps the window sorted, or re-sorts it
  in C when most of it changed.

NaN and infinities do not survive subtraction, so non-finite values are counted separately and
decide the result the way a plain sum over the window would (any NaN, or both infinities, is
NaN). The output of each function is a list of ``(step index, value)`` for non-empty windows:
Loki emits no point for an empty window (``absent_over_time`` is the exception and is handled
by the evaluator across all series).
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import itertools
import math
import operator
from collections.abc import Callable, Iterable, Sequence

from lokistack.logql.engine import samples, vector_agg
from lokistack.logql.syntax import ast

Window = tuple[int, int, int]
"""``(step index, lo, hi)``: the step's window is ``values[lo:hi]``, never empty."""

_NAN = math.nan
_INF = math.inf


@dataclasses.dataclass(frozen=True, slots=True)
class Steps:
    """Evaluation times ``start, start + step, ... <= end``; an instant query has ``step == 0``."""

    start_ns: int
    end_ns: int
    step_ns: int

    @property
    def count(self) -> int:
        """Number of evaluation times (the end is included)."""
        if self.step_ns == 0:
            return 1
        return (self.end_ns - self.start_ns) // self.step_ns + 1

    def time(self, index: int) -> int:
        """The evaluation time of step ``index``."""
        return self.start_ns + index * self.step_ns


def windows(ts: Sequence[int], steps: Steps, range_ns: int, offset_ns: int) -> list[Window]:
    """The non-empty windows ``(t - range - offset, t - offset]`` over sorted ``ts``.

    Only the steps whose window can reach the series' first and last sample are visited, so a
    short-lived series in a long query costs little.
    """
    if not ts:
        return []
    last_step = steps.count - 1
    first, last = 0, last_step
    if steps.step_ns:
        # t - offset >= ts[0]  and  t - offset - range < ts[-1]
        first = max(0, -((steps.start_ns - ts[0] - offset_ns) // steps.step_ns))
        last = min(last_step, (ts[-1] + offset_ns + range_ns - 1 - steps.start_ns) // steps.step_ns)
    out: list[Window] = []
    lo = hi = 0
    bisect_right = bisect.bisect_right
    for index in range(first, last + 1):
        upper = steps.start_ns + index * steps.step_ns - offset_ns
        hi = bisect_right(ts, upper, hi)
        lo = bisect_right(ts, upper - range_ns, lo, hi)
        if hi > lo:
            out.append((index, lo, hi))
    return out


def _fsum(values: Iterable[float]) -> float:
    """Correctly rounded sum of finite values; an overflow gives the infinity Go would give."""
    items = list(values)
    try:
        return math.fsum(items)
    except OverflowError:
        return sum(items)


def _needs_recompute(lo: int, hi: int, prev_lo: int, prev_hi: int, churn: int) -> bool:
    """Whether to rebuild a window's state instead of updating it (disjoint or churned out)."""
    return lo >= prev_hi or churn + (hi - prev_hi) + (lo - prev_lo) > hi - lo


def _finite_sums(values: Sequence[float], bounds: Iterable[tuple[int, int]]) -> list[float]:
    """Sums of ``values[lo:hi]`` of finite values, updated incrementally as the window slides."""
    out: list[float] = []
    total = 0.0
    prev_lo = prev_hi = churn = 0
    for lo, hi in bounds:
        if _needs_recompute(lo, hi, prev_lo, prev_hi, churn):
            total = _fsum(values[lo:hi])
            churn = 0
        else:
            if hi > prev_hi:
                total += _fsum(values[prev_hi:hi])
            if lo > prev_lo:
                total -= _fsum(values[prev_lo:lo])
            churn += (hi - prev_hi) + (lo - prev_lo)
        prev_lo, prev_hi = lo, hi
        out.append(total)
    return out


class _NonFinite:
    """Prefix counts of NaN, +Inf and -Inf, and the values with those replaced by 0."""

    def __init__(self, values: Sequence[float]) -> None:
        self.any = not math.isfinite(sum(values))
        self.finite: Sequence[float] = values
        if self.any:
            self.finite = [v if math.isfinite(v) else 0.0 for v in values]
            self.nan = list(itertools.accumulate(map(math.isnan, values), initial=0))
            self.pos = list(itertools.accumulate((v == _INF for v in values), initial=0))
            self.neg = list(itertools.accumulate((v == -_INF for v in values), initial=0))

    def sum_override(self, lo: int, hi: int) -> float | None:
        """What a plain sum of ``values[lo:hi]`` is when non-finite values decide it, else None."""
        if not self.any:
            return None
        pos = self.pos[hi] - self.pos[lo]
        neg = self.neg[hi] - self.neg[lo]
        if self.nan[hi] - self.nan[lo] or (pos and neg):
            return _NAN
        if pos:
            return _INF
        return -_INF if neg else None

    def has_any(self, lo: int, hi: int) -> bool:
        """Whether ``values[lo:hi]`` holds a non-finite value."""
        if not self.any:
            return False
        counts = (self.nan, self.pos, self.neg)
        return any(prefix[hi] - prefix[lo] for prefix in counts)


def window_sums(values: Sequence[float], wins: Sequence[Window]) -> list[float]:
    """The sum of each window, with IEEE semantics for NaN and infinities."""
    special = _NonFinite(values)
    sums = _finite_sums(special.finite, ((lo, hi) for _, lo, hi in wins))
    if special.any:
        for k, (_, lo, hi) in enumerate(wins):
            override = special.sum_override(lo, hi)
            if override is not None:
                sums[k] = override
    return sums


_CANCELLATION = 1e-6
"""Recompute a sliding variance once its sum of squares falls below this share of its peak."""


def window_variances(values: Sequence[float], wins: Sequence[Window]) -> list[float]:
    """Population variance of each window; NaN if the window holds a NaN or an infinity."""
    special = _NonFinite(values)
    finite = special.finite
    out: list[float] = []
    shift = s1 = s2 = peak = 0.0
    prev_lo = prev_hi = churn = 0
    for _, lo, hi in wins:
        n = hi - lo
        fresh = _needs_recompute(lo, hi, prev_lo, prev_hi, churn)
        if not fresh:
            for v in finite[prev_hi:hi]:
                d = v - shift
                s1 += d
                s2 += d * d
            peak = max(peak, s2)
            for v in finite[prev_lo:lo]:
                d = v - shift
                s1 -= d
                s2 -= d * d
            churn += (hi - prev_hi) + (lo - prev_lo)
            # Removing a large deviation leaves the rounding error of the large sum behind, and
            # a stale shift far from the mean makes s2/n - mean_dev^2 cancel: in either case
            # recompute rather than keep that error.
            mean_dev = s1 / n
            fresh = s2 < peak * _CANCELLATION or (
                s2 / n - mean_dev * mean_dev < mean_dev * mean_dev * _CANCELLATION
            )
        if fresh:
            window = finite[lo:hi]
            shift = _fsum(window) / n
            devs = [v - shift for v in window]
            s1 = _fsum(devs)
            s2 = peak = _fsum([d * d for d in devs])
            churn = 0
        prev_lo, prev_hi = lo, hi
        if special.has_any(lo, hi):
            out.append(_NAN)
            continue
        mean_dev = s1 / n
        out.append(max(s2 / n - mean_dev * mean_dev, 0.0))
    return out


def window_extremes(values: Sequence[float], wins: Sequence[Window], largest: bool) -> list[float]:
    """Min (or max) of each window ignoring NaN; NaN only when every value is NaN.

    That is Prometheus' rule: a NaN is replaced by any later number and never replaces one.
    """
    better = operator.ge if largest else operator.le
    deque: collections.deque[int] = collections.deque()
    out: list[float] = []
    nxt = 0
    for _, lo, hi in wins:
        if nxt < lo:
            nxt = lo
            deque.clear()
        while nxt < hi:
            v = values[nxt]
            if not math.isnan(v):
                while deque and better(v, values[deque[-1]]):
                    deque.pop()
                deque.append(nxt)
            nxt += 1
        while deque and deque[0] < lo:
            deque.popleft()
        out.append(values[deque[0]] if deque else _NAN)
    return out


def window_quantiles(values: Sequence[float], wins: Sequence[Window], q: float) -> list[float]:
    """The φ-quantile of each window, interpolating between ranks; NaN values rank first.

    The sorted window is updated in place (``insort``/``del``, memmoves in C) while few samples
    enter and leave it; when many do, sorting the new window in C is cheaper.
    """
    if q < 0 or q > 1:
        return [-_INF if q < 0 else _INF] * len(wins)
    has_nan = any(map(math.isnan, values))
    out: list[float] = []
    ordered: list[float] = []
    nans = 0
    prev_lo = prev_hi = 0
    for _, lo, hi in wins:
        n = hi - lo
        if lo >= prev_hi or ((hi - prev_hi) + (lo - prev_lo)) * 32 > n:
            window = values[lo:hi]
            ordered = sorted(v for v in window if not math.isnan(v)) if has_nan else sorted(window)
            nans = n - len(ordered)
        else:
            for v in values[prev_hi:hi]:
                if math.isnan(v):
                    nans += 1
                else:
                    bisect.insort(ordered, v)
            for v in values[prev_lo:lo]:
                if math.isnan(v):
                    nans -= 1
                else:
                    del ordered[bisect.bisect_left(ordered, v)]
        prev_lo, prev_hi = lo, hi
        rank = q * (n - 1)
        lower = math.floor(rank)
        upper = min(n - 1, lower + 1)
        weight = rank - lower
        low_v = _NAN if lower < nans else ordered[lower - nans]
        up_v = _NAN if upper < nans else ordered[upper - nans]
        out.append(low_v * (1 - weight) + up_v * weight)
    return out


def window_counter_rates(
    ts: Sequence[int],
    values: Sequence[float],
    wins: Sequence[Window],
    window_ends: Sequence[int],
    range_ns: int,
) -> list[float]:
    """``rate_counter``: per-second increase with counter resets, extrapolated as Prometheus.

    A drop is a reset: the value before it is added back. The increase is then extrapolated
    towards each window edge, by at most half the average sample interval when the nearest
    sample is farther than 1.1 intervals from the edge, and never below the counter's zero
    point. Fewer than two samples give 0. ``window_ends`` are the windows' upper bounds.
    """
    resets = [0.0] * len(values)
    for i in range(1, len(values)):
        if values[i] < values[i - 1]:
            resets[i] = values[i - 1]
    reset_sums = _finite_sums(resets, ((lo + 1, hi) for _, lo, hi in wins))
    range_s = range_ns / 1e9
    out: list[float] = []
    for k, (_, lo, hi) in enumerate(wins):
        n = hi - lo
        if n < 2:
            out.append(0.0)
            continue
        first_v = values[lo]
        result = values[hi - 1] - first_v + reset_sums[k]
        range_end = window_ends[k]
        sampled = (ts[hi - 1] - ts[lo]) / 1e9
        if sampled == 0:
            out.append(_NAN)
            continue
        to_start = (ts[lo] - (range_end - range_ns)) / 1e9
        to_end = (range_end - ts[hi - 1]) / 1e9
        average = sampled / (n - 1)
        threshold = average * 1.1
        if to_start >= threshold:
            to_start = average / 2
        if result > 0 and first_v >= 0:
            to_start = min(to_start, sampled * (first_v / result))
        if to_end >= threshold:
            to_end = average / 2
        out.append(result * (sampled + to_start + to_end) / sampled / range_s)
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class _Input:
    """One series and its windows, as every range function sees them."""

    node: ast.RangeAggregation
    ts: Sequence[int]
    values: Sequence[float]
    wins: list[Window]
    steps: Steps

    @property
    def range_s(self) -> float:
        return self.node.range_ns / 1e9

    def counts(self) -> list[int]:
        return [hi - lo for _, lo, hi in self.wins]


def _rate(x: _Input) -> list[float]:
    """Lines per second, or with ``unwrap`` the sum of values per second (no extrapolation)."""
    if x.node.unwrap is None:
        return [c / x.range_s for c in x.counts()]
    return [s / x.range_s for s in window_sums(x.values, x.wins)]


def _counter_rate(x: _Input) -> list[float]:
    ends = [x.steps.time(index) - x.node.offset_ns for index, _, _ in x.wins]
    return window_counter_rates(x.ts, x.values, x.wins, ends, x.node.range_ns)


def _quantile(x: _Input) -> list[float]:
    if x.node.param is None:
        raise ValueError("quantile_over_time needs a parameter")
    return window_quantiles(x.values, x.wins, x.node.param)


_Op = ast.RangeOp
_FUNCTIONS: dict[ast.RangeOp, Callable[[_Input], Sequence[float]]] = {
    _Op.COUNT_OVER_TIME: lambda x: [float(c) for c in x.counts()],
    _Op.RATE: _rate,
    _Op.BYTES_OVER_TIME: lambda x: window_sums(x.values, x.wins),
    _Op.BYTES_RATE: lambda x: [s / x.range_s for s in window_sums(x.values, x.wins)],
    _Op.SUM_OVER_TIME: lambda x: window_sums(x.values, x.wins),
    _Op.AVG_OVER_TIME: lambda x: [
        s / c for s, c in zip(window_sums(x.values, x.wins), x.counts(), strict=True)
    ],
    _Op.MIN_OVER_TIME: lambda x: window_extremes(x.values, x.wins, largest=False),
    _Op.MAX_OVER_TIME: lambda x: window_extremes(x.values, x.wins, largest=True),
    _Op.STDVAR_OVER_TIME: lambda x: window_variances(x.values, x.wins),
    _Op.STDDEV_OVER_TIME: lambda x: [math.sqrt(v) for v in window_variances(x.values, x.wins)],
    _Op.QUANTILE_OVER_TIME: _quantile,
    _Op.FIRST_OVER_TIME: lambda x: [x.values[lo] for _, lo, _ in x.wins],
    _Op.LAST_OVER_TIME: lambda x: [x.values[hi - 1] for _, _, hi in x.wins],
    _Op.RATE_COUNTER: _counter_rate,
}


def aggregate(
    node: ast.RangeAggregation,
    ts: Sequence[int],
    values: Sequence[float],
    steps: Steps,
) -> list[tuple[int, float]]:
    """``(step index, value)`` of ``node.op`` over one series' sorted samples.

    ``values`` are line byte lengths without ``unwrap`` and unwrapped values with it.
    ``absent_over_time`` spans all series and is not computed here.
    """
    function = _FUNCTIONS.get(node.op)
    if function is None:
        raise ValueError(f"{node.op.value} is evaluated across series, not per series")
    wins = windows(ts, steps, node.range_ns, node.offset_ns)
    if not wins:
        return []
    results = function(_Input(node, ts, values, wins, steps))
    return [(win[0], value) for win, value in zip(wins, results, strict=True)]


def absent_steps(
    series_ts: Iterable[Sequence[int]], steps: Steps, range_ns: int, offset_ns: int
) -> list[int]:
    """The steps whose window holds no sample of any series (``absent_over_time``)."""
    merged = sorted(itertools.chain.from_iterable(series_ts))
    present = {index for index, _, _ in windows(merged, steps, range_ns, offset_ns)}
    return [index for index in range(steps.count) if index not in present]


def group_series(
    series: Iterable[tuple[samples.Labels, Sequence[int], Sequence[float]]],
    grouping: ast.Grouping,
) -> dict[samples.Labels, tuple[list[int], list[float]]]:
    """Merge series that share their ``by``/``without`` labels into one, in time order.

    Grouped ``avg``/``min``/``max``/``quantile``/``first``/``last_over_time`` aggregate the
    merged samples of the group, not the per-series results. Equal timestamps keep input order.
    """
    groups: dict[samples.Labels, list[Iterable[tuple[int, float]]]] = {}
    for labels, ts, values in series:
        key = vector_agg.group_labels(labels, grouping)
        groups.setdefault(key, []).append(zip(ts, values, strict=True))
    out: dict[samples.Labels, tuple[list[int], list[float]]] = {}
    first = operator.itemgetter(0)
    for key, parts in groups.items():
        pairs = list(itertools.chain.from_iterable(parts))
        if len(parts) > 1:
            pairs.sort(key=first)
        out[key] = ([p[0] for p in pairs], [p[1] for p in pairs])
    return out
