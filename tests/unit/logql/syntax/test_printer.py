"""Printing is a fixed point of parsing: queries travel between components as text."""

from __future__ import annotations

import itertools
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lokistack.logql import syntax
from lokistack.logql.syntax import ast, printer, tokens

from tests.support import logqltest

QUERIES = [
    line
    for line in (pathlib.Path(__file__).parent / "queries.txt").read_text().splitlines()
    if line.strip()
]


def assert_round_trip(expr: ast.Expr) -> str:
    text = printer.format(expr)
    again = syntax.parse_expr(text)
    assert again == expr, text
    assert printer.format(again) == text
    return text


@pytest.mark.parametrize("query", QUERIES)
def test_corpus_is_stable(query: str) -> None:
    assert_round_trip(syntax.parse_expr(query))


def test_corpus_covers_every_operation() -> None:
    text = "\n".join(QUERIES)
    names = [op.value for op in (*ast.RangeOp, *ast.VectorOp)] + list(tokens.KEYWORDS)
    missing = [name for name in names if name not in text and name not in "[]."]
    assert not missing
    assert len(QUERIES) >= 150


@pytest.mark.parametrize(
    ("query", "canonical"),
    [
        ('{ app = "foo" ,env=~"p.*" }', '{app="foo", env=~"p.*"}'),
        (
            '{app="foo"} |= "a" or "b" != ip("1.2.3.4")',
            '{app="foo"} |= "a" or "b" != ip("1.2.3.4")',
        ),
        (
            '{app="foo"} | json a="b", c | logfmt --strict x',
            '{app="foo"} | json a="b",c="c" | logfmt --strict x="x"',
        ),
        ('{app="foo"} | a="1", b > 2 or c < 1s', '{app="foo"} | ( a="1" , ( b>2 or c<1s ) )'),
        ('{app="foo"} | size > 1.5KiB and size < 1MB', '{app="foo"} | ( size>1536B , size<1MB )'),
        ('{app="foo"} | took = 90m | x = ip("::1")', '{app="foo"} | took==1h30m0s | x=ip("::1")'),
        (
            '{app="foo"} | label_format a=b, c="{{.d}}" | drop e, f="g"',
            '{app="foo"} | label_format a=b,c="{{.d}}" | drop e,f="g"',
        ),
        ('rate({app="foo"}[90s] offset 1h)', 'rate({app="foo"}[1m30s] offset 1h0m0s)'),
        (
            'quantile_over_time(0.9, {a="b"} | unwrap duration(x) | x > 1 [5m]) by (c)',
            'quantile_over_time(0.9,{a="b"} | unwrap duration(x) | x>1[5m]) by (c)',
        ),
        ('sum(rate({a="b"}[1m])) by (x, y)', 'sum by (x,y)(rate({a="b"}[1m]))'),
        ('topk(3, rate({a="b"}[1m]))', 'topk(3,rate({a="b"}[1m]))'),
        (
            'rate({a="b"}[1m]) > bool on(x) group_left rate({a="b"}[1m])',
            '(rate({a="b"}[1m]) > bool on (x) group_left () rate({a="b"}[1m]))',
        ),
        (
            'label_replace(vector(1), "a", "b", "c", "d")',
            'label_replace(vector(1),"a","b","c","d")',
        ),
        ("1000000", "1e+06"),
        ("-0.0001", "-0.0001"),
        ("0.00001", "1e-05"),
        ("123456.5", "123456.5"),
    ],
)
def test_canonical_text(query: str, canonical: str) -> None:
    assert printer.format(syntax.parse_expr(query)) == canonical


@logqltest.requires_scripts
def test_conformance_queries_parse_and_round_trip() -> None:
    queries = sorted({c.query for c in logqltest.all_cases() if c.expected.kind != "fail"})
    assert len(queries) >= 358  # distinct queries of the scripts (comments stripped)
    for query in queries:
        assert_round_trip(syntax.parse_expr(query))


# -- generated ASTs -----------------------------------------------------------------------

_RESERVED = {word for word in tokens.KEYWORDS if word.isidentifier()}
names = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(lambda n: n not in _RESERVED)
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)
regexes = st.sampled_from(["a.*", "(?i)err", "x|y", ".+", "\\d{2,3}", "[a-z]+", "(?s).", ""])
ip_patterns = st.sampled_from(["10.0.0.0/8", "1.2.3.4", "::1", "1.2.3.4-1.2.3.9", "2001:db8::/32"])
finite = st.floats(allow_nan=False, allow_infinity=False)
durations = st.integers(-(2**62), 2**62)


