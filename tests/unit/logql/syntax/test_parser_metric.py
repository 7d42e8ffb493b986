"""Metric queries: range and vector aggregations, binary operations, folding, precedence."""

from __future__ import annotations

import math

import pytest
from lokistack.logql import syntax
from lokistack.logql.syntax import ast

MINUTE = 60_000_000_000
QUERY = ast.LogQueryExpr(ast.StreamSelector((ast.Matcher("app", ast.MatchOp.EQ, "foo"),)))
JSON_QUERY = ast.LogQueryExpr(QUERY.selector, (ast.JSONParser(),))


def rate(minutes: int = 5) -> ast.RangeAggregation:
    return ast.RangeAggregation(ast.RangeOp.RATE, QUERY, minutes * MINUTE)


RATE_TEXT = 'rate({app="foo"}[5m])'


@pytest.mark.parametrize(
    "text",
    [
        'avg_over_time({app="foo"} | json | unwrap v [5m] offset 1h) by (a)',
        'avg_over_time({app="foo"}[5m] offset 1h | json | unwrap v) by (a)',
        'avg_over_time(({app="foo"} | json | unwrap v)[5m] offset 1h) by (a)',
        'avg_over_time(({app="foo"} | json | unwrap v [5m] offset 1h)) by (a)',
        'avg_over_time((({app="foo"} | json | unwrap v [5m] offset 1h))) by (a)',
    ],
)
def test_range_may_follow_selector_pipeline_or_parentheses(text: str) -> None:
    assert syntax.parse_expr(text) == ast.RangeAggregation(
        ast.RangeOp.AVG_OVER_TIME,
        JSON_QUERY,
        5 * MINUTE,
        offset_ns=3600 * 10**9,
        unwrap=ast.Unwrap("v"),
        grouping=ast.Grouping(("a",)),
    )


def test_parenthesised_selector_then_range_then_unwrap() -> None:
    expr = syntax.parse_expr('sum_over_time(({app="foo"})[1m] | unwrap bytes(size))')
    assert expr == ast.RangeAggregation(
        ast.RangeOp.SUM_OVER_TIME,
        QUERY,
        MINUTE,
        unwrap=ast.Unwrap("size", ast.UnwrapConversion.BYTES),
    )


def test_unwrap_conversions_and_post_filters() -> None:
    expr = syntax.parse_expr(
        'quantile_over_time(0.99, {app="foo"} | json | unwrap duration_seconds(d) '
        '| __error__="" | d > 1 [1m]) without (x)'
    )
    assert expr == ast.RangeAggregation(
        ast.RangeOp.QUANTILE_OVER_TIME,
        JSON_QUERY,
        MINUTE,
        unwrap=ast.Unwrap(
            "d",
            ast.UnwrapConversion.DURATION_SECONDS,
            (
                ast.StringLabelFilter(ast.Matcher("__error__", ast.MatchOp.EQ, "")),
                ast.NumericLabelFilter("d", ast.CompareOp.GT, 1.0),
            ),
        ),
        param=0.99,
        grouping=ast.Grouping(("x",), without=True),
    )


@pytest.mark.parametrize("op", list(ast.RangeOp))
def test_every_range_operation(op: ast.RangeOp) -> None:
    param = "0.5," if op is ast.RangeOp.QUANTILE_OVER_TIME else ""
    unwrap = "" if op in ast.RANGE_OPS_WITHOUT_UNWRAP else " | unwrap v"
    expr = syntax.parse_expr(f'{op.value}({param}{{app="foo"}}{unwrap}[1m])')
    assert isinstance(expr, ast.RangeAggregation)
    assert expr.op is op


def test_vector_aggregation_grouping_before_or_after() -> None:
    expected = ast.VectorAggregation(ast.VectorOp.SUM, rate(), ast.Grouping(("a", "b")))
    assert syntax.parse_expr(f"sum by (a, b) ({RATE_TEXT})") == expected
    assert syntax.parse_expr(f"sum({RATE_TEXT}) by (a,b)") == expected
    assert syntax.parse_expr(f"SUM BY(a,b)({RATE_TEXT})") == expected
    assert syntax.parse_expr(f"sum by () ({RATE_TEXT})") == syntax.parse_expr(f"sum({RATE_TEXT})")


@pytest.mark.parametrize("op", list(ast.VectorOp))
def test_every_vector_operation(op: ast.VectorOp) -> None:
    param = "3," if op in ast.VECTOR_OPS_WITH_PARAM else ""
    expr = syntax.parse_expr(f"{op.value}({param}{RATE_TEXT})")
    assert expr == ast.VectorAggregation(op, rate(), param=3 if param else None)


