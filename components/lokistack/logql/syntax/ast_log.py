"""AST of log queries: the stream selector and the pipeline stages that follow it.

Nodes are frozen dataclasses holding what the query says (strings, numbers, enums), so that
ASTs compare and hash by value: the printer round-trip tests, the frontend's cache keys and
query splitting all rely on that. Derived forms (compiled regexes, parsed patterns) are computed
on demand and cached, never stored as fields.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from typing import Any

from lokistack.logql.syntax import checks


class MatchOp(enum.Enum):
    """A label matcher's operator; the value is its LogQL spelling."""

    EQ = "="
    NEQ = "!="
    RE = "=~"
    NRE = "!~"


@dataclasses.dataclass(frozen=True)
class Matcher:
    """``name op "value"``; regex operators match the whole value (RE2, anchored)."""

    name: str
    op: MatchOp
    value: str

    @functools.cached_property
    def regex(self) -> Any:
        """The anchored RE2 program of a regex matcher (``ValueError`` if the regex is bad)."""
        return checks.compile_anchored(self.value)

    def matches(self, value: str) -> bool:
        """Whether a label value satisfies this matcher (absent labels are ``""``)."""
        if self.op is MatchOp.EQ:
            return value == self.value
        if self.op is MatchOp.NEQ:
            return value != self.value
        matched = self.regex.search(value) is not None
        return matched if self.op is MatchOp.RE else not matched


@dataclasses.dataclass(frozen=True)
class StreamSelector:
    """``{a="b", c=~"d"}``; may be empty (``{}``) only where validation is skipped."""

    matchers: tuple[Matcher, ...]


class LineFilterOp(enum.Enum):
    """A line filter's operator; the value is its LogQL spelling."""

    CONTAINS = "|="
    NOT_CONTAINS = "!="
    MATCH = "|~"
    NOT_MATCH = "!~"
    PATTERN = "|>"
    NOT_PATTERN = "!>"

    @property
    def negated(self) -> bool:
        """Negative filters keep lines matching none of their ``or`` alternatives."""
        return self in (LineFilterOp.NOT_CONTAINS, LineFilterOp.NOT_MATCH, LineFilterOp.NOT_PATTERN)


@dataclasses.dataclass(frozen=True)
class LineFilterTerm:
    """One alternative of a line filter: a string, or ``ip("…")`` when ``ip`` is set."""

    value: str
    ip: bool = False


@dataclasses.dataclass(frozen=True)
class LineFilter:
    """``|= "a" or "b"``: positive operators keep a line matching any term, negative ones a line
    matching none (Loki turns ``!= "a" or "b"`` into an AND of negations)."""

    op: LineFilterOp
    value: str
    ip: bool = False
    or_values: tuple[LineFilterTerm, ...] = ()

    @property
    def terms(self) -> tuple[LineFilterTerm, ...]:
        """All alternatives, the first one included."""
        return (LineFilterTerm(self.value, self.ip), *self.or_values)


@dataclasses.dataclass(frozen=True)
class LabelExtraction:
    """``name="path"`` of ``| json``/``| logfmt`` parameters (``| json a`` means ``a="a"``)."""

    name: str
    expression: str

    @functools.cached_property
    def json_path(self) -> checks.JSONPath:
        """The JSON path steps: field names and keys as ``str``, array indexes as ``int``."""
        return checks.parse_json_path(self.expression)


@dataclasses.dataclass(frozen=True)
class JSONParser:
    """``| json`` (every field, flattened with ``_``) or ``| json a="x.y", b="list[0]"``."""

    params: tuple[LabelExtraction, ...] = ()


@dataclasses.dataclass(frozen=True)
class LogfmtParser:
    """``| logfmt [--strict] [--keep-empty] [a, b="c"]``."""

    strict: bool = False
    keep_empty: bool = False
    params: tuple[LabelExtraction, ...] = ()


@dataclasses.dataclass(frozen=True)
class RegexpParser:
    """``| regexp "<re>"``: named groups become labels (checked at parse time)."""

    pattern: str

    @functools.cached_property
    def regex(self) -> Any:
        """The unanchored RE2 program."""
        return checks.compile_regex(self.pattern)


@dataclasses.dataclass(frozen=True)
class PatternParser:
    """``| pattern "<ip> - <_> <status>"``, anchored at the line start."""

    pattern: str

    @functools.cached_property
    def nodes(self) -> list[checks.PatternNode]:
        """Literals and captures in order."""
        return checks.parse_pattern(self.pattern)


