"""Label filter predicates: conversions, missing labels, errors and and/or evaluation."""

from __future__ import annotations

import pytest
from lokistack.logql import syntax
from lokistack.logql.log import label_filters, labels
from lokistack.logql.syntax import ast


def check(filter_text: str, values: dict[str, str], err: str = "") -> tuple[bool, str, str]:
    expr = syntax.parse_expr('{app="a"} | ' + filter_text)
    assert isinstance(expr, ast.LogQueryExpr)
    stage = expr.stages[0]
    assert isinstance(stage, ast.LabelFilterStage)
    builder = labels.LabelsBuilder(values)
    builder.err = err
    kept = label_filters.compile_label_filter(stage.filter)(builder)
    return kept, builder.err, builder.err_details


@pytest.mark.parametrize(
    ("query", "values", "kept"),
    [
        ('name="alpha"', {"name": "alpha"}, True),
        ('name=""', {}, True),
        ('name!=""', {}, False),
        ('name=~"al.*"', {"name": "alpha"}, True),
        ('name=~"alph"', {"name": "alpha"}, False),
        ('name!~"al.*"', {"name": "beta"}, True),
        ("status >= 500", {"status": "500"}, True),
        ("status == 200", {"status": "200.0"}, True),
        ("status < 0", {"status": "-5"}, True),
        ("status > 1e3", {"status": "1500"}, True),
        ("status > 1", {}, False),
        ("took > 1s", {"took": "2s"}, True),
        ("took == 90m", {"took": "1h30m"}, True),
        ("took == 1h", {"took": "3600000000µs"}, True),
        ("took <= 1s", {"took": "500ms"}, True),
        ("size > 1MB", {"size": "2048KiB"}, True),
        ("size == 3MB", {"size": "3000KB"}, True),
        ("size < 2KiB", {"size": "1.5KiB"}, True),
        ("size > 1MB", {"size": "3mb"}, True),
        ('addr = ip("192.168.0.0/16")', {"addr": "192.168.1.5"}, True),
        ('addr != ip("192.168.0.0/16")', {"addr": "notanip"}, True),
        ('addr != ip("192.168.0.0/16")', {}, False),
        ('addr = ip("10.0.0.0/8")', {"addr": "client 10.0.0.7:80"}, True),
        ('x="1" or y="1" and z="1"', {"x": "0", "y": "1", "z": "1"}, True),
        ('x="1" or y="1" and z="1"', {"x": "0", "y": "1", "z": "0"}, False),
        ('(x="1" or y="1") and z="1"', {"x": "1", "y": "0", "z": "0"}, False),
    ],
)
def test_predicates(query: str, values: dict[str, str], kept: bool) -> None:
    assert check(query, values) == (kept, "", "")


@pytest.mark.parametrize(
    ("query", "values", "details"),
    [
        ("status > 400", {"status": "oops"}, 'strconv.ParseFloat: parsing "oops": invalid syntax'),
        ("took > 1s", {"took": "90"}, 'time: missing unit in duration "90"'),
        ("took == 1d", {"took": "1d"}, 'time: unknown unit "d" in duration "1d"'),
        ("size > 1MB", {"size": "oops"}, 'strconv.ParseFloat: parsing "": invalid syntax'),
        ("x > 1s and y > 1s", {"x": "nope", "y": "90"}, 'time: invalid duration "nope"'),
    ],
)
def test_conversion_failures_keep_the_entry_with_an_error(
    query: str, values: dict[str, str], details: str
) -> None:
    assert check(query, values) == (True, "LabelFilterErr", details)


def test_an_existing_error_is_not_overwritten() -> None:
    assert check("took > 1s", {"took": "oops"}, err="JSONParserErr") == (True, "JSONParserErr", "")


def test_or_skips_the_right_side_when_the_left_holds() -> None:
    assert check('lvl="error" or took > 1s', {"lvl": "error", "took": "oops"}) == (True, "", "")
    assert (
        check('took > 1s or lvl="error"', {"lvl": "error", "took": "oops"})[1] == "LabelFilterErr"
    )


def test_and_runs_both_sides() -> None:
    assert check('lvl="info" and took > 1s', {"lvl": "error", "took": "oops"}) == (
        False,
        "LabelFilterErr",
        'time: invalid duration "oops"',
    )


def test_error_label_filters() -> None:
    assert check('__error__=""', {}) == (True, "", "")
    assert check('__error__=""', {}, err="JSONParserErr")[0] is False
    assert check("__error__ > 0", {}, err="LabelFilterErr")[0] is False
    assert check('addr = ip("1.2.3.0/24")', {}, err="JSONParserErr")[0] is True
