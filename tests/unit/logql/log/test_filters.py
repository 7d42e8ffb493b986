"""Line filters per line, the ip() scanner, required literals and the block pre-filter."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lokistack.chunk import block
from lokistack.logql import syntax
from lokistack.logql.log import filters
from lokistack.logql.syntax import ast, checks


def line_filter(text: str) -> ast.LineFilter:
    expr = syntax.parse_expr('{app="a"} ' + text)
    assert isinstance(expr, ast.LogQueryExpr)
    stage = expr.stages[0]
    assert isinstance(stage, ast.LineFilter)
    return stage


def keeps(text: str, line: str) -> bool:
    test = filters.compile_line_filter(line_filter(text))
    return True if test is None else test(line)


@pytest.mark.parametrize(
    ("query", "line", "expected"),
    [
        ('|= "err"', "an error", True),
        ('|= "ERR"', "an error", False),
        ('|= ""', "anything", True),
        ('!= "err"', "an error", False),
        ('!= ""', "anything", False),
        ('|~ "code=5.."', "code=503 x", True),
        ('|~ "(?i)CODE=5.."', "code=503 x", True),
        ('!~ "code=5.."', "code=200", True),
        ('|= "a" or "b"', "xbx", True),
        ('!= "a" or "b"', "xbx", False),
        ('!= "a" or "b"', "xcx", True),
        ('|~ "err.r" or "wa.n"', "warn", True),
        ('|> "GET <_> 200"', "GET /api 200", True),
        ('|> "GET <_> 200"', "GET /api 2000", False),
        ('|> "GET /api"', "GET /api 200", False),
        ('|> "<_> bar"', "foo bar", True),
        ('|> "<_> bar <_>"', " bar ", False),
        ('!> "GET <_> 200"', "POST /api 500", True),
        ('|= ip("192.168.1.0/24")', "src 192.168.1.10 ok", True),
        ('|= ip("192.168.1.0/24")', "src 192.168.2.10 ok", False),
        ('!= ip("192.168.1.0/24")', "no ip here", True),
        ('|= ip("10.0.0.1-10.0.0.9")', "from 10.0.0.5:80", True),
        ('|= ip("2001:db8::/32")', "v6 2001:db8::1 here", True),
        ('|= ip("10.0.0.7")', "10.0.0.77", False),
        ('|= "special" or ip("10.0.0.0/8")', "src 10.0.0.9", True),
    ],
)
def test_line_filters(query: str, line: str, expected: bool) -> None:
    assert keeps(query, line) is expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("code=5..", "code=5"),
        ("err.r", "err"),
        ("status=5[0-9]+ ", "status=5"),
        ("ab*c", "a"),
        ("abc+d", "abc"),
        ("x\\.y", "x.y"),
        ("a|b", None),
        ("(?i)foo", None),
        ("(foo|bar)baz", "baz"),
        ("\\d+ms", "ms"),
        ("\\x41bc", None),
        ("[abc]+", None),
        ("foo{0,2}bar", "bar"),
        ("", None),
    ],
)
def test_required_literal(pattern: str, expected: str | None) -> None:
    assert filters.required_literal(pattern) == expected


@given(st.text(alphabet="abc.*+?|()[]{}0123", max_size=8), st.text(alphabet="abc123", max_size=12))
@settings(max_examples=300, deadline=None)
def test_required_literal_is_in_every_match(pattern: str, text: str) -> None:
    try:
        regex = checks.compile_regex(pattern)
    except ValueError:
        return
    literal = filters.required_literal(pattern)
    if literal is not None and regex.search(text) is not None:
        assert literal in text


def test_ip_matcher_skips_runs_that_are_not_addresses() -> None:
    matcher = filters.IPMatcher("1.2.3.0/24")
    assert matcher.search("x 999.1.1.1 then 1.2.3.4")
    assert not matcher.search("1.2.3")
    assert not matcher.search("")


LINES = ["alpha one", "beta two", "gamma three", "alpha beta", "", "delta"]


def decoded_block(lines: list[str]) -> block.DecodedBlock:
    return block.DecodedBlock(block.encode_payload(list(range(len(lines))), lines, None))


@pytest.mark.parametrize(
    "query",
    [
        '|= "alpha"',
        '|= "alpha" |= "beta"',
        '|= "alpha" != "beta"',
        '|= "alpha" or "delta"',
        '!= "a"',
        '|~ "t[wh]"',
        '|> "<_> beta"',
    ],
)
def test_block_prefilter_keeps_every_passing_entry(query: str) -> None:
    stages = [line_filter(part) for part in re.findall(r'[|!][=~>] "[^"]*"(?: or "[^"]*")*', query)]
    terms = [term for stage in stages if (term := filters.bulk_term(stage)) is not None]
    decoded = decoded_block(LINES)
    candidates = list(filters.BlockPrefilter(terms).candidates(decoded, range(len(LINES))))
    passing = [i for i, line in enumerate(LINES) if all(keeps_stage(s, line) for s in stages)]
    assert set(passing) <= set(candidates)
    if all(term.exact for term in terms) and len(terms) == len(stages):
        assert candidates == passing


def keeps_stage(stage: ast.LineFilter, line: str) -> bool:
    test = filters.compile_line_filter(stage)
    return True if test is None else test(line)


def test_block_prefilter_respects_the_index_range() -> None:
    decoded = decoded_block(LINES)
    prefilter = filters.BlockPrefilter([filters.BulkTerm(any_of=(b"alpha",), exact=True)])
    assert list(prefilter.candidates(decoded, range(1, 6))) == [3]
    assert list(filters.BlockPrefilter([]).candidates(decoded, range(2, 4))) == [2, 3]
