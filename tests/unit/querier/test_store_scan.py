"""Reading a window's chunks: which chunks are de-duplicated together, and the samples they give.

The store's behaviour over whole queries (every entry once, replica copies dropped) is checked
against a reference in ``test_store.py``; these tests pin the grouping that decides when the
copy-dropping work is needed at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from lokistack.chunk import chunk as chunk_mod
from lokistack.chunk import codec
from lokistack.iter import chunks as iter_chunks
from lokistack.logql.log import pipeline as log_pipeline
from lokistack.logql.syntax import parser
from lokistack.model import labels as model_labels
from lokistack.querier import store_plan, store_scan
from lokistack.storage import index_reader

API = model_labels.parse_labels('{app="api"}')
WEB = model_labels.parse_labels('{app="web"}')


def _chunk(
    key: str, labels: model_labels.Labels, rows: Sequence[tuple[int, str]]
) -> tuple[store_plan.Chunk, chunk_mod.MemChunk]:
    memchunk = chunk_mod.MemChunk(codec.Encoding.SNAPPY, block_size=256)
    for ts, line in rows:
        memchunk.append(ts, line, ())
    memchunk.close()
    ref = index_reader.ChunkRef(key, memchunk.mint, memchunk.maxt, 0, memchunk.num_entries)
    return store_plan.Chunk(ref, hash(labels), labels), memchunk


def _window(
    members: Sequence[tuple[store_plan.Chunk, chunk_mod.MemChunk]],
) -> tuple[store_plan.Window, dict[str, chunk_mod.MemChunk]]:
    """A window over everything, its chunks already decoded (as carried chunks are)."""
    window = store_plan.Window(0, 10**6, [chunk for chunk, _ in members])
    return window, {chunk.ref.key: mem for chunk, mem in members}


def _keys(groups: list[list[store_scan.Member]]) -> list[list[str]]:
    return [[chunk.ref.key for chunk, _ in group] for group in groups]


def test_chunks_that_share_no_timestamp_are_read_alone() -> None:
    members = [
        _chunk("c", API, [(300, "e"), (400, "f")]),
        _chunk("a", API, [(100, "a"), (200, "b")]),
        _chunk("b", API, [(201, "c"), (299, "d")]),
        _chunk("w", WEB, [(100, "a"), (200, "b")]),
    ]
    groups = store_scan._copy_groups(*_window(members))
    assert _keys(groups) == [["a"], ["b"], ["c"], ["w"]]  # per series, in time order


def test_overlapping_chunks_are_grouped_transitively() -> None:
    members = [
        _chunk("a", API, [(100, "a"), (200, "b")]),
        _chunk("b", API, [(200, "b"), (300, "c")]),  # shares 200 with a: a copy is possible
        _chunk("c", API, [(250, "x"), (500, "d")]),  # overlaps b only
        _chunk("d", API, [(501, "e"), (600, "f")]),
    ]
    groups = store_scan._copy_groups(*_window(members))
    assert _keys(groups) == [["a", "b", "c"], ["d"]]


def test_samples_drop_copies_only_where_chunks_overlap() -> None:
    members = [
        _chunk("a", API, [(100, "a"), (200, "b")]),
        _chunk("b", API, [(200, "b"), (300, "c")]),
        _chunk("d", API, [(400, "d"), (500, "e")]),
        _chunk("e", API, [(501, "e"), (600, "é")]),
    ]
    window, decoded = _window(members)
    query = parser.parse_log_selector('{app="api"}')
    pipeline = log_pipeline.Pipeline.from_ast(query.stages)
    scan = iter_chunks.ScanStats()
    rows, duplicates = store_scan.scan_samples(window, decoded, pipeline, False, scan)
    assert duplicates == 1
    assert [(ts, value) for _, ts, value in rows] == [
        (100, 1.0),
        (200, 1.0),
        (300, 1.0),
        (400, 1.0),
        (500, 1.0),
        (501, 1.0),
        (600, 2.0),  # the UTF-8 length
    ]
    assert scan.lines == 8
