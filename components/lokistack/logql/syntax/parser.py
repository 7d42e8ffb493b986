"""Entry points of the LogQL parser and Loki's post-parse validation.

``parse_expr`` is Loki's ``ParseExpr``: it parses, then validates as ``validateExpr`` does,
raising the first error of the walk, and requires every stream selector to have a matcher that
cannot match the empty string (:func:`validate_selector`, whose message the query API returns
with status 400). ``/series`` accepts ``{}``, so :func:`parse_log_selector` can skip that rule.
"""

from __future__ import annotations

from lokistack.logql.syntax import ast, cursor, errors, parser_metric


def _decode(text: str | bytes) -> str:
    """Query text as ``str``; bytes that are not UTF-8 become surrogate escapes (a lex error)."""
    if isinstance(text, bytes):
        return text.decode("utf-8", "surrogateescape")
    return text


def _parse(text: str | bytes) -> tuple[ast.Expr, parser_metric.Parser]:
    """Parse without validation (Loki's ``ParseExprWithoutValidation``)."""
    source = _decode(text)
    size = len(source.encode("utf-8", "surrogateescape"))
    if size >= errors.MAX_INPUT_SIZE:
        raise errors.ParseError(f"input size too long ({size} > {errors.MAX_INPUT_SIZE})")
    cur = cursor.Cursor(source)
    parser = parser_metric.Parser(cur)
    expr = parser.expr()
    if not cur.at(cursor.Kind.EOF):
        raise cur.error()
    return expr, parser


def validate_selector(selector: ast.StreamSelector | ast.LogQueryExpr) -> None:
    """Refuse a selector whose every matcher matches ``""`` (it would select all streams)."""
    matchers = selector.matchers
    if not any(not matcher.matches("") for matcher in matchers):
        raise errors.ParseError(errors.ERR_EMPTY_COMPATIBLE_SELECTOR)


def _validate_sample(expr: ast.SampleExpr, deferred: dict[int, errors.ParseError]) -> None:
    """Loki's ``validateSampleExpr``: a node's own error, then its children, left to right."""
    own = deferred.get(id(expr))
    if own is not None:
        raise own
    if isinstance(expr, ast.BinaryOp):
        _validate_sample(expr.lhs, deferred)
        _validate_sample(expr.rhs, deferred)
    elif isinstance(expr, ast.VectorAggregation):
        if expr.op in (ast.VectorOp.SORT, ast.VectorOp.SORT_DESC) and expr.grouping.labels:
            raise errors.ParseError("sort and sort_desc doesn't allow grouping by ")
        _validate_sample(expr.inner, deferred)
    elif isinstance(expr, ast.LabelReplace):
        _validate_sample(expr.inner, deferred)
    elif isinstance(expr, ast.RangeAggregation):
        validate_selector(expr.query)


def _validate(expr: ast.Expr, deferred: dict[int, errors.ParseError]) -> None:
    if isinstance(expr, ast.LogQueryExpr):
        validate_selector(expr)
    else:
        _validate_sample(expr, deferred)


def parse_expr(text: str | bytes) -> ast.Expr:
    """Parse and validate a log or metric query; raises :class:`errors.ParseError`."""
    expr, parser = _parse(text)
    _validate(expr, parser.deferred)
    return expr


def parse_sample_expr(text: str | bytes) -> ast.SampleExpr:
    """Parse and validate a metric query (rules, instant queries that must yield samples)."""
    expr = parse_expr(text)
    if isinstance(expr, ast.LogQueryExpr):
        raise errors.ParseError("only sample expression supported")
    return expr


def parse_log_selector(text: str | bytes, *, validate: bool = True) -> ast.LogQueryExpr:
    """Parse a log query (``/tail``, ``/series``); ``validate=False`` allows ``{}``."""
    expr, parser = _parse(text)
    if not isinstance(expr, ast.LogQueryExpr):
        raise errors.ParseError("only log selector is supported")
    if validate:
        _validate(expr, parser.deferred)
    return expr