def test_binary_operator_precedence_and_associativity() -> None:
    r = rate()
    add = ast.BinOp.ADD
    expr = syntax.parse_expr(f"{RATE_TEXT} + {RATE_TEXT} * {RATE_TEXT} ^ {RATE_TEXT} ^ 2")
    pow_ = ast.BinaryOp(ast.BinOp.POW, r, ast.BinaryOp(ast.BinOp.POW, r, ast.Literal(2.0)))
    assert expr == ast.BinaryOp(add, r, ast.BinaryOp(ast.BinOp.MUL, r, pow_))
    left_assoc = syntax.parse_expr(f"{RATE_TEXT} - {RATE_TEXT} - {RATE_TEXT}")
    sub = ast.BinOp.SUB
    assert left_assoc == ast.BinaryOp(sub, ast.BinaryOp(sub, r, r), r)
    mixed = syntax.parse_expr(f"{RATE_TEXT} or {RATE_TEXT} and {RATE_TEXT} > 1")
    gt = ast.BinaryOp(ast.BinOp.GT, r, ast.Literal(1.0))
    assert mixed == ast.BinaryOp(ast.BinOp.OR, r, ast.BinaryOp(ast.BinOp.AND, r, gt))
    grouped = syntax.parse_expr(f"({RATE_TEXT} + {RATE_TEXT}) * 2")
    assert grouped == ast.BinaryOp(ast.BinOp.MUL, ast.BinaryOp(add, r, r), ast.Literal(2.0))


def test_modifiers() -> None:
    expr = syntax.parse_expr(
        f"{RATE_TEXT} > bool on (a, b) group_left (c) {RATE_TEXT} "
        f"* ignoring (d) group_right () {RATE_TEXT} unless on () {RATE_TEXT}"
    )
    r = rate()
    right = ast.BinaryOp(
        ast.BinOp.MUL,
        r,
        r,
        matching=ast.VectorMatching(False, ("d",), ast.Cardinality.ONE_TO_MANY),
    )
    cmp = ast.BinaryOp(
        ast.BinOp.GT,
        r,
        right,
        bool_modifier=True,
        matching=ast.VectorMatching(True, ("a", "b"), ast.Cardinality.MANY_TO_ONE, ("c",)),
    )
    assert expr == ast.BinaryOp(ast.BinOp.UNLESS, cmp, r, matching=ast.VectorMatching(on=True))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1 + 1", 2.0),
        ("2 * 3 + 4", 10.0),
        ("2 ^ 3 ^ 2", 512.0),
        ("-2 ^ 2", 4.0),  # the sign belongs to the literal
        ("7 % 4", 3.0),
        ("-7 % 4", -3.0),
        ("1 / 0", math.nan),
        ("1 % 0", math.nan),
        ("1 >= 1 > 1", 0.0),
        ("1 > 1 > bool 1", 0.0),
        ("1 == bool 1", 1.0),
        ("0x1p3", 8.0),
        ("1e3", 1000.0),
        ("+5", 5.0),
        ("(((3)))", 3.0),
        ("1 # trailing comment", 1.0),
    ],
)
def test_literals_are_folded(text: str, value: float) -> None:
    expr = syntax.parse_expr(text)
    assert isinstance(expr, ast.Literal)
    assert expr.value == value or (math.isnan(value) and math.isnan(expr.value))


def test_label_replace_vector_and_literal_operands() -> None:
    expr = syntax.parse_expr(f'label_replace({RATE_TEXT}, "dst", "$1", "src", "(.*)") * vector(2)')
    replace = ast.LabelReplace(rate(), "dst", "$1", "src", "(.*)")
    assert expr == ast.BinaryOp(ast.BinOp.MUL, replace, ast.VectorLiteral(2.0))


def test_function_names_are_labels_when_not_called() -> None:
    expr = syntax.parse_expr('sum by (count, rate) (count_over_time({app="foo"} | rate > 1 [1m]))')
    assert isinstance(expr, ast.VectorAggregation)
    assert expr.grouping.labels == ("count", "rate")


def test_multiline_queries_with_comments() -> None:
    expr = syntax.parse_expr(
        """
        sum by (a) (      # per a
          rate({app="foo"}[5m])
        )
        """
    )
    assert expr == ast.VectorAggregation(ast.VectorOp.SUM, rate(), ast.Grouping(("a",)))
