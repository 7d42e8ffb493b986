"""LogQL's few functions: ``label_replace``, ``vector()`` and the labels of ``absent_over_time``.

LogQL has no other functions (no ``scalar()``, ``time()``, ``abs()``): Loki's grammar stops here.

``label_replace`` matches the whole source value with RE2 (the regex is anchored as Loki
anchors it), expands ``$1``, ``${1}``, ``$name``, ``${name}`` and ``$$`` as Go's
``Regexp.ExpandString`` does, and sets the destination label (an empty result deletes it).
A non-matching series passes unchanged. Two series ending with one label set would be
ambiguous, so that is an error, with Prometheus' text.

``absent_over_time`` reports a series Loki builds from the selector's equality matchers (the
Prometheus rule for ``absent``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from lokistack.logql.engine import errors, samples
from lokistack.logql.engine.vector_agg import StepVector
from lokistack.logql.syntax import ast, checks
from lokistack.model import labels as model_labels

_TEMPLATE_REF: Final = re.compile(r"\$(?:\$|\{([^}]*)\}|([A-Za-z0-9_]+))|\$")
"""``$$``, ``${name}``, ``$name`` (longest run of word characters), or a lone ``$``."""


def expand(template: str, match: Any, group_index: dict[str, int]) -> str:
    """Go ``Regexp.ExpandString``: unknown or out-of-range references expand to nothing."""

    def replace(ref: re.Match[str]) -> str:
        text = ref.group(0)
        if text == "$$":
            return "$"
        name = ref.group(1) if ref.group(1) is not None else ref.group(2)
        if name is None:  # a `$` that starts no valid reference is kept
            return "$"
        if ref.group(1) is not None and not re.fullmatch(r"[A-Za-z0-9_]+", name):
            return text  # `${` without a valid name: Go copies the text
        if name.isdigit():
            index = int(name)
        elif name in group_index:
            index = group_index[name]
        else:
            return ""
        if index > match.re.groups:
            return ""
        value = match.group(index)
        return value if isinstance(value, str) else ""

    return _TEMPLATE_REF.sub(replace, template)


def label_replacer(node: ast.LabelReplace) -> Callable[[StepVector], StepVector]:
    """A step function applying ``node``; the regex is compiled once, results cached by labels."""
    regex = checks.compile_anchored(node.regex)
    group_index: dict[str, int] = dict(regex.groupindex)
    cache: dict[samples.Labels, samples.Labels] = {}

    def relabel(labels: samples.Labels) -> samples.Labels:
        match = regex.search(model_labels.get(labels, node.src))
        if match is None:
            return labels
        value = expand(node.replacement, match, group_index)
        return model_labels.with_label(labels, node.dst, value)

    def apply(vector: StepVector) -> StepVector:
        out: StepVector = {}
        for labels, value in vector.items():
            new = cache.get(labels)
            if new is None:
                new = cache[labels] = relabel(labels)
            if new in out:
                raise errors.EvaluationError("vector cannot contain metrics with the same labelset")
            out[new] = value
        return out

    return apply


def vector_literal(node: ast.VectorLiteral) -> StepVector:
    """``vector(s)``: one sample without labels at every step."""
    return {samples.EMPTY_LABELS: node.value}


def absent_labels(query: ast.LogQueryExpr) -> samples.Labels:
    """The label set ``absent_over_time`` reports, built from the selector's matchers in order.

    An equality matcher sets its name unless an earlier equality matcher already did; any
    other matcher (or a second equality) removes the name, whose value is then unknown.
    """
    built: dict[str, str] = {}
    set_names: set[str] = set()
    for matcher in query.matchers:
        if matcher.op is ast.MatchOp.EQ and matcher.name not in set_names:
            built[matcher.name] = matcher.value
            set_names.add(matcher.name)
        else:
            built.pop(matcher.name, None)
    return model_labels.normalize(list(built.items()))