@st.composite
def matchers(draw: st.DrawFn, ops: list[ast.MatchOp] | None = None) -> ast.Matcher:
    op = draw(st.sampled_from(ops or list(ast.MatchOp)))
    value = draw(regexes if op in (ast.MatchOp.RE, ast.MatchOp.NRE) else texts)
    return ast.Matcher(draw(names), op, value)


selectors = st.builds(
    lambda first, rest: ast.StreamSelector((first, *rest)),
    st.builds(ast.Matcher, names, st.just(ast.MatchOp.EQ), texts.filter(bool)),
    st.lists(matchers(), max_size=2),
)

compare_ops = st.sampled_from(list(ast.CompareOp))
label_predicates = st.one_of(
    st.builds(ast.StringLabelFilter, matchers()),
    st.builds(ast.NumericLabelFilter, names, compare_ops, finite),
    st.builds(ast.DurationLabelFilter, names, compare_ops, durations),
    st.builds(ast.BytesLabelFilter, names, compare_ops, st.integers(0, 2**53)),  # float64 in Go
    st.builds(
        ast.IPLabelFilter,
        names,
        st.sampled_from([ast.CompareOp.EQ, ast.CompareOp.NEQ]),
        ip_patterns,
    ),
)
label_filters = st.recursive(
    label_predicates,
    lambda inner: (
        st.builds(ast.AndLabelFilter, inner, inner) | st.builds(ast.OrLabelFilter, inner, inner)
    ),
    max_leaves=4,
)


@st.composite
def line_filters(draw: st.DrawFn) -> ast.LineFilter:
    op = draw(st.sampled_from(list(ast.LineFilterOp)))
    if op in (ast.LineFilterOp.MATCH, ast.LineFilterOp.NOT_MATCH):
        values = regexes.map(ast.LineFilterTerm)
    elif op in (ast.LineFilterOp.PATTERN, ast.LineFilterOp.NOT_PATTERN):
        values = st.sampled_from(["<_> GET", "a <_> b", "plain"]).map(ast.LineFilterTerm)
    else:
        values = texts.map(ast.LineFilterTerm) | ip_patterns.map(
            lambda p: ast.LineFilterTerm(p, True)
        )
    first = draw(values)
    return ast.LineFilter(op, first.value, first.ip, tuple(draw(st.lists(values, max_size=2))))


json_paths = st.builds(
    lambda head, steps: head + "".join(steps),
    names,
    st.lists(st.sampled_from([".x", "[0]", '["k"]', "[12]"]), max_size=2),
)
named_matchers = names.map(ast.NamedLabelMatcher) | matchers().map(
    lambda m: ast.NamedLabelMatcher(m.name, m)
)


@st.composite
def label_formats(draw: st.DrawFn) -> ast.LabelFormat:
    targets = draw(
        st.lists(names.filter(lambda n: n != "__error__"), min_size=1, max_size=3, unique=True)
    )
    return ast.LabelFormat(
        tuple(
            ast.LabelFmt(target, draw(names), True)
            if draw(st.booleans())
            else ast.LabelFmt(target, draw(texts), False)
            for target in targets
        )
    )


stages = st.one_of(
    line_filters(),
    st.builds(
        ast.JSONParser,
        st.lists(st.builds(ast.LabelExtraction, names, json_paths), max_size=2).map(tuple),
    ),
    st.builds(
        ast.LogfmtParser,
        st.booleans(),
        st.booleans(),
        st.lists(st.builds(ast.LabelExtraction, names, texts), max_size=2).map(tuple),
    ),
    st.sampled_from(["(?P<a>\\w+)", "(?P<x>.)(y)(?P<z>.)"]).map(ast.RegexpParser),
    st.sampled_from(["<a> - <_> <b>", "x=<x>"]).map(ast.PatternParser),
    st.just(ast.UnpackParser()),
    st.builds(ast.LabelFilterStage, label_filters),
    st.builds(ast.LineFormat, texts),
    label_formats(),
    st.builds(ast.DropLabels, st.lists(named_matchers, min_size=1, max_size=3).map(tuple)),
    st.builds(ast.KeepLabels, st.lists(named_matchers, min_size=1, max_size=3).map(tuple)),
    st.just(ast.Decolorize()),
)


def expressible(pipeline: list[ast.Stage]) -> bool:
    """Whether LogQL can say it: after `drop x` or `keep x`, a `!=`/`!~` line filter would be
    read as the matcher `x != "…"`, in Loki's grammar as here."""
    negated = (ast.LineFilterOp.NOT_CONTAINS, ast.LineFilterOp.NOT_MATCH)
    for stage, following in itertools.pairwise(pipeline):
        if (
            isinstance(stage, ast.DropLabels | ast.KeepLabels)
            and stage.labels[-1].matcher is None
            and isinstance(following, ast.LineFilter)
            and following.op in negated
        ):
            return False
    return True