@dataclasses.dataclass(frozen=True)
class UnpackParser:
    """``| unpack``: JSON parser that also replaces the line with the ``_entry`` field."""


class CompareOp(enum.Enum):
    """Comparison of a numeric, duration or bytes label filter; the value is Loki's spelling."""

    EQ = "=="
    NEQ = "!="
    GT = ">"
    GTE = ">="
    LT = "<"
    LTE = "<="


@dataclasses.dataclass(frozen=True)
class StringLabelFilter:
    """``| name op "value"``: the one filter that can test ``__error__``."""

    matcher: Matcher


@dataclasses.dataclass(frozen=True)
class NumericLabelFilter:
    """``| name > 5.2``: the label value is parsed as a float."""

    name: str
    op: CompareOp
    value: float


@dataclasses.dataclass(frozen=True)
class DurationLabelFilter:
    """``| took > 1s``: the label value is parsed as a Go duration; ``value`` in nanoseconds."""

    name: str
    op: CompareOp
    value: int


@dataclasses.dataclass(frozen=True)
class BytesLabelFilter:
    """``| size > 20MB``: the label value is parsed as a humanized byte size."""

    name: str
    op: CompareOp
    value: int


@dataclasses.dataclass(frozen=True)
class IPLabelFilter:
    """``| addr = ip("10.0.0.0/8")`` or ``!= ip(…)``; ``op`` is ``EQ`` or ``NEQ``."""

    name: str
    op: CompareOp
    pattern: str


@dataclasses.dataclass(frozen=True)
class AndLabelFilter:
    """Both sides hold (``and``, ``,`` or juxtaposition)."""

    left: LabelFilter
    right: LabelFilter


@dataclasses.dataclass(frozen=True)
class OrLabelFilter:
    """Either side holds."""

    left: LabelFilter
    right: LabelFilter


LabelFilter = (
    StringLabelFilter
    | NumericLabelFilter
    | DurationLabelFilter
    | BytesLabelFilter
    | IPLabelFilter
    | AndLabelFilter
    | OrLabelFilter
)


@dataclasses.dataclass(frozen=True)
class LabelFilterStage:
    """A ``| <label filter>`` pipeline stage."""

    filter: LabelFilter


@dataclasses.dataclass(frozen=True)
class LineFormat:
    """``| line_format "<Go text/template>"``; the template is kept as text."""

    template: str


@dataclasses.dataclass(frozen=True)
class LabelFmt:
    """One ``label_format`` item: ``dst=src`` (``rename``) or ``dst="<template>"``."""

    name: str
    value: str
    rename: bool


@dataclasses.dataclass(frozen=True)
class LabelFormat:
    """``| label_format a="{{.b}}", c=d``; each destination appears once."""

    formats: tuple[LabelFmt, ...]


@dataclasses.dataclass(frozen=True)
class NamedLabelMatcher:
    """A ``drop``/``keep`` item: a bare label ``name``, or a ``matcher`` on its value."""

    name: str
    matcher: Matcher | None = None


@dataclasses.dataclass(frozen=True)
class DropLabels:
    """``| drop a, b="x"``."""

    labels: tuple[NamedLabelMatcher, ...]


@dataclasses.dataclass(frozen=True)
class KeepLabels:
    """``| keep a, b="x"`` (never removes ``__error__``/``__error_details__``)."""

    labels: tuple[NamedLabelMatcher, ...]


@dataclasses.dataclass(frozen=True)
class Decolorize:
    """``| decolorize``: strip ANSI colour codes from the line."""


Stage = (
    LineFilter
    | JSONParser
    | LogfmtParser
    | RegexpParser
    | PatternParser
    | UnpackParser
    | LabelFilterStage
    | LineFormat
    | LabelFormat
    | DropLabels
    | KeepLabels
    | Decolorize
)


@dataclasses.dataclass(frozen=True)
class LogQueryExpr:
    """A log query: a selector and its pipeline stages, in order (possibly none)."""

    selector: StreamSelector
    stages: tuple[Stage, ...] = ()

    @property
    def matchers(self) -> tuple[Matcher, ...]:
        """The stream selector's matchers."""
        return self.selector.matchers


LogSelectorExpr = LogQueryExpr
"""What ``/tail`` and ``/series`` accept, named as in Loki."""
