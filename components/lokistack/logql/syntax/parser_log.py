"""Parsing of log queries: stream selectors, pipeline stages, label filters and ``unwrap``.

Recursive descent over Loki's grammar (``syntax.y``). Errors inside a log query are raised at
once, as Loki raises them while parsing (bad matcher regexes, ``regexp``/``pattern`` parsers);
Loki reports some of them only when it builds the pipeline (line-filter regexes, IP patterns,
JSON paths, duplicate ``label_format`` names), which this parser does at parse time too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from lokistack.logql.syntax import ast, checks, cursor, errors, units

Kind = cursor.Kind

_MATCH_OPS: Final = {
    Kind.EQ: ast.MatchOp.EQ,
    Kind.NEQ: ast.MatchOp.NEQ,
    Kind.RE: ast.MatchOp.RE,
    Kind.NRE: ast.MatchOp.NRE,
}

LINE_FILTER_OPS: Final = {
    Kind.PIPE_EXACT: ast.LineFilterOp.CONTAINS,
    Kind.NEQ: ast.LineFilterOp.NOT_CONTAINS,
    Kind.PIPE_MATCH: ast.LineFilterOp.MATCH,
    Kind.NRE: ast.LineFilterOp.NOT_MATCH,
    Kind.PIPE_PATTERN: ast.LineFilterOp.PATTERN,
    Kind.NPA: ast.LineFilterOp.NOT_PATTERN,
}

_COMPARE_OPS: Final = {
    Kind.EQ: ast.CompareOp.EQ,
    Kind.CMP_EQ: ast.CompareOp.EQ,
    Kind.NEQ: ast.CompareOp.NEQ,
    Kind.GT: ast.CompareOp.GT,
    Kind.GTE: ast.CompareOp.GTE,
    Kind.LT: ast.CompareOp.LT,
    Kind.LTE: ast.CompareOp.LTE,
}

CONVERSIONS: Final = {
    Kind.BYTES_CONV: ast.UnwrapConversion.BYTES,
    Kind.DURATION_CONV: ast.UnwrapConversion.DURATION,
    Kind.DURATION_SECONDS_CONV: ast.UnwrapConversion.DURATION_SECONDS,
}

_LABEL_FILTER_PRECEDENCE: Final = {Kind.OR: 1, Kind.AND: 2}


def _fail(message: str) -> errors.ParseError:
    """A semantic error: Loki raises these outside the grammar, at position 0:0."""
    return errors.ParseError(message, 0, 0)


def matcher(cur: cursor.Cursor, expecting: tuple[Kind, ...] = (Kind.IDENTIFIER,)) -> ast.Matcher:
    """``name op "value"``; a regex value must compile."""
    name = cur.name(expecting)
    op = _MATCH_OPS.get(cur.kind())
    if op is None:
        raise cur.error(_MATCH_OPS)
    cur.advance()
    return _compiled(ast.Matcher(name, op, cur.string()))


def _compiled(found: ast.Matcher) -> ast.Matcher:
    """``found``, after compiling its regex (Loki's ``mustNewMatcher`` fails on a bad one)."""
    if found.op in (ast.MatchOp.RE, ast.MatchOp.NRE):
        try:
            found.regex  # noqa: B018 - compiles and caches
        except ValueError as exc:
            raise _fail(str(exc)) from None
    return found


def selector(cur: cursor.Cursor) -> ast.StreamSelector:
    """``{}`` or ``{a="b", ...}``."""
    cur.expect(Kind.OPEN_BRACE)
    if cur.accept(Kind.CLOSE_BRACE):
        return ast.StreamSelector(())
    matchers = [matcher(cur, (Kind.IDENTIFIER, Kind.CLOSE_BRACE))]
    while not cur.accept(Kind.CLOSE_BRACE):
        cur.expect(Kind.COMMA, (Kind.CLOSE_BRACE, Kind.COMMA))
        matchers.append(matcher(cur))
    return ast.StreamSelector(tuple(matchers))


def _line_filter_term(cur: cursor.Cursor) -> ast.LineFilterTerm:
    if cur.at(Kind.STRING):
        return ast.LineFilterTerm(cur.string())
    cur.expect(Kind.IP, (Kind.STRING, Kind.IP))
    cur.expect(Kind.OPEN_PARENTHESIS)
    value = cur.string()
    cur.expect(Kind.CLOSE_PARENTHESIS)
    return ast.LineFilterTerm(value, ip=True)


def _check_line_filter_term(op: ast.LineFilterOp, term: ast.LineFilterTerm) -> None:
    try:
        if term.ip:
            if op not in (ast.LineFilterOp.CONTAINS, ast.LineFilterOp.NOT_CONTAINS):
                raise ValueError("ip: invalid operation")
            checks.parse_ip_pattern(term.value)
        elif op in (ast.LineFilterOp.MATCH, ast.LineFilterOp.NOT_MATCH):
            checks.compile_regex(term.value)
        elif op in (ast.LineFilterOp.PATTERN, ast.LineFilterOp.NOT_PATTERN):
            checks.check_pattern_filter(term.value)
    except ValueError as exc:
        raise _fail(str(exc)) from None


def line_filter(cur: cursor.Cursor) -> ast.LineFilter:
    """``|= "a"``, ``!~ "re" or "re2"``, ``|= ip("10.0.0.0/8")``, ``|> "<_> GET"``."""
    op = LINE_FILTER_OPS[cur.advance().kind]
    first = _line_filter_term(cur)
    alternatives = []
    while cur.accept(Kind.OR):
        alternatives.append(_line_filter_term(cur))
    result = ast.LineFilter(op, first.value, first.ip, tuple(alternatives))
    for term in result.terms:
        _check_line_filter_term(op, term)
    return result


def _number(cur: cursor.Cursor) -> float:
    """A label filter's ``literalExpr``: ``NUMBER``, ``+NUMBER`` or ``-NUMBER``."""
    sign = cur.advance().kind if cur.at(Kind.ADD, Kind.SUB) else Kind.ADD
    text = str(cur.expect(Kind.NUMBER).value)
    try:
        value = units.parse_go_float(text)
    except ValueError as exc:
        raise _fail(f"unable to parse literal as a float: {exc}") from None
    return -value if sign is Kind.SUB else value


def _label_predicate(cur: cursor.Cursor, expecting: tuple[Kind, ...]) -> ast.LabelFilter:
    """One comparison: ``name op value``, with the value types each operator allows."""
    if cur.accept(Kind.OPEN_PARENTHESIS):
        inner = label_filter(cur)
        cur.expect(Kind.CLOSE_PARENTHESIS, ())
        return inner
    name = cur.name(expecting)
    op_kind = cur.kind()
    is_string = op_kind in (Kind.EQ, Kind.NEQ) and cur.kind(1) is Kind.STRING
    if is_string or op_kind in (Kind.RE, Kind.NRE):
        cur.advance()
        found = ast.Matcher(name, _MATCH_OPS[op_kind], cur.string())
        return ast.StringLabelFilter(_compiled(found))
    op = _COMPARE_OPS.get(op_kind)
    if op is None:
        raise cur.error()
    cur.advance()
    value = cur.peek()
    if value.kind is Kind.IP and op_kind in (Kind.EQ, Kind.NEQ):
        cur.advance()
        cur.expect(Kind.OPEN_PARENTHESIS)
        pattern = cur.string()
        cur.expect(Kind.CLOSE_PARENTHESIS)
        try:
            checks.parse_ip_pattern(pattern)
        except ValueError as exc:
            raise _fail(str(exc)) from None
        return ast.IPLabelFilter(name, op, pattern)
    if value.kind is Kind.DURATION:
        cur.advance()
        return ast.DurationLabelFilter(name, op, int(value.value))
    if value.kind is Kind.BYTES:
        cur.advance()
        return ast.BytesLabelFilter(name, op, int(value.value))
    if value.kind in (Kind.NUMBER, Kind.ADD, Kind.SUB):
        return ast.NumericLabelFilter(name, op, _number(cur))
    raise cur.error()


def _label_operand(cur: cursor.Cursor, expecting: tuple[Kind, ...]) -> ast.LabelFilter:
    """A predicate, and everything after it when a comma or another predicate follows.

    In Loki's grammar ``,`` and juxtaposition have no precedence, so yacc always shifts: the
    right side takes the whole rest (``a, b or c`` is ``a and (b or c)``).
    """
    left = _label_predicate(cur, expecting)
    if cur.accept(Kind.COMMA):
        return ast.AndLabelFilter(left, _label_expression(cur, 0, _CONTINUATION))
    if cur.at(Kind.IDENTIFIER, Kind.OPEN_PARENTHESIS):
        return ast.AndLabelFilter(left, _label_expression(cur, 0, _CONTINUATION))
    return left


_CONTINUATION: Final = (Kind.IDENTIFIER, Kind.OPEN_PARENTHESIS)


def _label_expression(
    cur: cursor.Cursor, min_precedence: int, expecting: tuple[Kind, ...]
) -> ast.LabelFilter:
    """Precedence climbing over ``or`` (loosest) and ``and``, both left-associative."""
    left = _label_operand(cur, expecting)
    while True:
        precedence = _LABEL_FILTER_PRECEDENCE.get(cur.kind())
        if precedence is None or precedence < min_precedence:
            return left
        is_and = cur.advance().kind is Kind.AND
        right = _label_expression(cur, precedence + 1, _CONTINUATION)
        left = ast.AndLabelFilter(left, right) if is_and else ast.OrLabelFilter(left, right)


def label_filter(cur: cursor.Cursor) -> ast.LabelFilter:
    """A whole label filter expression (one ``|`` stage)."""
    return _label_expression(cur, 0, ())


def _extractions(cur: cursor.Cursor, *, json: bool) -> tuple[ast.LabelExtraction, ...]:
    """``a, b="path"`` after ``json``/``logfmt``."""
    params = []
    while True:
        name = cur.name()
        expression = cur.string() if cur.accept(Kind.EQ) else name
        extraction = ast.LabelExtraction(name, expression)
        if json:
            try:
                extraction.json_path  # noqa: B018 - parses and caches, raising on a bad path
            except ValueError as exc:
                raise _fail(str(exc)) from None
        params.append(extraction)
        if not cur.accept(Kind.COMMA):
            return tuple(params)


def _label_format(cur: cursor.Cursor) -> ast.LabelFormat:
    formats: list[ast.LabelFmt] = []
    while True:
        name = cur.name()
        cur.expect(Kind.EQ)
        if cur.at(Kind.STRING):
            formats.append(ast.LabelFmt(name, cur.string(), rename=False))
        else:
            source = cur.name((Kind.IDENTIFIER, Kind.STRING))
            formats.append(ast.LabelFmt(name, source, rename=True))
        if not cur.accept(Kind.COMMA):
            break
    seen: set[str] = set()
    for fmt in formats:
        if fmt.name == "__error__":
            raise _fail("__error__ cannot be formatted")
        if fmt.name in seen:
            raise _fail(
                f"multiple label name '{fmt.name}' not allowed in a single format operation"
            )
        seen.add(fmt.name)
    return ast.LabelFormat(tuple(formats))


def _named_matchers(cur: cursor.Cursor) -> tuple[ast.NamedLabelMatcher, ...]:
    items = []
    while True:
        if cur.kind(1) in _MATCH_OPS:
            found = matcher(cur)
            items.append(ast.NamedLabelMatcher(found.name, found))
        else:
            items.append(ast.NamedLabelMatcher(cur.name()))
        if not cur.accept(Kind.COMMA):
            return tuple(items)


def _check(stage_name: str, check: Callable[[str], object], value: str) -> None:
    try:
        check(value)
    except ValueError as exc:
        raise _fail(f"invalid {stage_name} parser: {exc}") from None


_STAGE_KEYWORDS: Final = frozenset(
    {
        Kind.JSON,
        Kind.LOGFMT,
        Kind.REGEXP,
        Kind.PATTERN,
        Kind.UNPACK,
        Kind.LINE_FMT,
        Kind.LABEL_FMT,
        Kind.DECOLORIZE,
        Kind.DROP,
        Kind.KEEP,
    }
)


def _pipe_stage(cur: cursor.Cursor) -> ast.Stage:  # noqa: PLR0911 - one branch per stage
    """The stage after ``|``."""
    kind = cur.kind()
    if kind in (Kind.IDENTIFIER, Kind.OPEN_PARENTHESIS):
        return ast.LabelFilterStage(label_filter(cur))
    if kind not in _STAGE_KEYWORDS:
        raise cur.error()
    cur.advance()
    if kind is Kind.JSON:
        return ast.JSONParser(_extractions(cur, json=True) if cur.at(Kind.IDENTIFIER) else ())
    if kind is Kind.LOGFMT:
        flags = set()
        while cur.at(Kind.FUNCTION_FLAG):
            flags.add(cur.advance().value)
        params = _extractions(cur, json=False) if cur.at(Kind.IDENTIFIER) else ()
        return ast.LogfmtParser("--strict" in flags, "--keep-empty" in flags, params)
    if kind is Kind.REGEXP:
        pattern = cur.string()
        _check("regexp", checks.check_regexp_parser, pattern)
        return ast.RegexpParser(pattern)
    if kind is Kind.PATTERN:
        pattern = cur.string()
        _check("pattern", checks.check_pattern_parser, pattern)
        return ast.PatternParser(pattern)
    if kind is Kind.UNPACK:
        return ast.UnpackParser()
    if kind is Kind.LINE_FMT:
        return ast.LineFormat(cur.string())
    if kind is Kind.LABEL_FMT:
        return _label_format(cur)
    if kind is Kind.DECOLORIZE:
        return ast.Decolorize()
    if kind is Kind.DROP:
        return ast.DropLabels(_named_matchers(cur))
    return ast.KeepLabels(_named_matchers(cur))


def pipeline(cur: cursor.Cursor, *, unwrap_follows: bool) -> tuple[ast.Stage, ...]:
    """Stages until none follows; stops before ``| unwrap`` where an unwrap may come next."""
    stages: list[ast.Stage] = []
    while True:
        kind = cur.kind()
        if kind in LINE_FILTER_OPS:
            stages.append(line_filter(cur))
        elif kind is Kind.PIPE:
            if unwrap_follows and cur.kind(1) is Kind.UNWRAP:
                break
            cur.advance()
            stages.append(_pipe_stage(cur))
        else:
            break
    return tuple(stages)


def log_query(cur: cursor.Cursor, *, unwrap_follows: bool = False) -> ast.LogQueryExpr:
    """A selector and its pipeline."""
    found = selector(cur)
    return ast.LogQueryExpr(found, pipeline(cur, unwrap_follows=unwrap_follows))


def unwrap(cur: cursor.Cursor) -> ast.Unwrap:
    """``| unwrap label``, ``| unwrap bytes(label)``, then ``| <label filter>`` stages."""
    cur.expect(Kind.PIPE)
    cur.expect(Kind.UNWRAP)
    conversion = CONVERSIONS.get(cur.kind())
    if conversion is None:
        label = cur.name((Kind.IDENTIFIER, *CONVERSIONS))
        conversion = ast.UnwrapConversion.FLOAT
    else:
        cur.advance()
        cur.expect(Kind.OPEN_PARENTHESIS)
        label = cur.name()
        cur.expect(Kind.CLOSE_PARENTHESIS)
    post_filters = []
    while cur.accept(Kind.PIPE):
        post_filters.append(label_filter(cur))
    return ast.Unwrap(label, conversion, tuple(post_filters))
