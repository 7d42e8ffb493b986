"""Parse errors carry Loki's wording and position: clients see them as 400 response bodies.

The expected texts are Loki's own (``pkg/logql/syntax/parser_test.go`` and the conformance
scripts), including yacc's ``expecting`` lists and the Go scanner's position quirks.
"""

from __future__ import annotations

import pytest
from lokistack.logql import syntax

EMPTY = (
    "parse error : queries require at least one regexp or equality matcher that does not have "
    'an empty-compatible value. For instance, app=~".*" does not meet this requirement, but '
    'app=~".+" will'
)

CASES = [
    (
        'unk({ foo = "bar" }[5m])',
        "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER",
    ),
    (
        'absent_over_time({ foo = "bar" }[5h]) by (foo)',
        "parse error : grouping not allowed for absent_over_time aggregation",
    ),
    (
        'approx_topk(2, count_over_time({ foo = "bar" }[5h])) by (foo)',
        "parse error : grouping not allowed for approx_topk aggregation",
    ),
    (
        'rate({ foo = "bar" }[5minutes])',
        'parse error at line 0, col 21: unknown unit "minutes" in duration "5minutes"',
    ),
    (
        'label_replace(rate({ foo = "bar" }[5m]),"")',
        "parse error at line 1, col 43: syntax error: unexpected ), expecting ,",
    ),
    (
        'label_replace(rate({ foo = "bar" }[5m]),"foo","$1","bar","^^^^x43\\\\q")',
        "parse error : invalid regex in label_replace: error parsing regexp: "
        "invalid escape sequence: `\\q`",
    ),
    ('rate({ foo = "bar" }[5)', "parse error at line 0, col 21: missing closing ']' in duration"),
    ('min({ foo = "bar" }[5m])', "parse error at line 0, col 20: syntax error: unexpected RANGE"),
    (
        '{ foo = "bar" }|logfmt|addr>=ip("1.2.3.4")',
        "parse error at line 1, col 30: syntax error: unexpected ip",
    ),
    (
        'sum(3 ,count_over_time({ foo = "bar" }[5h]))',
        "parse error : unsupported parameter for operation sum(3,",
    ),
    (
        'topk(count_over_time({ foo = "bar" }[5h]))',
        "parse error : parameter required for operation topk",
    ),
    (
        'bottomk(he,count_over_time({ foo = "bar" }[5h]))',
        "parse error at line 1, col 9: syntax error: unexpected IDENTIFIER",
    ),
    (
        'bottomk(1.2,count_over_time({ foo = "bar" }[5h]))',
        "parse error : invalid parameter bottomk(1.2,",
    ),
    (
        'topk(0,count_over_time({ foo = "bar" }[5h]))',
        "parse error : invalid parameter (must be greater than 0) topk(0",
    ),
    ('stddev({ foo = "bar" })', "parse error at line 1, col 23: syntax error: unexpected )"),
    ('rate({ foo = "bar" })', "parse error at line 1, col 21: syntax error: unexpected )"),
    ('{foo="bar}', "parse error at line 1, col 6: literal not terminated"),
    (
        '{foo="bar"',
        "parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ,",
    ),
    (
        '{foo="bar"} |~',
        "parse error at line 1, col 15: syntax error: unexpected $end, expecting STRING or ip",
    ),
    ('{foo="bar"} "foo"', "parse error at line 1, col 13: syntax error: unexpected STRING"),
    ('{foo="bar"} foo', "parse error at line 1, col 13: syntax error: unexpected IDENTIFIER"),
    (
        '{json="x"}',
        "parse error at line 1, col 2: syntax error: unexpected json, expecting IDENTIFIER or }",
    ),
    (
        '{a~"x"}',
        "parse error at line 1, col 3: syntax error: unexpected IDENTIFIER, expecting "
        "= or =~ or !~ or !=",
    ),
    (
        '{app="foo"} | logfmt | status_code > 0x10',
        'parse error : unable to parse literal as a float: strconv.ParseFloat: parsing "0x10": '
        "invalid syntax",
    ),
    (
        "1 + 0o17",
        "parse error : unable to parse literal as a float: strconv.ParseFloat: parsing "
        '"0o17": invalid syntax',
    ),
    (
        'count_over_time({app="foo"} |= "foo" | json | unwrap foo [5m])',
        "parse error : invalid aggregation count_over_time with unwrap",
    ),
    (
        'sum_over_time({app="foo"}[5m])',
        "parse error : invalid aggregation sum_over_time without unwrap",
    ),
    (
        '{foo="bar"} + {foo="bar"}',
        "parse error : unexpected type for left leg of binary operation (+): *syntax.MatchersExpr",
    ),
    (
        'rate({a="b"}[1m]) - {foo="bar"} |= "x"',
        "parse error : unexpected type for right leg of binary operation (-): *syntax.PipelineExpr",
    ),
    (
        'sum(count_over_time({foo="bar"}[5m])) by (foo) or 1',
        "parse error : unexpected literal for right leg of logical/set binary operation (or): "
        "1.000000",
    ),
    (
        '1 unless sum(count_over_time({foo="bar"}[5m])) by (foo)',
        "parse error : unexpected literal for left leg of logical/set binary operation (unless): "
        "1.000000",
    ),
    ("bool 1 > 1 > bool 1", "parse error at line 1, col 1: syntax error: unexpected bool"),
    (
        'sum_over_time({a="b"} | json |foo>=5,bar<25ms| unwrap latency [5m]) by (foo)',
        "parse error : grouping not allowed for sum_over_time aggregation",
    ),
    (
        'sum_over_time(50,{a="b"} | unwrap latency [5m])',
        "parse error : parameter 50 not supported for operation sum_over_time",
    ),
    (
        'quantile_over_time({a="b"} | unwrap latency [5m])',
        "parse error : parameter required for operation quantile_over_time",
    ),
    (
        'quantile_over_time(foo,{a="b"} | unwrap latency [5m])',
        "parse error at line 1, col 20: syntax error: unexpected IDENTIFIER, expecting NUMBER or "
        "{ or (",
    ),
    (
        'quantile_over_time(-0.1, {a="b"} | unwrap v [1m])',
        "parse error at line 1, col 20: syntax error: unexpected -, expecting NUMBER or { or (",
    ),
    (
        "vector(abc)",
        "parse error at line 1, col 8: syntax error: unexpected IDENTIFIER, expecting NUMBER",
    ),
    ('#{app="foo"} | json', "parse error at line 1, col 20: syntax error: unexpected $end"),
    ("", "parse error : syntax error: unexpected $end"),
    (
        'count without (rate({namespace="apps"}[15s]))',
        "parse error at line 1, col 16: syntax error: unexpected RATE, expecting IDENTIFIER or )",
    ),
    (
        'count_over_time({app="a"} | drop [1m])',
        "parse error at line 0, col 34: syntax error: unexpected RANGE, expecting IDENTIFIER",
    ),
    (
        'count_over_time({app="a"} | logfmt | size > 1mb [1m])',
        "parse error at line 0, col 49: syntax error: unexpected RANGE",
    ),
    (
        '{app="a"} | logfmt | code == "200"',
        "parse error at line 1, col 30: syntax error: unexpected STRING",
    ),
    (
        '{app="a"} | json --strict',
        "parse error at line 0, col 18: syntax error: unexpected FUNCTION_FLAG",
    ),
    ('{app="a"} | unwrap x', "parse error at line 1, col 13: syntax error: unexpected unwrap"),
    (
        '{app="a"} | regexp `(?P<x>.)(?P<x>.)`',
        "parse error : invalid regexp parser: duplicate extracted label name 'x'",
    ),
    (
        '{app="a"} | regexp `(`',
        "parse error : invalid regexp parser: error parsing regexp: missing closing ): `(`",
    ),
    (
        '{app="a"} | regexp `(a)`',
        "parse error : invalid regexp parser: at least one named capture must be supplied",
    ),
    (
        '{app="a"} | pattern `no captures`',
        "parse error : invalid pattern parser: at least one capture is required",
    ),
    (
        '{app="a"} | pattern `<a><b>`',
        "parse error : invalid pattern parser: found consecutive capture '<a><b>': invalid "
        "expression",
    ),
    (
        '{app="a"} | pattern `<a> <a>`',
        "parse error : invalid pattern parser: duplicate capture name (a): invalid expression",
    ),
    ('{app="a"} |> "<verb> /api"', "parse error : named captures are not allowed: found '<verb>'"),
    ('{app="a"} |~ "("', "parse error : error parsing regexp: missing closing ): `(`"),
    (
        '{app=~"(?<=x)"}',
        "parse error : error parsing regexp: invalid or unsupported Perl syntax: `(?<=`",
    ),
    ('{app="a"} |~ "x" or ip("1.2.3.4")', "parse error : ip: invalid operation"),
    ('{app="a"} | addr = ip("bogus")', 'parse error : ip: invalid pattern: "bogus"'),
    ('{app="a"} |= ip("1.2.3.9-1.2.3.4")', 'parse error : ip: invalid pattern: "1.2.3.9-1.2.3.4"'),
    ('{app="a"} | json bad="user["', "parse error : cannot parse expression [user[]: syntax error"),
    (
        '{app="a"} | label_format a="x", a=b',
        "parse error : multiple label name 'a' not allowed in a single format operation",
    ),
    ('{app="a"} | label_format __error__=b', "parse error : __error__ cannot be formatted"),
    (
        'sort by (a) (rate({a="b"}[1m]))',
        "parse error : sort and sort_desc doesn't allow grouping by ",
    ),
    ('count_over_time({foo!="bar"}[5m])', EMPTY),
    ('1 + count_over_time({app=~".+"}[5m]) + count_over_time({app=~".*"}[5m]) + 1', EMPTY),
    ("{}", EMPTY),
    ('{foo!~"bar|baz"}', EMPTY),
    (b'{app=~"\xa0\xa1"}', "parse error at line 1, col 7: invalid UTF-8 encoding"),
    (
        'sum(rate({a="b"}[1m])) by (a) by (b)',
        "parse error at line 1, col 31: syntax error: unexpected by",
    ),
    (
        'rate({a="b"}[1m]) * on(a) group_left (sum(x))',
        "parse error at line 1, col 39: syntax error: unexpected SUM, expecting IDENTIFIER or )",
    ),
]


@pytest.mark.parametrize(("query", "message"), CASES)
def test_error_text(query: str | bytes, message: str) -> None:
    with pytest.raises(syntax.ParseError) as info:
        syntax.parse_expr(query)
    assert str(info.value) == message


def test_syntax_error_wins_over_a_deferred_error_found_earlier() -> None:
    # Loki validates after parsing: the unsupported parameter is only reported if the rest parses
    with pytest.raises(syntax.ParseError, match="unexpected \\)"):
        syntax.parse_expr('sum(3, rate({a="b"}[1m])) + rate({a="b"})')


def test_first_error_in_walk_order() -> None:
    with pytest.raises(syntax.ParseError, match="invalid aggregation avg_over_time"):
        syntax.parse_expr('avg_over_time({a="b"}[1m]) + sum(1, rate({a="b"}[1m]))')
