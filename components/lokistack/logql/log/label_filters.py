"""Label filter stages: ``| status >= 500``, ``| took > 1s``, ``| addr = ip("…")`` and friends.

The rules are Loki's, and the conformance scripts pin each one:

- a string filter compares an absent label as ``""`` and is the only filter that reads
  ``__error__``;
- a number, duration or bytes filter drops the entry when the label is absent; when the value
  does not convert it keeps the entry and sets ``__error__=LabelFilterErr`` with the conversion
  error as ``__error_details__``, unless the entry already has an error (the first failure owns
  the details);
- ``ip()`` keeps any entry that already has an error, drops one without the label, and looks for
  addresses anywhere in the value;
- ``or`` skips its right side when the left one holds, ``and`` always runs both (so a failing
  conversion on the right still marks the entry).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Final

from lokistack.logql.log import filters
from lokistack.logql.log import labels as log_labels
from lokistack.logql.syntax import ast, units

Predicate = Callable[[log_labels.LabelsBuilder], bool]
"""Whether an entry passes; it may set ``__error__`` on the builder."""

_COMPARE: Final[dict[ast.CompareOp, Callable[[float, float], bool]]] = {
    ast.CompareOp.EQ: operator.eq,
    ast.CompareOp.NEQ: operator.ne,
    ast.CompareOp.GT: operator.gt,
    ast.CompareOp.GTE: operator.ge,
    ast.CompareOp.LT: operator.lt,
    ast.CompareOp.LTE: operator.le,
}


def _string_filter(node: ast.StringLabelFilter) -> Predicate:
    matcher = node.matcher
    name = matcher.name
    if matcher.op is ast.MatchOp.EQ:
        wanted = matcher.value
        return lambda builder: builder.value(name) == wanted
    if matcher.op is ast.MatchOp.NEQ:
        unwanted = matcher.value
        return lambda builder: builder.value(name) != unwanted
    search = matcher.regex.search
    if matcher.op is ast.MatchOp.RE:
        return lambda builder: search(builder.value(name)) is not None
    return lambda builder: search(builder.value(name)) is None


def _converting_filter(
    name: str, op: ast.CompareOp, wanted: float, convert: Callable[[str], float]
) -> Predicate:
    """A number, duration or bytes comparison with Loki's missing-label and error rules."""
    compare = _COMPARE[op]

    def predicate(builder: log_labels.LabelsBuilder) -> bool:
        value = builder.get(name)
        if value is None:
            return False
        try:
            number = convert(value)
        except ValueError as error:
            if not builder.err:
                builder.set_error(log_labels.LABEL_FILTER_ERR, str(error))
            return True
        return compare(number, wanted)

    return predicate


def _ip_filter(node: ast.IPLabelFilter) -> Predicate:
    search = filters.IPMatcher(node.pattern).search
    name = node.name
    negate = node.op is ast.CompareOp.NEQ

    def predicate(builder: log_labels.LabelsBuilder) -> bool:
        if builder.err:
            return True
        value = builder.get(name)
        if value is None:
            return False
        return search(value) != negate

    return predicate


def compile_label_filter(node: ast.LabelFilter) -> Predicate:  # noqa: PLR0911 - per node type
    """The predicate of a label filter expression (a leaf, or ``and``/``or`` of two)."""
    if isinstance(node, ast.StringLabelFilter):
        return _string_filter(node)
    if isinstance(node, ast.NumericLabelFilter):
        return _converting_filter(node.name, node.op, node.value, units.parse_go_float)
    if isinstance(node, ast.DurationLabelFilter):
        return _converting_filter(node.name, node.op, node.value, units.parse_go_duration)
    if isinstance(node, ast.BytesLabelFilter):
        return _converting_filter(node.name, node.op, node.value, units.parse_bytes)
    if isinstance(node, ast.IPLabelFilter):
        return _ip_filter(node)
    left = compile_label_filter(node.left)
    right = compile_label_filter(node.right)
    if isinstance(node, ast.AndLabelFilter):

        def both(builder: log_labels.LabelsBuilder) -> bool:
            first = left(builder)
            return right(builder) and first

        return both

    def either(builder: log_labels.LabelsBuilder) -> bool:
        return left(builder) or right(builder)

    return either


class LabelFilterStage:
    """A ``| <label filter>`` pipeline stage."""

    __slots__ = ("_predicate",)

    def __init__(self, stage: ast.LabelFilterStage) -> None:
        self._predicate = compile_label_filter(stage.filter)

    def __call__(self, _ts: int, line: str, builder: log_labels.LabelsBuilder) -> str | None:
        return line if self._predicate(builder) else None
