"""StoreQuerier over real chunk objects and index files, with three differently cut replicas.

The data is written as ingesters flush it: each replica cuts every stream into its own chunks
(different sizes and offsets, one replica missing a stretch of entries), puts them in a
filesystem object store, records them in its own index head and ships a sealed index file.
Results are compared with a naive reference that runs the pipeline over each distinct entry.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
import pathlib
import random

import pytest
from lokistack.chunk import chunk as chunk_mod
from lokistack.chunk import codec
from lokistack.iter import entries
from lokistack.loghttp import encoding
from lokistack.logql.log import pipeline as log_pipeline
from lokistack.logql.syntax import ast, parser
from lokistack.model import fingerprint as model_fingerprint
from lokistack.model import labels as model_labels
from lokistack.querier import chunk_cache, store, store_scan
from lokistack.storage import (
    chunk_keys,
    chunk_store,
    filesystem,
    index_format,
    index_reader,
    index_shipper,
)

T0 = 19_723 * index_format.DAY_NS + 3_600 * 10**9
SECOND = 10**9
TENANT = "tenant-a"
STREAMS = ['{app="api", env="prod"}', '{app="api", env="dev"}', '{app="web"}']
# (entries per chunk, offset of the first cut, entries this replica never received)
REPLICAS = [(37, 0, range(0)), (53, 20, range(0)), (71, 5, range(100, 121))]

Raw = tuple[int, str, tuple[tuple[str, str], ...]]


def _dataset() -> dict[str, list[Raw]]:
    rng = random.Random(7)
    data: dict[str, list[Raw]] = {}
    for number, text in enumerate(STREAMS):
        rows: list[Raw] = []
        ts = T0 + number * 1_000
        for index in range(260):
            ts += rng.randrange(1, 20) * SECOND // 2
            level = rng.choice(["info", "info", "debug", "error"])
            payload: dict[str, object] = {
                "level": level,
                "status": rng.choice([200, 200, 404, 500, 503]),
                "msg": f"request {index} {'é' * (index % 3)}",
            }
            if index % 4:
                payload["latency"] = "abc" if index == 77 else round(rng.random() * 3, 3)
            metadata = (("trace_id", f"t{index}"),) if index % 10 == 0 else ()
            rows.append((ts, json.dumps(payload), metadata))
            if number == 0 and index % 50 == 3:  # same timestamp, another line
                rows.append((ts, json.dumps({"level": level, "msg": f"twin {index}"}), ()))
        data[text] = rows
    return data


DATA = _dataset()
FIRST = min(rows[0][0] for rows in DATA.values())
LAST = max(rows[-1][0] for rows in DATA.values())


@dataclasses.dataclass
class Written:
    querier: store.StoreQuerier
    objects: filesystem.FilesystemStore
    keys: list[str]
    tmp_path: pathlib.Path

    def with_batch(self, batch_size: int, cache_bytes: int = 0) -> store.StoreQuerier:
        return store.StoreQuerier(
            self.querier.index,
            self.querier.chunks,
            chunk_cache.ChunkCache(cache_bytes),
            fetch_parallelism=4,
            batch_size=batch_size,
        )


async def _write(tmp_path: pathlib.Path) -> Written:
    objects = filesystem.FilesystemStore(tmp_path / "objects")
    chunks = chunk_store.ChunkStore(objects)
    keys: set[str] = set()
    for replica, (size, offset, missing) in enumerate(REPLICAS):
        shipper = index_shipper.IndexShipper(
            objects,
            tmp_path / f"ingester-{replica}",
            f"ingester-{replica}",
            datetime.timedelta(minutes=15),
            clock=lambda: T0 / 1e9 + 7_200,
        )
        for text, rows in DATA.items():
            canonical = model_labels.canonical(model_labels.parse_labels(text))
            fp = model_fingerprint.fingerprint(canonical)
            kept = [row for index, row in enumerate(rows) if index not in missing]
            cuts = [0, *range(offset or size, len(kept), size), len(kept)]
            for start, end in itertools.pairwise(cuts):
                if start == end:
                    continue
                memchunk = chunk_mod.MemChunk(codec.Encoding.SNAPPY, block_size=1024)
                for ts, line, metadata in kept[start:end]:
                    memchunk.append(ts, line, metadata)
                memchunk.close()
                data = memchunk.encode()
                key = await chunks.put_chunk(
                    TENANT, fp, memchunk.mint, memchunk.maxt, chunk_keys.chunk_checksum(data), data
                )
                keys.add(key)
                await shipper.head.add_chunk(
                    TENANT,
                    fp,
                    canonical,
                    memchunk.mint,
                    memchunk.maxt,
                    key,
                    len(data),
                    memchunk.num_entries,
                )
        await shipper.seal_and_upload()
        shipper.head.close()
    reader = index_reader.IndexReader(objects, tmp_path / "index-cache")
    querier = store.StoreQuerier(reader, chunks, chunk_cache.ChunkCache(64 << 20))
    return Written(querier, objects, sorted(keys), tmp_path)


@pytest.fixture
async def written(tmp_path: pathlib.Path) -> Written:
    return await _write(tmp_path)


def _selected(query: ast.LogQueryExpr) -> list[tuple[model_labels.Labels, list[Raw]]]:
    out = []
    for text, rows in DATA.items():
        labels = model_labels.parse_labels(text)
        if all(m.matches(model_labels.get(labels, m.name)) for m in query.matchers):
            out.append((labels, rows))
    return out


def reference_logs(
    text: str, from_ns: int, through_ns: int, direction: entries.Direction
) -> list[entries.Entry]:
    query = parser.parse_log_selector(text)
    pipeline = log_pipeline.Pipeline.from_ast(query.stages)
    found = []
    for labels, rows in _selected(query):
        for ts, line, metadata in rows:
            if from_ns <= ts < through_ns:
                result = pipeline.process(ts, line, labels, metadata)
                if result is not None:
                    found.append(entries.Entry(result[1], ts, result[0]))
    found.sort(key=lambda e: (e.ts, e.labels), reverse=direction == "backward")
    return found


def reference_samples(
    query: ast.LogQueryExpr, unwrap: ast.Unwrap | None, from_ns: int, through_ns: int
) -> list[tuple[model_labels.Labels, int, float]]:
    pipeline = log_pipeline.Pipeline.from_ast(query.stages, unwrap)
    found = []
    for labels, rows in _selected(query):
        for ts, line, metadata in rows:
            if not from_ns <= ts < through_ns:
                continue
            if unwrap is not None:
                sample = pipeline.extract_sample(ts, line, labels, metadata)
                if sample is not None:
                    found.append((sample[1], ts, sample[0]))
            else:
                result = pipeline.process(ts, line, labels, metadata)
                if result is not None:
                    found.append((result[1], ts, float(len(result[0].encode()))))
    return sorted(found)


def _keys(found: list[entries.Entry]) -> list[tuple[int, model_labels.Labels]]:
    return [(e.ts, e.labels) for e in found]


def _assert_logs(found: list[entries.Entry], expected: list[entries.Entry], limit: int) -> None:
    """Same (ts, labels) sequence; same entries, or for a limit a subset (which of several
    entries sharing the last (ts, labels) make the cut is not specified)."""
    assert _keys(found) == _keys(expected[:limit] if limit else expected)
    assert len(set(found)) == len(found)  # each entry once
    if limit:
        assert set(found) <= set(expected)
    else:
        assert sorted(found) == sorted(expected)


async def _logs(  # noqa: PLR0917
    querier: store.StoreQuerier,
    text: str,
    from_ns: int,
    through_ns: int,
    direction: entries.Direction,
    limit: int,
    stats: encoding.Stats | None = None,
) -> list[entries.Entry]:
    return await querier.select_logs(
        TENANT,
        parser.parse_log_selector(text),
        from_ns,
        through_ns,
        direction,
        limit,
        stats if stats is not None else encoding.Stats(),
    )


@pytest.mark.parametrize("direction", ["forward", "backward"])
async def test_every_entry_once_in_order(written: Written, direction: entries.Direction) -> None:
    stats = encoding.Stats()
    found = await _logs(written.querier, '{app=~".+"}', FIRST, LAST + 1, direction, 0, stats)
    expected = reference_logs('{app=~".+"}', FIRST, LAST + 1, direction)
    assert len(expected) == sum(len(rows) for rows in DATA.values())
    _assert_logs(found, expected, 0)
    assert stats.store.total_chunks_ref == len(written.keys)
    assert stats.store.total_chunks_downloaded == len(written.keys)
    assert stats.store.total_duplicates > len(expected)  # three copies of almost everything
    assert stats.store.decompressed_lines == len(expected) + stats.store.total_duplicates
    assert stats.store.post_filter_lines == stats.store.decompressed_lines


async def test_windows_limits_and_ranges_match_the_reference(written: Written) -> None:
    rng = random.Random(11)
    span = LAST - FIRST
    for batch_size in (1, 2, 5, 50):
        querier = written.with_batch(batch_size, cache_bytes=64 << 20)
        for _ in range(6):
            from_ns = FIRST + rng.randrange(-span // 10, span)
            through_ns = from_ns + rng.randrange(1, span // 2)
            direction: entries.Direction = rng.choice(["forward", "backward"])
            limit = rng.choice([0, 1, 7, 100, 400])
            text = rng.choice(['{app="api"}', '{app=~".+"}', '{env="prod"}'])
            found = await _logs(querier, text, from_ns, through_ns, direction, limit)
            expected = reference_logs(text, from_ns, through_ns, direction)
            _assert_logs(found, expected, limit)


async def test_exact_range_bounds(written: Written) -> None:
    ts = DATA[STREAMS[2]][100][0]
    found = await _logs(written.querier, '{app="web"}', ts, ts + 1, "forward", 0)
    assert [e.ts for e in found] == [ts]
    assert await _logs(written.querier, '{app="web"}', ts + 1, ts + 1, "forward", 0) == []
    before = await _logs(written.querier, '{app="web"}', FIRST, ts, "backward", 1)
    assert before[0].ts == DATA[STREAMS[2]][99][0]


async def test_small_limit_reads_few_chunks(written: Written) -> None:
    querier = written.with_batch(5)
    for direction in ("forward", "backward"):
        stats = encoding.Stats()
        found = await _logs(querier, '{app=~".+"}', FIRST, LAST + 1, direction, 5, stats)
        assert _keys(found) == _keys(reference_logs('{app=~".+"}', FIRST, LAST + 1, direction))[:5]
        assert stats.store.total_chunks_ref == len(written.keys)
        assert stats.store.total_chunks_downloaded <= 12 < len(written.keys)
        # Only the first blocks of those chunks are decoded.
        assert stats.store.decompressed_lines < 200


@pytest.mark.parametrize(
    "text",
    [
        '{app="api"} |= "error"',
        '{app=~".+"} != "info" |~ "request [0-9]+5 "',
        '{app=~".+"} | json | status >= 500 and level != "debug"',
        '{env="prod"} | json | line_format "{{.level}} {{.msg}}"',
        '{app="web"} | logfmt | __error__ != ""',
    ],
)
@pytest.mark.parametrize("direction", ["forward", "backward"])
async def test_pipelines_match_the_reference(
    written: Written, text: str, direction: entries.Direction
) -> None:
    for batch_size, limit in ((3, 0), (50, 0), (4, 25)):
        querier = written.with_batch(batch_size)
        found = await _logs(querier, text, FIRST, LAST + 1, direction, limit)
        _assert_logs(found, reference_logs(text, FIRST, LAST + 1, direction), limit)


async def test_structured_metadata_becomes_labels(written: Written) -> None:
    found = await _logs(written.querier, '{app="web"}', FIRST, LAST + 1, "forward", 0)
    traced = [e for e in found if model_labels.get(e.labels, "trace_id")]
    assert len(traced) == 26
    assert traced[0].labels == (("app", "web"), ("trace_id", "t0"))


def _sample_query(text: str) -> tuple[ast.LogQueryExpr, ast.Unwrap | None]:
    expr = parser.parse_sample_expr(
        f"sum_over_time({text} [1m])" if "unwrap" in text else f"count_over_time({text} [1m])"
    )
    assert isinstance(expr, ast.RangeAggregation)
    return expr.query, expr.unwrap


@pytest.mark.parametrize(
    "text",
    [
        '{app=~".+"}',
        '{app="api"} |= "error" | json | status >= 500',
        '{app=~".+"} | json | unwrap latency',
        '{app=~".+"} | json | unwrap latency | __error__ = ""',
        '{env="prod"} | json | level="info" | unwrap status',
    ],
)
async def test_samples_match_the_reference(written: Written, text: str) -> None:
    query, unwrap = _sample_query(text)
    rng = random.Random(3)
    ranges = [(FIRST, LAST + 1)] + [
        (start, start + rng.randrange(SECOND, (LAST - FIRST) // 2))
        for start in (FIRST + rng.randrange(0, LAST - FIRST) for _ in range(3))
    ]
    for batch_size in (2, 7, 50):
        querier = written.with_batch(batch_size, cache_bytes=64 << 20)
        for from_ns, through_ns in ranges:
            stats = encoding.Stats()
            batches = [
                batch
                async for batch in querier.select_samples(
                    TENANT, query, unwrap, from_ns, through_ns, stats
                )
            ]
            rows = [row for batch in batches for row in batch]
            assert sorted(rows) == reference_samples(query, unwrap, from_ns, through_ns)
            last_seen: dict[model_labels.Labels, int] = {}
            for labels, ts, _ in rows:  # each series in time order
                assert ts >= last_seen.get(labels, ts)
                last_seen[labels] = ts
            if batch_size == 2 and from_ns == FIRST:
                assert len(batches) > 3  # bounded batches, not one big list
                assert stats.store.total_duplicates > 0


async def test_corrupt_chunk_fails_the_query_naming_it(written: Written) -> None:
    key = written.keys[len(written.keys) // 2]
    path = written.objects.path_for(key)
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF  # inside the first block: its CRC no longer matches
    path.write_bytes(bytes(data))
    querier = written.with_batch(50)
    with pytest.raises(store_scan.CorruptChunkError, match=f"chunk {key} is corrupt"):
        await _logs(querier, '{app=~".+"}', FIRST, LAST + 1, "forward", 0)
    query, unwrap = _sample_query('{app=~".+"}')
    with pytest.raises(store_scan.CorruptChunkError, match=key):
        async for _ in querier.select_samples(
            TENANT, query, unwrap, FIRST, LAST + 1, encoding.Stats()
        ):
            pass
    path.write_bytes(bytes(data[:10]))  # truncated: the header no longer checks
    with pytest.raises(store_scan.CorruptChunkError, match="too short"):
        await _logs(querier, '{app=~".+"}', FIRST, LAST + 1, "backward", 0)


async def test_cache_serves_a_repeated_query(written: Written) -> None:
    querier = written.with_batch(50, cache_bytes=64 << 20)
    first = encoding.Stats()
    await _logs(querier, '{app="web"}', FIRST, LAST + 1, "forward", 0, first)
    second = encoding.Stats()
    await _logs(querier, '{app="web"}', FIRST, LAST + 1, "forward", 0, second)
    assert first.cache("chunk").entries_found == 0
    downloaded = first.store.total_chunks_downloaded
    assert second.cache("chunk").entries_found == second.store.total_chunks_downloaded
    assert second.store.total_chunks_downloaded == downloaded > 0


async def test_labels_series_and_index_stats(written: Written) -> None:
    querier = written.querier
    everything = (FIRST, LAST + 1)
    api = parser.parse_log_selector('{app="api"}').matchers
    assert await querier.label_names(TENANT, *everything, ()) == ["app", "env"]
    assert await querier.label_names(TENANT, *everything, api) == ["app", "env"]
    web = parser.parse_log_selector('{app="web"}').matchers
    assert await querier.label_names(TENANT, *everything, web) == ["app"]
    assert await querier.label_values(TENANT, "env", *everything, ()) == ["dev", "prod"]
    assert await querier.label_values(TENANT, "app", *everything, api) == ["api"]
    assert await querier.label_values(TENANT, "nope", *everything, ()) == []
    all_series = sorted(model_labels.parse_labels(text) for text in STREAMS)
    assert await querier.series(TENANT, *everything, []) == all_series
    prod = parser.parse_log_selector('{env="prod"}').matchers
    assert await querier.series(TENANT, *everything, [web, prod]) == [
        (("app", "api"), ("env", "prod")),
        (("app", "web"),),
    ]
    assert await querier.series(TENANT, LAST + 1, LAST + SECOND, []) == []
    assert await querier.label_names("tenant-b", *everything, ()) == []

    streams, chunks, size, count = await querier.index_stats(TENANT, *everything, ())
    assert (streams, chunks) == (3, len(written.keys))
    assert size == sum(written.objects.path_for(k).stat().st_size for k in written.keys)
    assert count > sum(len(rows) for rows in DATA.values()) * 2  # replicas count again
    assert await querier.index_stats(TENANT, LAST + 1, LAST + 2, ()) == (0, 0, 0, 0)


@pytest.mark.parametrize("batch_size", [1, 50])
async def test_entries_sharing_a_timestamp_keep_arrival_order(
    written: Written, batch_size: int
) -> None:
    rows = DATA[STREAMS[0]]
    twins = [(a, b) for a, b in itertools.pairwise(rows) if a[0] == b[0]]
    assert len(twins) == 6
    querier = written.with_batch(batch_size)
    forward = await _logs(querier, '{env="prod"}', FIRST, LAST + 1, "forward", 0)
    backward = await _logs(querier, '{env="prod"}', FIRST, LAST + 1, "backward", 0)
    for first, second in twins:
        at = first[0]
        assert [e.line for e in forward if e.ts == at] == [first[1], second[1]]
        assert [e.line for e in backward if e.ts == at] == [second[1], first[1]]
