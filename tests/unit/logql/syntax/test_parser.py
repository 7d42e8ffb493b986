"""Log queries parse into the AST the pipeline builds on; the public entry points."""

from __future__ import annotations

import pytest
from lokistack.logql import syntax
from lokistack.logql.syntax import ast

EQ, NEQ, RE, NRE = ast.MatchOp.EQ, ast.MatchOp.NEQ, ast.MatchOp.RE, ast.MatchOp.NRE
SEL = ast.StreamSelector((ast.Matcher("app", EQ, "foo"),))


def stages(query: str) -> tuple[ast.Stage, ...]:
    expr = syntax.parse_expr(query)
    assert isinstance(expr, ast.LogQueryExpr)
    assert expr.selector == SEL
    return expr.stages


def label_filter(text: str) -> ast.LabelFilter:
    (stage,) = stages('{app="foo"} | ' + text)
    assert isinstance(stage, ast.LabelFilterStage)
    return stage.filter


def test_selector_with_every_operator() -> None:
    expr = syntax.parse_expr('{a="1", b!="2", c=~"3.*", d!~`4\\d`}')
    assert expr == ast.LogQueryExpr(
        ast.StreamSelector(
            (
                ast.Matcher("a", EQ, "1"),
                ast.Matcher("b", NEQ, "2"),
                ast.Matcher("c", RE, "3.*"),
                ast.Matcher("d", NRE, "4\\d"),
            )
        )
    )


@pytest.mark.parametrize(
    ("op", "value", "candidate", "expected"),
    [
        (EQ, "a", "a", True),
        (NEQ, "a", "a", False),
        (RE, "a|b", "b", True),
        (RE, "a", "ab", False),  # anchored
        (RE, ".*", "", True),
        (NRE, "a.+", "abc", False),
        (RE, ".", "\n", False),  # `.` does not match a newline without (?s)
        (RE, "(?s).", "\n", True),
    ],
)
def test_matcher_matches(op: ast.MatchOp, value: str, candidate: str, expected: bool) -> None:
    assert ast.Matcher("x", op, value).matches(candidate) is expected


def test_line_filters() -> None:
    assert stages(
        '{app="foo"} |= "a" != "b" |~ "c" !~ "d" |> "<_> e" !> "f" |= "g" or "h" '
        '!= ip("10.0.0.0/8") or "i"'
    ) == (
        ast.LineFilter(ast.LineFilterOp.CONTAINS, "a"),
        ast.LineFilter(ast.LineFilterOp.NOT_CONTAINS, "b"),
        ast.LineFilter(ast.LineFilterOp.MATCH, "c"),
        ast.LineFilter(ast.LineFilterOp.NOT_MATCH, "d"),
        ast.LineFilter(ast.LineFilterOp.PATTERN, "<_> e"),
        ast.LineFilter(ast.LineFilterOp.NOT_PATTERN, "f"),
        ast.LineFilter(ast.LineFilterOp.CONTAINS, "g", or_values=(ast.LineFilterTerm("h"),)),
        ast.LineFilter(
            ast.LineFilterOp.NOT_CONTAINS,
            "10.0.0.0/8",
            ip=True,
            or_values=(ast.LineFilterTerm("i"),),
        ),
    )


def test_parsers() -> None:
    extract = ast.LabelExtraction
    assert stages(
        '{app="foo"} | json | json a="x.y", b="list[0]" | JSON servers | logfmt '
        '| logfmt --strict --keep-empty | logfmt --keep-empty host, fwd="fwd_ip" '
        '| regexp "(?P<x>\\\\w+)" | pattern "<ip> - <_>" | unpack'
    ) == (
        ast.JSONParser(),
        ast.JSONParser((extract("a", "x.y"), extract("b", "list[0]"))),
        ast.JSONParser((extract("servers", "servers"),)),
        ast.LogfmtParser(),
        ast.LogfmtParser(strict=True, keep_empty=True),
        ast.LogfmtParser(
            keep_empty=True, params=(extract("host", "host"), extract("fwd", "fwd_ip"))
        ),
        ast.RegexpParser("(?P<x>\\w+)"),
        ast.PatternParser("<ip> - <_>"),
        ast.UnpackParser(),
    )


def test_json_paths_are_parsed_for_the_pipeline() -> None:
    (stage,) = stages('{app="foo"} | json a="x.y[2][\\"k z\\"]"')
    assert isinstance(stage, ast.JSONParser)
    assert stage.params[0].json_path == ("x", "y", 2, "k z")


def test_formatters_drop_keep_decolorize() -> None:
    named = ast.NamedLabelMatcher
    assert stages(
        '{app="foo"} | line_format "{{.a}}" | label_format a="{{.b}}", c=d | decolorize '
        '| drop a, b="x", __error__ | keep c, d=~"y.*"'
    ) == (
        ast.LineFormat("{{.a}}"),
        ast.LabelFormat((ast.LabelFmt("a", "{{.b}}", rename=False), ast.LabelFmt("c", "d", True))),
        ast.Decolorize(),
        ast.DropLabels((named("a"), named("b", ast.Matcher("b", EQ, "x")), named("__error__"))),
        ast.KeepLabels((named("c"), named("d", ast.Matcher("d", RE, "y.*")))),
    )


