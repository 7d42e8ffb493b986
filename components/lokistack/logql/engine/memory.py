"""An in-memory :class:`~.evaluator.SampleSource` for tests and examples.

It holds log streams and turns each matching entry into a sample with a *line processor*, the
role the querier gives to the real per-line pipeline. The default processor understands only
what needs no pipeline: the selector, line filters ``|=``, ``!=``, ``|~``, ``!~`` (without
``ip()``), and ``unwrap`` of a stream label or structured metadata with the float conversion.
Anything else raises ``NotImplementedError`` naming the stage, so a test cannot silently
evaluate a query it does not understand; pass ``processor_factory`` to plug in a real pipeline.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from lokistack.logql.engine import samples
from lokistack.logql.syntax import ast, checks, units
from lokistack.model import labels as model_labels

LineProcessor = Callable[
    [int, str, samples.Labels, samples.Labels], tuple[samples.Labels, float] | None
]
"""``(ts, line, stream labels, metadata) -> (labels, value)``, or ``None`` to drop the entry."""

ProcessorFactory = Callable[[ast.LogQueryExpr, ast.Unwrap | None], LineProcessor]


@dataclasses.dataclass(slots=True)
class MemoryStream:
    """One stream: its labels and entries ``(ts, line, metadata)`` sorted by time."""

    labels: samples.Labels
    entries: list[tuple[int, str, samples.Labels]]

    def __post_init__(self) -> None:
        self.entries.sort(key=lambda entry: entry[0])


class MemorySource:
    """Samples of in-memory streams, each entry passed through a line processor."""

    def __init__(
        self,
        streams: Sequence[MemoryStream],
        processor_factory: ProcessorFactory | None = None,
    ) -> None:
        self.streams = list(streams)
        self.processor_factory = processor_factory or default_processor
        self._times = [[entry[0] for entry in stream.entries] for stream in self.streams]

    async def samples(
        self,
        query: ast.LogQueryExpr,
        unwrap: ast.Unwrap | None,
        from_ns: int,
        through_ns: int,
    ) -> AsyncIterator[tuple[samples.Labels, int, float]]:
        """Yield ``(labels, ts, value)`` of matching entries with ``from_ns <= ts < through_ns``."""
        process = self.processor_factory(query, unwrap)
        for stream, times in zip(self.streams, self._times, strict=True):
            labels = stream.labels
            if not all(m.matches(model_labels.get(labels, m.name)) for m in query.matchers):
                continue
            lo = bisect.bisect_left(times, from_ns)
            hi = bisect.bisect_left(times, through_ns)
            for ts, line, metadata in stream.entries[lo:hi]:
                result = process(ts, line, labels, metadata)
                if result is not None:
                    yield result[0], ts, result[1]


def _line_filter(stage: ast.LineFilter) -> Callable[[str], bool]:
    """A line filter without ``ip()`` or patterns; a negated one keeps lines matching no term."""
    if stage.op in (ast.LineFilterOp.PATTERN, ast.LineFilterOp.NOT_PATTERN) or any(
        term.ip for term in stage.terms
    ):
        raise NotImplementedError(f"line filter {stage.op.value} with patterns or ip()")
    values = [term.value for term in stage.terms]
    negated = stage.op.negated
    if stage.op in (ast.LineFilterOp.CONTAINS, ast.LineFilterOp.NOT_CONTAINS):
        return lambda line: any(v in line for v in values) != negated
    regexes: list[Any] = [checks.compile_regex(v) for v in values]
    return lambda line: any(r.search(line) is not None for r in regexes) != negated


def default_processor(query: ast.LogQueryExpr, unwrap: ast.Unwrap | None) -> LineProcessor:
    """Line filters and float ``unwrap`` of a stream or metadata label; nothing else."""
    filters = []
    for stage in query.stages:
        if not isinstance(stage, ast.LineFilter):
            raise NotImplementedError(f"pipeline stage {type(stage).__name__}")
        filters.append(_line_filter(stage))
    if unwrap is not None and (
        unwrap.conversion is not ast.UnwrapConversion.FLOAT or unwrap.post_filters
    ):
        raise NotImplementedError("unwrap conversions and post-filters")

    def process(
        ts: int, line: str, labels: samples.Labels, metadata: samples.Labels
    ) -> tuple[samples.Labels, float] | None:
        del ts
        if not all(keep(line) for keep in filters):
            return None
        full = model_labels.normalize([*labels, *metadata]) if metadata else labels
        if unwrap is None:
            return full, float(len(line.encode("utf-8", "surrogateescape")))
        text = model_labels.get(full, unwrap.label)
        if not text:
            return None
        kept = tuple(p for p in full if p[0] != unwrap.label)
        try:
            return kept, units.parse_go_float(text)
        except ValueError:
            errored = model_labels.with_label(kept, "__error__", "SampleExtractionErr")
            return errored, 0.0

    return process
