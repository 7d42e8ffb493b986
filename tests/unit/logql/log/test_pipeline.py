"""Pipeline building, per-entry processing, block processing and sample extraction."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lokistack.chunk import block
from lokistack.logql import syntax
from lokistack.logql.log import pipeline
from lokistack.logql.syntax import ast

STREAM = (("app", "a"), ("env", "prod"))


def build(query: str) -> pipeline.Pipeline:
    expr = syntax.parse_expr(query)
    if isinstance(expr, ast.RangeAggregation):
        return pipeline.Pipeline.from_ast(expr.query.stages, expr.unwrap)
    assert isinstance(expr, ast.LogQueryExpr)
    return pipeline.Pipeline.from_ast(expr.stages)


def test_flags() -> None:
    assert build('{app="a"}').is_noop
    assert build('{app="a"} |= ""').is_noop
    assert build('{app="a"} |= "x"').has_line_filters_only
    assert not build('{app="a"} |= "x"').is_noop
    assert not build('{app="a"} | json').has_line_filters_only


def test_line_filters_only_pass_the_stream_labels_through() -> None:
    pipe = build('{app="a"} |= "err" != "debug"')
    assert pipe.process(1, "an err", STREAM) == ("an err", STREAM)
    assert pipe.process(1, "an err debug", STREAM) is None
    assert pipe.process(1, "an err", STREAM, (("trace", "t1"),)) == (
        "an err",
        (("app", "a"), ("env", "prod"), ("trace", "t1")),
    )


def test_filters_after_a_line_rewrite_see_the_new_line() -> None:
    pipe = build('{app="a"} |= "x" | line_format "L={{.env}}" |= "L=prod"')
    assert pipe.process(1, "x", STREAM) == ("L=prod", STREAM)
    assert pipe.process(1, "y", STREAM) is None
    assert build('{app="a"} | line_format "{{.env}}" |= "x"').process(1, "x", STREAM) is None


def test_metadata_is_visible_to_stages() -> None:
    pipe = build('{app="a"} | lvl="error"')
    assert pipe.process(1, "m", STREAM, (("lvl", "error"),)) == (
        "m",
        (("app", "a"), ("env", "prod"), ("lvl", "error")),
    )
    assert pipe.process(1, "m", STREAM, (("lvl", "info"),)) is None


@pytest.mark.parametrize(
    ("query", "line", "expected"),
    [
        ('sum_over_time({app="a"} | logfmt | unwrap v [1m])', "v=2.5 k=x", (2.5, {"k": "x"})),
        ('sum_over_time({app="a"} | logfmt | unwrap duration(d) [1m])', "d=1h30m", (5400.0, {})),
        (
            'sum_over_time({app="a"} | logfmt | unwrap duration_seconds(d) [1m])',
            "d=-5s",
            (-5.0, {}),
        ),
        ('sum_over_time({app="a"} | logfmt | unwrap bytes(b) [1m])', "b=2,048", (2048.0, {})),
        ('sum_over_time({app="a"} | logfmt | unwrap bytes(b) [1m])', "b=1.5B", (1.0, {})),
        ('sum_over_time({app="a"} | logfmt | unwrap v [1m])', "other=1", None),
        ('sum_over_time({app="a"} | logfmt --keep-empty | unwrap v [1m])', "v=", None),
        ('sum_over_time({app="a"} | logfmt | unwrap v | k="y" [1m])', "v=1 k=x", None),
        ('sum_over_time({app="a"} |= "nope" | logfmt | unwrap v [1m])', "v=1", None),
    ],
)
def test_extract_sample(
    query: str, line: str, expected: tuple[float, dict[str, str]] | None
) -> None:
    result = build(query).extract_sample(1, line, STREAM)
    if expected is None:
        assert result is None
        return
    assert result is not None
    assert result[0] == expected[0]
    assert dict(result[1]) == {"app": "a", "env": "prod", **expected[1]}


def test_extract_sample_conversion_error_keeps_the_label() -> None:
    result = build('sum_over_time({app="a"} | logfmt | unwrap duration(d) [1m])').extract_sample(
        1, "d=1d", STREAM
    )
    assert result is not None
    labels = dict(result[1])
    assert labels["__error__"] == "SampleExtractionErr"
    assert labels["__error_details__"] == 'time: unknown unit "d" in duration "1d"'
    assert labels["d"] == "1d"
    dropped = build(
        'sum_over_time({app="a"} | logfmt | unwrap duration(d) | __error__="" [1m])'
    ).extract_sample(1, "d=1d", STREAM)
    assert dropped is None


def test_extract_sample_needs_an_unwrap() -> None:
    with pytest.raises(ValueError, match="unwrap"):
        build('{app="a"} | json').extract_sample(1, "{}", STREAM)


def make_block(
    lines: list[str], metadata: list[block.Metadata] | None = None
) -> block.DecodedBlock:
    timestamps = list(range(100, 100 + len(lines)))
    return block.DecodedBlock(block.encode_payload(timestamps, lines, metadata))


QUERIES = [
    '{app="a"}',
    '{app="a"} |= "ab"',
    '{app="a"} |= "ab" |= "b"',
    '{app="a"} |= "a" or "c" != "bc"',
    '{app="a"} !~ "a.c"',
    '{app="a"} |~ "ab+c"',
    '{app="a"} |> "<_>b<_>"',
    '{app="a"} |= "é"',
    '{app="a"} | logfmt | a="1"',
    '{app="a"} |= "a" | line_format "{{.env}}" |= "prod"',
]


@given(
    st.sampled_from(QUERIES),
    st.lists(st.text(alphabet="abcé =1", max_size=10), min_size=1, max_size=30),
    st.data(),
)
@settings(max_examples=200, deadline=None)
def test_process_block_equals_processing_each_entry(
    query: str, lines: list[str], data: st.DataObject
) -> None:
    with_metadata = data.draw(st.booleans())
    metadata: list[block.Metadata] | None = (
        [(("m", str(i % 2)),) if i % 3 else () for i in range(len(lines))]
        if with_metadata
        else None
    )
    decoded = make_block(lines, metadata)
    start = data.draw(st.integers(0, len(lines)))
    stop = data.draw(st.integers(start, len(lines)))
    pipe = build(query)
    expected = []
    for index in range(start, stop):
        entry_metadata = metadata[index] if metadata else ()
        result = pipe.process(100 + index, lines[index], STREAM, entry_metadata)
        if result is not None:
            expected.append((100 + index, result[0], result[1]))
    assert pipe.process_block(decoded, STREAM, range(start, stop)) == expected
    sizes = pipe.for_stream(STREAM).block_line_sizes(decoded, range(start, stop))
    if sizes is not None:  # the pipeline needs no line: sizes come from the offsets
        assert sizes == [(labels, ts, float(len(line.encode()))) for ts, line, labels in expected]


@pytest.mark.parametrize(
    ("query", "measured"),
    [
        ('{app="a"}', True),
        ('{app="a"} |= "ab" != "c"', True),  # literal filters: the block scan is exact
        ('{app="a"} |~ "ab+c"', False),  # a regex test runs on each line
        ('{app="a"} | logfmt', False),
        ('{app="a"} | line_format "{{.app}}"', False),
    ],
)
def test_block_line_sizes_only_when_lines_are_not_needed(query: str, measured: bool) -> None:
    stream = build(query).for_stream(STREAM)
    plain = make_block(["ab", "abc", "é ab"])
    assert (stream.block_line_sizes(plain, range(3)) is not None) is measured
    with_metadata = make_block(["ab", "abc", "é ab"], [(), (("m", "1"),), ()])
    assert stream.block_line_sizes(with_metadata, range(3)) is None
    if measured and query == '{app="a"}':
        assert stream.block_line_sizes(plain, range(1, 3)) == [
            (STREAM, 101, 3.0),
            (STREAM, 102, 5.0),
        ]


def test_process_block_defaults_to_the_whole_block() -> None:
    decoded = make_block(["x needle", "y", "z needle"])
    assert build('{app="a"} |= "needle"').process_block(decoded, STREAM) == [
        (100, "x needle", STREAM),
        (102, "z needle", STREAM),
    ]


def test_for_stream_is_cached() -> None:
    pipe = build('{app="a"} | json')
    assert pipe.for_stream(STREAM) is pipe.for_stream(STREAM)
