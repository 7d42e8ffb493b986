"""A log pipeline built from the AST, run per entry, per decoded block, or for samples.

Building (:meth:`Pipeline.from_ast`) turns stages into callables once per query. Line filters
that see the original line (no ``line_format``, ``decolorize`` or ``unpack`` before them) are
hoisted to the front: a filter is a pure function of the line, and the conjunction of stages
means their order does not change which entries survive. Hoisted filters are what
:meth:`Pipeline.process_block` turns into the bulk pre-filter of a decoded block.

Entries that no stage can relabel skip the label builder entirely and get the stream's own
label tuple (plus their structured metadata, cached per distinct metadata), so a query of line
filters costs a filter call per candidate line and nothing else.

For metric queries, :meth:`Pipeline.extract_sample` follows Loki's ``unwrap`` extraction: an
entry without the label (or with an empty value) yields no sample, a value that does not convert
sets ``__error__=SampleExtractionErr``, label filters after ``unwrap`` then run, and the
unwrapped label is removed from the sample's labels (unless the entry carries an error).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Sequence
from typing import Any, Final

from lokistack.chunk import block as chunk_block
from lokistack.logql.log import filters, formatters, label_filters, parsers
from lokistack.logql.log import labels as log_labels
from lokistack.logql.syntax import ast, units

Labels = log_labels.Labels
Result = tuple[str, Labels]
"""A processed entry: its (possibly rewritten) line and its labels."""

_LINE_REWRITERS: Final = (ast.LineFormat, ast.Decolorize, ast.UnpackParser)
_METADATA_CACHE_LIMIT: Final = 1024


class PipelineError(ValueError):
    """A pipeline that cannot be built (a bad template); the query fails with 400."""


def _conversion(kind: ast.UnwrapConversion) -> Callable[[str], float]:
    if kind is ast.UnwrapConversion.BYTES:
        return lambda text: float(units.parse_bytes(text))
    if kind in (ast.UnwrapConversion.DURATION, ast.UnwrapConversion.DURATION_SECONDS):
        return lambda text: units.parse_go_duration(text) / 1e9
    return units.parse_go_float


def _line_filter_stage(stage: ast.LineFilter) -> parsers.Stage:
    """A line filter after a line rewrite: it runs in place, on the rewritten line."""
    test = filters.compile_line_filter(stage)
    if test is None:
        return lambda _ts, line, _builder: line
    return lambda _ts, line, _builder: line if test(line) else None


_BUILDERS: Final[dict[type, Callable[[Any], parsers.Stage]]] = {
    ast.LabelFilterStage: label_filters.LabelFilterStage,
    ast.LineFormat: formatters.LineFormat,
    ast.LabelFormat: formatters.LabelFormat,
    ast.DropLabels: formatters.DropLabels,
    ast.KeepLabels: formatters.KeepLabels,
    ast.Decolorize: lambda _stage: formatters.decolorize,
    ast.LineFilter: _line_filter_stage,
}


def _build_stage(stage: ast.Stage) -> parsers.Stage:
    parser = parsers.build(stage)
    if parser is not None:
        return parser
    builder = _BUILDERS.get(type(stage))
    if builder is None:
        raise PipelineError(f"unsupported pipeline stage {type(stage).__name__}")
    return builder(stage)


class Pipeline:
    """The stages of one log query (and its ``unwrap``), ready to run over entries."""

    __slots__ = (
        "_conversion",
        "_line_tests",
        "_post_filters",
        "_prefilter",
        "_residual_tests",
        "_stages",
        "_streams",
        "_unwrap",
    )

    def __init__(
        self,
        line_tests: Sequence[filters.LineTest],
        bulk: Sequence[tuple[filters.BulkTerm | None, filters.LineTest]],
        stages: Sequence[parsers.Stage],
        unwrap: ast.Unwrap | None = None,
    ) -> None:
        self._line_tests = tuple(line_tests)
        self._prefilter = filters.BlockPrefilter([term for term, _ in bulk if term is not None])
        # Tests the bulk pass does not answer exactly still run on each candidate.
        self._residual_tests = tuple(test for term, test in bulk if term is None or not term.exact)
        self._stages = tuple(stages)
        self._unwrap = unwrap
        self._conversion = _conversion(unwrap.conversion) if unwrap else None
        self._post_filters = tuple(
            label_filters.compile_label_filter(node)
            for node in (unwrap.post_filters if unwrap else ())
        )
        self._streams: dict[Labels, StreamPipeline] = {}

    @classmethod
    def from_ast(cls, stages: Sequence[ast.Stage], unwrap: ast.Unwrap | None = None) -> Pipeline:
        """Build the pipeline; raises :class:`PipelineError` for a template that does not parse."""
        hoisted: list[tuple[filters.BulkTerm | None, filters.LineTest]] = []
        rest: list[parsers.Stage] = []
        rewritten = False
        try:
            for stage in stages:
                if isinstance(stage, ast.LineFilter) and not rewritten:
                    test = filters.compile_line_filter(stage)
                    if test is not None:
                        hoisted.append((filters.bulk_term(stage), test))
                    continue
                rewritten = rewritten or isinstance(stage, _LINE_REWRITERS)
                rest.append(_build_stage(stage))
        except formatters.FormatError as error:
            raise PipelineError(str(error)) from None
        return cls([test for _, test in hoisted], hoisted, rest, unwrap)

    @property
    def is_noop(self) -> bool:
        """No stage at all: every entry passes unchanged."""
        return not self._line_tests and not self._stages

    @property
    def has_line_filters_only(self) -> bool:
        """Only line filters: labels are the stream's (plus metadata) and lines are unchanged."""
        return not self._stages

    def for_stream(self, stream_labels: Labels) -> StreamPipeline:
        """The pipeline bound to one stream (cached: per-stream work happens once)."""
        stream = self._streams.get(stream_labels)
        if stream is None:
            stream = self._streams[stream_labels] = StreamPipeline(self, stream_labels)
        return stream

    def process(
        self, ts: int, line: str, stream_labels: Labels, metadata: chunk_block.Metadata = ()
    ) -> Result | None:
        """Run every stage over one entry: ``(line, labels)``, or ``None`` if it is dropped."""
        return self.for_stream(stream_labels).process(ts, line, metadata)

    def process_block(
        self,
        decoded: chunk_block.DecodedBlock,
        stream_labels: Labels,
        indexes: range | None = None,
    ) -> list[tuple[int, str, Labels]]:
        """``(ts, line, labels)`` of the entries of ``decoded`` (within ``indexes``) that pass,
        in index order; literal filters run once over the whole block."""
        return self.for_stream(stream_labels).process_block(decoded, indexes)

    def extract_sample(
        self, ts: int, line: str, stream_labels: Labels, metadata: chunk_block.Metadata = ()
    ) -> tuple[float, Labels] | None:
        """The unwrapped sample of one entry and its labels, or ``None`` when there is none."""
        return self.for_stream(stream_labels).extract_sample(ts, line, metadata)