log_queries = st.builds(
    ast.LogQueryExpr,
    selectors,
    st.lists(stages, max_size=4).filter(expressible).map(tuple),
)


@st.composite
def range_aggregations(draw: st.DrawFn) -> ast.RangeAggregation:
    op = draw(st.sampled_from(list(ast.RangeOp)))
    unwrapped = op not in ast.RANGE_OPS_WITHOUT_UNWRAP or (
        op in ast.RANGE_OPS_WITH_UNWRAP and draw(st.booleans())
    )
    unwrap = None
    if unwrapped:
        unwrap = ast.Unwrap(
            draw(names),
            draw(st.sampled_from(list(ast.UnwrapConversion))),
            tuple(draw(st.lists(label_filters, max_size=2))),
        )
    grouping = None
    if op in ast.RANGE_OPS_WITH_GROUPING and draw(st.booleans()):
        grouping = ast.Grouping(tuple(draw(st.lists(names, max_size=2))), draw(st.booleans()))
    param = None
    if op is ast.RangeOp.QUANTILE_OVER_TIME:
        param = draw(st.floats(0, 1e6, allow_nan=False))
    return ast.RangeAggregation(
        op,
        draw(log_queries),
        draw(st.integers(0, 10**9)) * 1_000_000,
        draw(durations),
        unwrap,
        param,
        grouping,
    )


def vector_aggregations(
    inner: st.SearchStrategy[ast.SampleExpr],
) -> st.SearchStrategy[ast.SampleExpr]:
    @st.composite
    def build(draw: st.DrawFn) -> ast.SampleExpr:
        op = draw(st.sampled_from(list(ast.VectorOp)))
        grouping = ast.Grouping(tuple(draw(st.lists(names, max_size=2))), draw(st.booleans()))
        if op is ast.VectorOp.APPROX_TOPK:
            grouping = ast.Grouping()
        elif op in (ast.VectorOp.SORT, ast.VectorOp.SORT_DESC):
            grouping = ast.Grouping((), grouping.without)
        param = draw(st.integers(1, 100)) if op in ast.VECTOR_OPS_WITH_PARAM else None
        return ast.VectorAggregation(op, draw(inner), grouping, param)

    return build()


def binary_ops(inner: st.SearchStrategy[ast.SampleExpr]) -> st.SearchStrategy[ast.SampleExpr]:
    @st.composite
    def build(draw: st.DrawFn) -> ast.SampleExpr:
        op = draw(st.sampled_from(list(ast.BinOp)))
        lhs, rhs = draw(inner), draw(inner)
        literal_legs = [isinstance(leg, ast.Literal) for leg in (lhs, rhs)]
        if all(literal_legs) or (op.is_set and any(literal_legs)):
            rhs = draw(range_aggregations())
            lhs = rhs if op.is_set else lhs
        card = draw(st.sampled_from(list(ast.Cardinality)))
        labels = tuple(draw(st.lists(names, max_size=2)))
        include = (
            tuple(draw(st.lists(names, max_size=2)))
            if card is not ast.Cardinality.ONE_TO_ONE
            else ()
        )
        on = draw(st.booleans())
        matching = ast.VectorMatching(on, labels, card, include)
        return ast.BinaryOp(op, lhs, rhs, draw(st.booleans()), matching)

    return build()


sample_leaves = st.one_of(
    range_aggregations(),
    finite.map(ast.Literal),
    st.floats(0, 1e300, allow_nan=False).map(ast.VectorLiteral),
)
sample_exprs = st.recursive(
    sample_leaves,
    lambda inner: st.one_of(
        vector_aggregations(inner),
        binary_ops(inner),
        st.builds(ast.LabelReplace, inner, names, texts, names, regexes),
    ),
    max_leaves=5,
)


@settings(max_examples=300, deadline=None)
@given(log_queries)
def test_generated_log_queries_round_trip(expr: ast.LogQueryExpr) -> None:
    assert_round_trip(expr)


@settings(max_examples=300, deadline=None)
@given(sample_exprs)
def test_generated_metric_queries_round_trip(expr: ast.SampleExpr) -> None:
    assert_round_trip(expr)


@given(finite)
def test_literal_text_is_exact(value: float) -> None:
    parsed = syntax.parse_expr(printer.format(ast.Literal(value)))
    assert isinstance(parsed, ast.Literal)
    assert parsed.value == value  # -0 prints as 0: `-0` would lex as a duration, as in Loki
