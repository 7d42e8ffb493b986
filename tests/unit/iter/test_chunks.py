"""A query's pipeline over one chunk: the bulk block path agrees with a per-entry reference."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lokistack.chunk import block, chunk, codec
from lokistack.iter import chunks, entries
from lokistack.logql import syntax
from lokistack.logql.log import pipeline as log_pipeline

STREAM = (("app", "api"),)
Raw = tuple[int, str, block.Metadata]

QUERIES = [
    '{app="api"}',
    '{app="api"} |= "err"',
    '{app="api"} != "err" |= "k"',
    '{app="api"} |~ "e.r"',
    '{app="api"} | logfmt',
    '{app="api"} | logfmt | level="err"',
    '{app="api"} | line_format "{{.app}} {{__line__}}"',
]

line_st = st.sampled_from(
    [
        "level=err k=1",
        "level=info k=2",
        "err",
        "plain text",
        "",
        "ünïcödé err",
        'level=warn msg="x y" took=1.5',
        "k=" + "v" * 30,
    ]
)
entry_st = st.tuples(
    st.integers(0, 40),
    line_st,
    st.sampled_from([(), (("trace", "t1"),), (("trace", "t2"), ("user", "u"))]),
)


def _fill(raw: list[Raw], block_size: int, close: bool) -> tuple[chunk.MemChunk, list[Raw]]:
    """The chunk and the entries it accepted, in arrival order."""
    memchunk = chunk.MemChunk(codec.Encoding.SNAPPY, block_size=block_size, target_size=0)
    accepted = [entry for entry in raw if memchunk.append(*entry)]
    if close:
        memchunk.close()
    return memchunk, accepted


def _reference(
    accepted: list[Raw],
    stream: log_pipeline.StreamPipeline,
    from_ns: int,
    through_ns: int,
    direction: entries.Direction,
) -> list[chunks.ProcessedEntry]:
    """Per entry, in (ts, arrival) order: what the chunk path must return."""
    selected = sorted((e for e in accepted if from_ns <= e[0] < through_ns), key=lambda e: e[0])
    out: list[chunks.ProcessedEntry] = []
    for ts, line, metadata in selected:
        result = stream.process(ts, line, metadata)
        if result is not None:
            out.append((ts, result[0], result[1]))
    return out[::-1] if direction == "backward" else out


def _stream(query: str) -> log_pipeline.StreamPipeline:
    expr = syntax.parse_log_selector(query)
    return log_pipeline.Pipeline.from_ast(expr.stages).for_stream(STREAM)


@settings(max_examples=150, deadline=None)
@given(
    raw=st.lists(entry_st, max_size=80),
    block_size=st.sampled_from([16, 64, 256, 100_000]),
    close=st.booleans(),
    query=st.sampled_from(QUERIES),
    span=st.tuples(st.integers(-5, 45), st.integers(-5, 45)),
    direction=st.sampled_from(["forward", "backward"]),
)
def test_query_chunk_equals_per_entry_reference(
    *,
    raw: list[Raw],
    block_size: int,
    close: bool,
    query: str,
    span: tuple[int, int],
    direction: entries.Direction,
) -> None:
    memchunk, accepted = _fill(raw, block_size, close)
    stream = _stream(query)
    stats = chunks.ScanStats()
    got = chunks.query_chunk(memchunk, stream, span[0], span[1], direction, stats)
    assert got == _reference(accepted, stream, span[0], span[1], direction)
    in_range = [e for e in accepted if span[0] <= e[0] < span[1]]
    assert stats.lines == len(in_range)
    if all(e[1].isascii() for e in in_range):  # the per-entry path counts characters
        assert stats.bytes == sum(len(e[1]) for e in in_range)
    # Samples of line sizes: blocks measured from their offsets (no stage, exact filters, no
    # metadata) and blocks read line by line agree with the entries' UTF-8 sizes.
    sample_stats = chunks.ScanStats()
    samples = chunks.chunk_samples(memchunk, stream, False, span[0], span[1], sample_stats)
    forward = _reference(accepted, stream, span[0], span[1], "forward")
    assert samples == [(labels, ts, float(len(line.encode()))) for ts, line, labels in forward]
    assert (sample_stats.lines, sample_stats.post_filter_lines) == (len(in_range), len(forward))


def _sorted_blocks_with_head() -> tuple[chunk.MemChunk, list[Raw]]:
    raw: list[Raw] = [(ts, f"line {ts} {'err' if ts % 3 == 0 else 'ok'}", ()) for ts in range(60)]
    return _fill(raw, 64, close=False)


def test_several_cut_blocks_and_a_head_in_both_directions() -> None:
    memchunk, _ = _sorted_blocks_with_head()
    assert len(memchunk.blocks) > 3 and len(memchunk.head) > 0
    stream = _stream('{app="api"} |= "err"')
    forward = chunks.query_chunk(memchunk, stream, 10, 50, "forward", chunks.ScanStats())
    assert [ts for ts, _, _ in forward] == [ts for ts in range(10, 50) if ts % 3 == 0]
    backward = chunks.query_chunk(memchunk, stream, 10, 50, "backward", chunks.ScanStats())
    assert backward == forward[::-1]
    assert all(labels == STREAM for _, _, labels in forward)


def test_out_of_order_blocks_are_merged_in_time_order() -> None:
    raw: list[Raw] = [(ts, f"late {ts}", ()) for ts in range(100, 130)]
    raw += [(ts, f"early {ts}", ()) for ts in range(0, 130, 2)]  # overlaps the first blocks
    memchunk, accepted = _fill(raw, 64, close=False)
    spans = [(b.mint, b.maxt) for b in memchunk.blocks]
    assert any(a[1] > b[0] for a, b in itertools.pairwise(spans))
    stream = _stream('{app="api"}')
    for direction in ("forward", "backward"):
        got = chunks.query_chunk(memchunk, stream, 0, 1000, direction, chunks.ScanStats())
        assert got == _reference(accepted, stream, 0, 1000, direction)


def test_post_filter_lines_are_counted_for_out_of_order_blocks() -> None:
    raw: list[Raw] = [(ts, "x" * 20, ()) for ts in (5, 6, 7, 8, 1, 2, 3, 4)]
    memchunk, _ = _fill(raw, 16, close=False)
    stats = chunks.ScanStats()
    got = chunks.query_chunk(memchunk, _stream('{app="api"}'), 0, 10, "forward", stats)
    assert len(got) == 8
    assert stats.post_filter_lines == 8


def test_empty_or_inverted_range_reads_nothing() -> None:
    memchunk, _ = _sorted_blocks_with_head()
    stats = chunks.ScanStats()
    assert chunks.query_chunk(memchunk, _stream('{app="api"}'), 5, 5, "forward", stats) == []
    assert stats == chunks.ScanStats()


@pytest.mark.parametrize("close", [False, True])
def test_samples_are_line_lengths_or_unwrapped_values(close: bool) -> None:
    raw: list[Raw] = [(ts, f"took={ts / 2} msg=ünï", ()) for ts in range(40)]
    raw.append((40, "msg=no-took", ()))
    memchunk, _ = _fill(raw, 64, close)
    stream = _stream('{app="api"}')
    counted = chunks.chunk_samples(memchunk, stream, False, 0, 100, chunks.ScanStats())
    assert [(ts, value) for _, ts, value in counted] == [
        (ts, float(len(line.encode()))) for ts, line, _ in raw
    ]
    expr = syntax.parse_sample_expr('sum_over_time({app="api"} | logfmt | unwrap took [1m])')
    assert isinstance(expr, syntax.ast.RangeAggregation)
    unwrapped = log_pipeline.Pipeline.from_ast(expr.query.stages, expr.unwrap).for_stream(STREAM)
    values = chunks.chunk_samples(memchunk, unwrapped, True, 10, 20, chunks.ScanStats())
    assert [(ts, value) for _, ts, value in values] == [(ts, ts / 2) for ts in range(10, 20)]
    assert all(dict(labels).get("msg") == "ünï" for labels, _, _ in values)
    assert all("took" not in dict(labels) for labels, _, _ in values)