GT, GTE, LT, LTE, CEQ, CNEQ = (
    ast.CompareOp.GT,
    ast.CompareOp.GTE,
    ast.CompareOp.LT,
    ast.CompareOp.LTE,
    ast.CompareOp.EQ,
    ast.CompareOp.NEQ,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('level="error"', ast.StringLabelFilter(ast.Matcher("level", EQ, "error"))),
        ('__error__!=""', ast.StringLabelFilter(ast.Matcher("__error__", NEQ, ""))),
        ("status >= 500", ast.NumericLabelFilter("status", GTE, 500.0)),
        ("x == -1.5e3", ast.NumericLabelFilter("x", CEQ, -1500.0)),
        ("x = +2", ast.NumericLabelFilter("x", CEQ, 2.0)),
        ("took > 1h30m", ast.DurationLabelFilter("took", GT, 5_400_000_000_000)),
        ("took <= 250ms", ast.DurationLabelFilter("took", LTE, 250_000_000)),
        ("took != 1.5s", ast.DurationLabelFilter("took", CNEQ, 1_500_000_000)),
        ("size < 20MB", ast.BytesLabelFilter("size", LT, 20_000_000)),
        ("size == 1KiB", ast.BytesLabelFilter("size", CEQ, 1024)),
        ('addr = ip("10.0.0.0/8")', ast.IPLabelFilter("addr", CEQ, "10.0.0.0/8")),
        ('addr != ip("1.2.3.4-1.2.3.9")', ast.IPLabelFilter("addr", CNEQ, "1.2.3.4-1.2.3.9")),
        ("rate > 5", ast.NumericLabelFilter("rate", GT, 5.0)),
        ("bytes > 1KB", ast.BytesLabelFilter("bytes", GT, 1000)),
    ],
)
def test_label_filter_predicates(text: str, expected: ast.LabelFilter) -> None:
    assert label_filter(text) == expected


def n(name: str) -> ast.NumericLabelFilter:
    return ast.NumericLabelFilter(name, GT, 1.0)


And, Or = ast.AndLabelFilter, ast.OrLabelFilter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a>1 and b>1 and c>1", And(And(n("a"), n("b")), n("c"))),
        ("a>1 and b>1 or c>1", Or(And(n("a"), n("b")), n("c"))),
        ("a>1 or b>1 and c>1", Or(n("a"), And(n("b"), n("c")))),
        ("a>1 or b>1 or c>1", Or(Or(n("a"), n("b")), n("c"))),
        # a comma or a space has no precedence in Loki's grammar: the right side takes the rest
        ("a>1, b>1 or c>1", And(n("a"), Or(n("b"), n("c")))),
        ("a>1 b>1 or c>1", And(n("a"), Or(n("b"), n("c")))),
        ("a>1 or b>1, c>1", Or(n("a"), And(n("b"), n("c")))),
        ("a>1 and b>1, c>1 or d>1", And(n("a"), And(n("b"), Or(n("c"), n("d"))))),
        ("(a>1 or b>1) and c>1", And(Or(n("a"), n("b")), n("c"))),
        ("a>1 (b>1 or c>1)", And(n("a"), Or(n("b"), n("c")))),
    ],
)
def test_label_filter_combinations(text: str, expected: ast.LabelFilter) -> None:
    assert label_filter(text) == expected


def test_new_pipe_starts_a_new_stage() -> None:
    assert stages('{app="foo"} | a>1 | b>1') == (
        ast.LabelFilterStage(n("a")),
        ast.LabelFilterStage(n("b")),
    )


def test_parse_log_selector_allows_empty_selector_without_validation() -> None:
    assert syntax.parse_log_selector("{}", validate=False) == ast.LogQueryExpr(
        ast.StreamSelector(())
    )
    with pytest.raises(syntax.ParseError, match="at least one regexp or equality matcher"):
        syntax.parse_log_selector("{}")
    with pytest.raises(syntax.ParseError, match="only log selector is supported"):
        syntax.parse_log_selector('rate({a="b"}[1m])')


def test_parse_sample_expr_refuses_log_queries() -> None:
    with pytest.raises(syntax.ParseError, match="only sample expression supported"):
        syntax.parse_sample_expr('{a="b"}')
    assert isinstance(syntax.parse_sample_expr("vector(1)"), ast.VectorLiteral)


@pytest.mark.parametrize(
    ("selector", "valid"),
    [
        ('{a="b"}', True),
        ('{a=~".+"}', True),
        ('{a=~"b|c"}', True),
        ('{a!="b"}', False),
        ('{a=~".*"}', False),
        ('{a=""}', False),
        ('{a!~"b|c"}', False),
        ('{a=~".*", b="c"}', True),
    ],
)
def test_validate_selector(selector: str, valid: bool) -> None:
    parsed = syntax.parse_log_selector(selector, validate=False)
    if valid:
        syntax.validate_selector(parsed)
    else:
        with pytest.raises(syntax.ParseError) as info:
            syntax.validate_selector(parsed.selector)
        assert str(info.value).startswith("parse error : queries require at least one")


def test_bytes_input_and_size_limit() -> None:
    assert syntax.parse_expr(b'{a="b"}') == syntax.parse_expr('{a="b"}')
    too_long = '{a="' + "x" * 131072 + '"}'
    with pytest.raises(syntax.ParseError, match=r"input size too long \(131078 > 131072\)"):
        syntax.parse_expr(too_long)


def test_parse_error_str() -> None:
    assert str(syntax.ParseError("boom", 1, 2)) == "parse error at line 1, col 2: boom"
    assert str(syntax.ParseError("boom")) == "parse error : boom"
