"""LogQL query results and their JSON shapes: ``vector``, ``matrix``, ``scalar``, ``streams``.

Label sets are :data:`lokistack.model.labels.Labels`: ``(name, value)`` pairs sorted by name. A
tuple is its own hashable key, so grouping and matching use label sets directly as dict keys, and
Python's tuple ordering equals Prometheus' ``labels.Compare``, which is the order Loki sorts
series in. Times are integer nanoseconds; the JSON helpers convert to Loki's wire forms
(seconds with millisecond decimals for metric results, nanosecond strings for log lines) so the
query API can write ``data.result`` without knowing how results are built.
"""

from __future__ import annotations

import dataclasses
import decimal
import math
from typing import Any, ClassVar, Literal

from lokistack.model import labels as model_labels

Labels = model_labels.Labels

EMPTY_LABELS: Labels = ()

ResultType = Literal["vector", "matrix", "scalar", "streams"]


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    """One point of a series: the step time it was evaluated at and its value."""

    ts_ns: int
    value: float


@dataclasses.dataclass(slots=True)
class Series:
    """A labelled series of points in time order (one ``matrix`` element)."""

    labels: Labels
    points: list[Sample]


@dataclasses.dataclass(frozen=True, slots=True)
class Scalar:
    """The result of a query that is a number (``1 + 1``) evaluated instantly."""

    ts_ns: int
    value: float

    result_type: ClassVar[ResultType] = "scalar"

    def to_json(self) -> list[Any]:
        """``[<sec>, "<value>"]``."""
        return [json_time(self.ts_ns), format_value(self.value)]


@dataclasses.dataclass(slots=True)
class Vector:
    """An instant query's result: one value per label set, all at ``ts_ns``.

    The order is by labels unless the query ends in ``sort``/``sort_desc``; the evaluator
    decides, this type keeps whatever order it is given.
    """

    ts_ns: int
    samples: list[tuple[Labels, float]]

    result_type: ClassVar[ResultType] = "vector"

    def to_json(self) -> list[dict[str, Any]]:
        """``[{"metric": {...}, "value": [<sec>, "<value>"]}, ...]``."""
        ts = json_time(self.ts_ns)
        return [
            {"metric": dict(labels), "value": [ts, format_value(value)]}
            for labels, value in self.samples
        ]


@dataclasses.dataclass(slots=True)
class Matrix:
    """A range query's result: series sorted by labels, each with points in time order."""

    series: list[Series]

    result_type: ClassVar[ResultType] = "matrix"

    def to_json(self) -> list[dict[str, Any]]:
        """``[{"metric": {...}, "values": [[<sec>, "<value>"], ...]}, ...]``."""
        return [
            {
                "metric": dict(series.labels),
                "values": [[json_time(p.ts_ns), format_value(p.value)] for p in series.points],
            }
            for series in self.series
        ]


@dataclasses.dataclass(slots=True)
class Stream:
    """Log lines of one label set (stream labels, metadata and parsed labels together)."""

    labels: Labels
    entries: list[tuple[int, str]]


@dataclasses.dataclass(slots=True)
class Streams:
    """A log query's result: streams sorted by their label string, entries in query direction."""

    streams: list[Stream]

    result_type: ClassVar[ResultType] = "streams"

    def to_json(self) -> list[dict[str, Any]]:
        """``[{"stream": {...}, "values": [["<ns>", "<line>"], ...]}, ...]``."""
        return [
            {"stream": dict(s.labels), "values": [[str(ts), line] for ts, line in s.entries]}
            for s in self.streams
        ]


Result = Scalar | Vector | Matrix | Streams


def json_time(ts_ns: int) -> int | float:
    """Prometheus ``model.Time`` in JSON: seconds with at most millisecond decimals.

    Loki truncates the step time to milliseconds; a whole second is written without decimals,
    as Go's ``FormatFloat(…, 'f', -1, 64)`` does, hence an ``int``.
    """
    ms = ts_ns // 1_000_000
    if ms % 1000 == 0:
        return ms // 1000
    return ms / 1000


def format_value(value: float) -> str:
    """A sample value as Go's ``strconv.FormatFloat(v, 'f', -1, 64)``: shortest, no exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format(decimal.Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def sort_key(labels: Labels) -> Labels:
    """Loki's series order (Prometheus ``labels.Compare``), which tuple comparison already is."""
    return labels
