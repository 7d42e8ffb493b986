"""Vector aggregations (``sum``, ``avg``, ``topk``, ``sort`` ...) of one step's vector.

A step vector is a ``dict`` from label set to value, in a meaningful order (``sort`` and
``topk`` produce one). Aggregations group by ``by (…)`` (keep only those labels) or
``without (…)`` (drop those and ``__name__``, as Prometheus does); ``by ()``, the default,
makes one group with no labels. Group keys are cached per label set because the same series
recur at every step of a range query.

Value semantics follow Prometheus, which Loki reuses: ``min``/``max`` skip NaN unless every
value is NaN; ``stddev``/``stdvar`` are population statistics and NaN when a value is not
finite; ``topk``/``bottomk`` keep the original labels, never keep a NaN while a number is
available, and break ties by label order so results are deterministic.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Sequence

from lokistack.logql.engine import samples
from lokistack.logql.syntax import ast

StepVector = dict[samples.Labels, float]
"""One step's samples: label set to value, in output order."""

METRIC_NAME = "__name__"


def group_labels(labels: samples.Labels, grouping: ast.Grouping) -> samples.Labels:
    """The labels of the group ``labels`` falls in under ``by``/``without``."""
    names = frozenset(grouping.labels)
    if grouping.without:
        return tuple(p for p in labels if p[0] not in names and p[0] != METRIC_NAME)
    return tuple(p for p in labels if p[0] in names)


class Grouper:
    """``group_labels`` with a per-query cache (label sets repeat at every step)."""

    def __init__(self, grouping: ast.Grouping) -> None:
        self.grouping = grouping
        self._cache: dict[samples.Labels, samples.Labels] = {}

    def __call__(self, labels: samples.Labels) -> samples.Labels:
        key = self._cache.get(labels)
        if key is None:
            key = self._cache[labels] = group_labels(labels, self.grouping)
        return key


def finite_sum(values: Sequence[float]) -> float:
    """An accurate sum with IEEE semantics for NaN and infinities."""
    total = sum(values)
    if not math.isfinite(total):
        return total
    try:
        return math.fsum(values)
    except OverflowError:
        return total


def minimum(values: Iterable[float]) -> float:
    """The smallest number, NaN only if all values are NaN."""
    numbers = [v for v in values if not math.isnan(v)]
    return min(numbers) if numbers else math.nan


def maximum(values: Iterable[float]) -> float:
    """The largest number, NaN only if all values are NaN."""
    numbers = [v for v in values if not math.isnan(v)]
    return max(numbers) if numbers else math.nan


def variance(values: Sequence[float]) -> float:
    """Population variance, two-pass; NaN if any value is NaN or infinite."""
    total = sum(values)
    if not math.isfinite(total):
        return math.nan
    mean = finite_sum(values) / len(values)
    return math.fsum([(v - mean) ** 2 for v in values]) / len(values)


_REDUCERS: dict[ast.VectorOp, Callable[[Sequence[float]], float]] = {
    ast.VectorOp.SUM: finite_sum,
    ast.VectorOp.AVG: lambda vs: finite_sum(vs) / len(vs),
    ast.VectorOp.COUNT: lambda vs: float(len(vs)),
    ast.VectorOp.MIN: minimum,
    ast.VectorOp.MAX: maximum,
    ast.VectorOp.STDVAR: variance,
    ast.VectorOp.STDDEV: lambda vs: math.sqrt(variance(vs)),
}


def _rank_key(descending: bool) -> Callable[[tuple[samples.Labels, float]], tuple[object, ...]]:
    """Sort key ranking numbers first (largest first if ``descending``), NaN last, then labels."""
    if descending:
        return lambda item: (math.isnan(item[1]), -item[1], item[0])
    return lambda item: (math.isnan(item[1]), item[1], item[0])


class VectorAggregator:
    """Applies one ``VectorAggregation`` node to step vectors."""

    def __init__(self, node: ast.VectorAggregation) -> None:
        self.op = node.op
        self.k = node.param or 0
        self.group = Grouper(node.grouping)

    def __call__(self, vector: StepVector) -> StepVector:
        op = self.op
        if not vector:
            return {}
        if op in (ast.VectorOp.SORT, ast.VectorOp.SORT_DESC):
            ordered = sorted(vector.items(), key=_rank_key(op is ast.VectorOp.SORT_DESC))
            return dict(ordered)
        if op in (ast.VectorOp.TOPK, ast.VectorOp.BOTTOMK, ast.VectorOp.APPROX_TOPK):
            return self._select(vector, descending=op is not ast.VectorOp.BOTTOMK)
        groups: dict[samples.Labels, list[float]] = {}
        group = self.group
        for labels, value in vector.items():
            key = group(labels)
            bucket = groups.get(key)
            if bucket is None:
                groups[key] = [value]
            else:
                bucket.append(value)
        reduce = _REDUCERS[op]
        return {key: reduce(values) for key, values in groups.items()}

    def _select(self, vector: StepVector, descending: bool) -> StepVector:
        """``topk``/``bottomk``: the ``k`` best samples of each group, original labels kept."""
        groups: dict[samples.Labels, list[tuple[samples.Labels, float]]] = {}
        group = self.group
        for item in vector.items():
            groups.setdefault(group(item[0]), []).append(item)
        key = _rank_key(descending)
        out: StepVector = {}
        for items in groups.values():
            out.update(heapq.nsmallest(self.k, items, key=key))
        return out
