"""AST to canonical LogQL text, in the shape of Loki's ``String()`` methods.

The query frontend splits a query and sends the parts to queriers as text, and results are
cached under the query text, so printing must be a fixed point: ``parse_expr(format(ast))``
equals ``ast``. The output follows Loki's layout (binary operations fully parenthesised, label
filter combinations as ``( a , b )``, ``sum by (a)(…)``) and departs from it only where Loki's
output does not parse back to the same query: byte sizes print exactly (``1536B``, not
``1.5 kB``), ``vector()`` keeps every digit, ``ignoring ()`` is kept before ``group_left``.
Strings are quoted with Go's ``strconv.Quote``.

One AST has no text: ``drop x`` (or ``keep x``) followed by a ``!=`` or ``!~`` line filter, which
Loki's grammar, and this parser, read as the matcher ``x != "…"``.
"""

from __future__ import annotations

from lokistack.logql.syntax import ast, units
from lokistack.model import goquote


def format(expr: ast.Expr) -> str:
    """The canonical text of a log or metric query."""
    if isinstance(expr, ast.LogQueryExpr):
        return _log_query(expr)
    return _sample(expr)


def _number(value: float, text: str) -> str:
    """A number as printed by Go, except ``-0``: the lexer would read it as a duration."""
    return "0" if value == 0 else text


def _quote(value: str) -> str:
    return goquote.go_quote(value)


def _matcher(matcher: ast.Matcher) -> str:
    return f"{matcher.name}{matcher.op.value}{_quote(matcher.value)}"


def format_selector(selector: ast.StreamSelector) -> str:
    """``{a="b", c=~"d"}``."""
    return "{" + ", ".join(_matcher(m) for m in selector.matchers) + "}"


def _log_query(query: ast.LogQueryExpr) -> str:
    text = format_selector(query.selector)
    if query.stages:
        text += " " + " ".join(_stage(stage) for stage in query.stages)
    return text


def _term(term: ast.LineFilterTerm) -> str:
    return f"ip({_quote(term.value)})" if term.ip else _quote(term.value)


def _extractions(params: tuple[ast.LabelExtraction, ...]) -> str:
    return ",".join(f"{p.name}={_quote(p.expression)}" for p in params)


def _named(items: tuple[ast.NamedLabelMatcher, ...]) -> str:
    return ",".join(_matcher(i.matcher) if i.matcher is not None else i.name for i in items)


def _stage(stage: ast.Stage) -> str:  # noqa: PLR0911 - one branch per stage type
    if isinstance(stage, ast.LineFilter):
        return f"{stage.op.value} " + " or ".join(_term(t) for t in stage.terms)
    if isinstance(stage, ast.JSONParser):
        return "| json " + _extractions(stage.params) if stage.params else "| json"
    if isinstance(stage, ast.LogfmtParser):
        parts = ["| logfmt"]
        parts += ["--strict"] if stage.strict else []
        parts += ["--keep-empty"] if stage.keep_empty else []
        parts += [_extractions(stage.params)] if stage.params else []
        return " ".join(parts)
    if isinstance(stage, ast.RegexpParser):
        return f"| regexp {_quote(stage.pattern)}"
    if isinstance(stage, ast.PatternParser):
        return f"| pattern {_quote(stage.pattern)}"
    if isinstance(stage, ast.UnpackParser):
        return "| unpack"
    if isinstance(stage, ast.LabelFilterStage):
        return f"| {format_label_filter(stage.filter)}"
    if isinstance(stage, ast.LineFormat):
        return f"| line_format {_quote(stage.template)}"
    if isinstance(stage, ast.LabelFormat):
        items = (f"{f.name}={f.value if f.rename else _quote(f.value)}" for f in stage.formats)
        return "| label_format " + ",".join(items)
    if isinstance(stage, ast.DropLabels):
        return "| drop " + _named(stage.labels)
    if isinstance(stage, ast.KeepLabels):
        return "| keep " + _named(stage.labels)
    return "| decolorize"


def format_label_filter(node: ast.LabelFilter) -> str:
    """A label filter expression, combinations parenthesised as Loki prints them."""
    if isinstance(node, ast.StringLabelFilter):
        return _matcher(node.matcher)
    if isinstance(node, ast.NumericLabelFilter):
        value = _number(node.value, units.format_go_float_fixed(node.value))
        return f"{node.name}{node.op.value}{value}"
    if isinstance(node, ast.DurationLabelFilter):
        return f"{node.name}{node.op.value}{units.format_go_duration(node.value)}"
    if isinstance(node, ast.BytesLabelFilter):
        return f"{node.name}{node.op.value}{units.format_bytes(node.value)}"
    if isinstance(node, ast.IPLabelFilter):
        op = "=" if node.op is ast.CompareOp.EQ else "!="
        return f"{node.name}{op}ip({_quote(node.pattern)})"
    joiner = " , " if isinstance(node, ast.AndLabelFilter) else " or "
    return f"( {format_label_filter(node.left)}{joiner}{format_label_filter(node.right)} )"


def _unwrap(unwrap: ast.Unwrap) -> str:
    if unwrap.conversion is ast.UnwrapConversion.FLOAT:
        text = f" | unwrap {unwrap.label}"
    else:
        text = f" | unwrap {unwrap.conversion.value}({unwrap.label})"
    return text + "".join(f" | {format_label_filter(f)}" for f in unwrap.post_filters)


def _grouping(grouping: ast.Grouping) -> str:
    return f" {'without' if grouping.without else 'by'} ({','.join(grouping.labels)})"


def _range_aggregation(node: ast.RangeAggregation) -> str:
    text = node.op.value + "("
    if node.param is not None:
        text += units.format_go_float_fixed(node.param) + ","
    text += _log_query(node.query)
    if node.unwrap is not None:
        text += _unwrap(node.unwrap)
    text += f"[{units.format_prometheus_duration(node.range_ns)}]"
    if node.offset_ns:
        text += f" offset {units.format_go_duration(node.offset_ns)}"
    text += ")"
    if node.grouping is not None:
        text += _grouping(node.grouping)
    return text


def _vector_matching(matching: ast.VectorMatching) -> str:
    if matching == ast.VectorMatching():
        return ""
    text = f" {'on' if matching.on else 'ignoring'} ({','.join(matching.labels)})"
    if matching.card is not ast.Cardinality.ONE_TO_ONE:
        # Always with parentheses: a bare `group_left` before a parenthesised operand would
        # read that operand as the include list.
        group = "group_left" if matching.card is ast.Cardinality.MANY_TO_ONE else "group_right"
        text += f" {group} ({','.join(matching.include)})"
    return text


def _sample(node: ast.SampleExpr) -> str:
    if isinstance(node, ast.RangeAggregation):
        return _range_aggregation(node)
    if isinstance(node, ast.VectorAggregation):
        text = node.op.value
        if node.grouping != ast.Grouping():
            text += _grouping(node.grouping)
        params = "" if node.param is None else f"{node.param},"
        return f"{text}({params}{_sample(node.inner)})"
    if isinstance(node, ast.BinaryOp):
        op = node.op.value + (" bool" if node.bool_modifier else "")
        op += _vector_matching(node.matching)
        return f"({_sample(node.lhs)} {op} {_sample(node.rhs)})"
    if isinstance(node, ast.LabelReplace):
        args = (node.dst, node.replacement, node.src, node.regex)
        return f"label_replace({_sample(node.inner)},{','.join(map(_quote, args))})"
    if isinstance(node, ast.VectorLiteral):
        return f"vector({units.format_go_float_fixed(node.value)})"
    return _number(node.value, units.format_go_float(node.value))