class StreamPipeline:
    """A :class:`Pipeline` for the entries of one stream."""

    __slots__ = ("_base", "_labels", "_metadata_labels", "_pipeline")

    def __init__(self, pipeline: Pipeline, stream_labels: Labels) -> None:
        self._pipeline = pipeline
        self._labels = stream_labels
        self._base = dict(stream_labels)
        self._metadata_labels: dict[chunk_block.Metadata, Labels] = {}

    def _plain_labels(self, metadata: chunk_block.Metadata) -> Labels:
        if not metadata:
            return self._labels
        cache = self._metadata_labels
        found = cache.get(metadata)
        if found is None:
            found = log_labels.with_metadata(self._base, metadata)
            if len(cache) < _METADATA_CACHE_LIMIT:
                cache[metadata] = found
        return found

    def _run(
        self, ts: int, line: str, metadata: chunk_block.Metadata
    ) -> tuple[str, log_labels.LabelsBuilder] | None:
        builder = log_labels.LabelsBuilder(self._base, metadata)
        current: str | None = line
        for stage in self._pipeline._stages:
            current = stage(ts, line, builder)
            if current is None:
                return None
            line = current
        return line, builder

    def process(self, ts: int, line: str, metadata: chunk_block.Metadata = ()) -> Result | None:
        for test in self._pipeline._line_tests:
            if not test(line):
                return None
        return self._after_filters(ts, line, metadata)

    def _after_filters(self, ts: int, line: str, metadata: chunk_block.Metadata) -> Result | None:
        if not self._pipeline._stages:
            return line, self._plain_labels(metadata)
        ran = self._run(ts, line, metadata)
        if ran is None:
            return None
        return ran[0], ran[1].labels()

    def block_line_sizes(
        self, decoded: chunk_block.DecodedBlock, indexes: range
    ) -> list[tuple[Labels, int, float]] | None:
        """``(labels, ts, size in bytes)`` of the entries in ``indexes`` that pass, read from the
        block's line offsets without decoding a line, in index order; ``None`` when the pipeline
        needs the lines (a stage, or a filter the literal scan does not answer exactly) or the
        labels vary per entry (structured metadata).

        This is what ``count_over_time``, ``rate`` and the bytes functions of a selector with
        only literal filters need, and it costs a tuple per entry instead of a string.
        """
        pipeline = self._pipeline
        if pipeline._stages or pipeline._residual_tests or decoded.has_metadata:
            return None
        selected = pipeline._prefilter.candidates(decoded, indexes)
        offsets = decoded.line_offsets
        timestamps: Sequence[int] | map[int]
        if isinstance(selected, range) and selected.step == 1:
            start, stop = selected.start, selected.stop
            timestamps = decoded.timestamps[start:stop]
            sizes = map(operator.sub, offsets[start + 1 : stop + 1], offsets[start:stop])
        else:
            timestamps = map(decoded.timestamps.__getitem__, selected)
            sizes = map(
                operator.sub,
                map(offsets.__getitem__, [i + 1 for i in selected]),
                map(offsets.__getitem__, selected),
            )
        return list(zip(itertools.repeat(self._labels), timestamps, map(float, sizes)))

    def process_block(
        self, decoded: chunk_block.DecodedBlock, indexes: range | None = None
    ) -> list[tuple[int, str, Labels]]:
        pipeline = self._pipeline
        if indexes is None:
            indexes = range(len(decoded))
        results: list[tuple[int, str, Labels]] = []
        if not pipeline._line_tests and not pipeline._stages and not decoded.has_metadata:
            labels = self._labels
            return [(ts, line, labels) for ts, line, _ in decoded.iter_indexes(indexes)]
        candidates = pipeline._prefilter.candidates(decoded, indexes)
        tests = pipeline._residual_tests
        timestamps = decoded.timestamps
        for index in candidates:
            line = decoded.line(index)
            if tests and not all(test(line) for test in tests):
                continue
            ts = timestamps[index]
            result = self._after_filters(ts, line, decoded.metadata(index))
            if result is not None:
                results.append((ts, result[0], result[1]))
        return results

    def extract_sample(
        self, ts: int, line: str, metadata: chunk_block.Metadata = ()
    ) -> tuple[float, Labels] | None:
        pipeline = self._pipeline
        unwrap, convert = pipeline._unwrap, pipeline._conversion
        if unwrap is None or convert is None:
            raise ValueError("extract_sample needs a pipeline built with an unwrap")
        for test in pipeline._line_tests:
            if not test(line):
                return None
        ran = self._run(ts, line, metadata)
        if ran is None:
            return None
        builder = ran[1]
        text = builder.get(unwrap.label)
        if not text:
            return None
        value = 0.0
        try:
            value = convert(text)
        except ValueError as error:
            builder.set_error(log_labels.SAMPLE_EXTRACTION_ERR, str(error))
        for predicate in pipeline._post_filters:
            if not predicate(builder):
                return None
        if not builder.err:
            builder.delete(unwrap.label)
        return value, builder.labels()
