"""An in-memory :class:`lokistack.logql.engine.evaluator.SampleSource` for engine tests.

It holds log streams and turns each matching entry into a sample with the real per-line
pipeline, the role the querier plays in production.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence

from lokistack.logql.engine import samples
from lokistack.logql.log import pipeline
from lokistack.logql.syntax import ast
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
        self.processor_factory = processor_factory or pipeline_processor
        self._times = [[entry[0] for entry in stream.entries] for stream in self.streams]

    async def sample_batches(
        self,
        query: ast.LogQueryExpr,
        unwrap: ast.Unwrap | None,
        from_ns: int,
        through_ns: int,
    ) -> AsyncIterator[list[tuple[samples.Labels, int, float]]]:
        """Yield ``(labels, ts, value)`` of matching entries with ``from_ns <= ts < through_ns``,
        one list per stream."""
        process = self.processor_factory(query, unwrap)
        for stream, times in zip(self.streams, self._times, strict=True):
            labels = stream.labels
            if not all(m.matches(model_labels.get(labels, m.name)) for m in query.matchers):
                continue
            lo = bisect.bisect_left(times, from_ns)
            hi = bisect.bisect_left(times, through_ns)
            batch = []
            for ts, line, metadata in stream.entries[lo:hi]:
                result = process(ts, line, labels, metadata)
                if result is not None:
                    batch.append((result[0], ts, result[1]))
            if batch:
                yield batch


def pipeline_processor(query: ast.LogQueryExpr, unwrap: ast.Unwrap | None) -> LineProcessor:
    """The real log pipeline as a line processor: ``process`` gives ``(line, labels)`` and
    ``extract_sample`` gives ``(value, labels)``; the source wants ``(labels, value)``, the value
    being the line's byte length when nothing is unwrapped."""
    log_pipeline = pipeline.Pipeline.from_ast(query.stages, unwrap)

    def process(
        ts: int, line: str, labels: samples.Labels, metadata: samples.Labels
    ) -> tuple[samples.Labels, float] | None:
        if unwrap is not None:
            sample = log_pipeline.extract_sample(ts, line, labels, metadata)
            return None if sample is None else (sample[1], float(sample[0]))
        out = log_pipeline.process(ts, line, labels, metadata)
        if out is None:
            return None
        new_line, new_labels = out
        return new_labels, float(len(new_line.encode("utf-8", "surrogateescape")))

    return process
