"""The ingester's Querier service over real tenant instances, through a real gRPC server.

Expected results come from a per-entry reference: every pushed entry run through the same
pipeline one by one, ordered by (timestamp, labels) in the query's direction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import random
import typing
from collections.abc import AsyncIterator

import grpc
import pytest
from lokistack import config, limits
from lokistack.chunk import codec as chunk_codec
from lokistack.ingester import instance, query
from lokistack.ingester import stream as stream_mod
from lokistack.iter import entries
from lokistack.logql import syntax
from lokistack.logql.log import pipeline as log_pipeline
from lokistack.model import labels as model_labels
from lokistack.proto import push_pb2, querier_pb2, querier_pb2_grpc

# Small blocks and chunks, so streams have several chunks of several blocks plus a head.
SHAPE = stream_mod.ChunkShape(chunk_codec.Encoding.SNAPPY, 256, 1024, 2 * 3600 * 10**9)
BASE = 1_700_000_000 * 10**9
SECOND = 10**9
TENANT = (("x-scope-orgid", "t"),)
STREAMS = ('{app="api", pod="a"}', '{app="api", pod="b"}', '{app="web", pod="c"}')
Pushed = tuple[str, int, str]  # stream labels, ts, line


def _line(stream: int, i: int) -> str:
    level = "error" if i % 4 == 0 else "info"
    return json.dumps({"level": level, "took": f"{i / 4}", "msg": f"s{stream} entry {i}"})


def _request(entries_by_stream: dict[str, list[tuple[int, str]]]) -> push_pb2.PushRequest:
    request = push_pb2.PushRequest()
    for labels, rows in entries_by_stream.items():
        stream = request.streams.add(labels=labels)
        for ts, line in rows:
            entry = stream.entries.add(line=line)
            entry.timestamp.seconds, entry.timestamp.nanos = divmod(ts, SECOND)
    return request


@dataclasses.dataclass
class Served:
    tenant: instance.TenantInstance
    service: query.QueryService
    stub: querier_pb2_grpc.QuerierAsyncStub
    pushed: list[Pushed]

    def push(self, rows: dict[str, list[tuple[int, str]]]) -> None:
        records, error = self.tenant.push(_request(rows))
        assert error is None
        self.service.on_records("t", records)
        self.pushed.extend((labels, ts, line) for labels, lst in rows.items() for ts, line in lst)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    overrides = limits.Overrides(
        config.Limits(per_stream_rate_limit=1 << 30, per_stream_rate_limit_burst=1 << 30)
    )
    tenant = instance.TenantInstance("t", overrides, lambda: 1, 1, SHAPE)
    service = query.QueryService({"t": tenant})
    server = grpc.aio.server()
    querier_pb2_grpc.add_QuerierServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = typing.cast("querier_pb2_grpc.QuerierAsyncStub", querier_pb2_grpc.QuerierStub(channel))
    result = Served(tenant, service, stub, [])
    # Stream a and c in time order; stream b written out of order, so that its chunks overlap.
    result.push({STREAMS[0]: [(BASE + i * SECOND, _line(0, i)) for i in range(60)]})
    result.push({STREAMS[1]: [(BASE + i * SECOND, _line(1, i)) for i in range(30, 60)]})
    result.push({STREAMS[1]: [(BASE + i * SECOND, _line(1, i)) for i in range(0, 30)]})
    result.push({STREAMS[2]: [(BASE + i * SECOND + 1, _line(2, i)) for i in range(20)]})
    try:
        yield result
    finally:
        await channel.close()
        await server.stop(None)


def _reference(  # noqa: PLR0917 (the query's parameters, in the request's order)
    pushed: list[Pushed],
    text: str,
    start: int,
    end: int,
    direction: entries.Direction,
    limit: int,
) -> list[entries.Entry]:
    expr = syntax.parse_log_selector(text)
    pipeline = log_pipeline.Pipeline.from_ast(expr.stages)
    found = []
    for labels_text, ts, line in pushed:
        labels = model_labels.parse_labels(labels_text)
        values = dict(labels)
        if not (start <= ts < end) or not all(
            m.matches(values.get(m.name, "")) for m in expr.matchers
        ):
            continue
        result = pipeline.for_stream(labels).process(ts, line)
        if result is not None:
            found.append(entries.Entry(result[1], ts, result[0]))
    found.sort(key=lambda e: (e.ts, e.labels), reverse=direction == "backward")
    return found[:limit] if limit else found


async def _query(
    served: Served,
    text: str,
    direction: entries.Direction = "forward",
    limit: int = 0,
    end: int = BASE + 100 * SECOND,
) -> tuple[list[entries.Entry], querier_pb2.QueryStats]:
    request = querier_pb2.QueryRequest(
        selector=text,
        limit=limit,
        start=BASE,
        end=end,
        direction=querier_pb2.BACKWARD if direction == "backward" else querier_pb2.FORWARD,
    )
    found: list[entries.Entry] = []
    stats = querier_pb2.QueryStats()
    async for response in served.stub.Query(request, metadata=TENANT):
        for batch in response.batches:
            labels = tuple((p.name, p.value) for p in batch.labels)
            assert len(batch.timestamps) == len(batch.lines)
            found.extend(
                entries.Entry(labels, ts, line)
                for ts, line in zip(batch.timestamps, batch.lines, strict=True)
            )
        for field in ("lines_processed", "bytes_processed", "chunks_matched", "post_filter_lines"):
            setattr(stats, field, getattr(stats, field) + getattr(response.stats, field))
    return found, stats


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("limit", [0, 1, 7, 1000])
@pytest.mark.parametrize(
    "text",
    [
        '{app="api"}',
        '{app=~"api|web"}',
        '{pod!="a", app=~".+"}',
        '{app="api"} |= "error"',
        '{app="api"} | json | level="error"',
        '{app="api", pod="b"} | json | line_format "{{.msg}}"',
    ],
)
async def test_log_queries_match_the_per_entry_reference(
    served: Served, text: str, limit: int, direction: entries.Direction
) -> None:
    got, _ = await _query(served, text, direction, limit)
    assert got == _reference(served.pushed, text, BASE, BASE + 100 * SECOND, direction, limit)


async def test_streams_have_overlapping_chunks_and_stats_are_reported(served: Served) -> None:
    stream_b = next(s for s in served.tenant.streams.values() if s.labels == STREAMS[1])
    spans = sorted((d.chunk.mint, d.chunk.maxt) for d in stream_b.chunks)
    assert len(spans) > 2
    assert any(a[1] > b[0] for a, b in itertools.pairwise(spans))
    got, stats = await _query(served, '{app="api"} | json | level="error"')
    assert len(got) == 30
    assert {dict(e.labels)["level"] for e in got} == {"error"}
    assert stats.lines_processed == 120
    assert stats.bytes_processed > 0
    assert stats.chunks_matched == sum(
        len(s.chunks) for s in served.tenant.streams.values() if 'app="api"' in s.labels
    )


async def test_large_results_come_in_several_responses_in_order(served: Served) -> None:
    rows = [(BASE + 200 * SECOND + i, f"bulk {i}") for i in range(2500)]
    served.push({'{app="bulk"}': rows})
    request = querier_pb2.QueryRequest(selector='{app="bulk"}', start=BASE, end=BASE + 300 * SECOND)
    responses = [r async for r in served.stub.Query(request, metadata=TENANT)]
    assert len(responses) >= 3
    timestamps = [ts for r in responses for b in r.batches for ts in b.timestamps]
    assert timestamps == [ts for ts, _ in rows]


async def _samples(served: Served, text: str) -> dict[model_labels.Labels, list[tuple[int, float]]]:
    request = querier_pb2.SampleQueryRequest(selector=text, start=BASE, end=BASE + 100 * SECOND)
    series: dict[model_labels.Labels, list[tuple[int, float]]] = {}
    async for response in served.stub.QuerySample(request, metadata=TENANT):
        for batch in response.batches:
            assert list(batch.timestamps) == sorted(batch.timestamps)
            labels = tuple((p.name, p.value) for p in batch.labels)
            series.setdefault(labels, []).extend(zip(batch.timestamps, batch.values, strict=True))
    return series


async def test_samples_without_unwrap_are_line_lengths(served: Served) -> None:
    series = await _samples(served, 'sum(count_over_time({app="api"} |= "error" [1m]))')
    assert set(series) == {model_labels.parse_labels(s) for s in STREAMS[:2]}
    for labels, samples in series.items():
        expected = sorted(
            (ts, float(len(line)))
            for text, ts, line in served.pushed
            if model_labels.parse_labels(text) == labels and "error" in line
        )
        assert samples == expected


async def test_samples_with_unwrap_are_extracted_values(served: Served) -> None:
    series = await _samples(
        served, 'sum_over_time({app="api", pod="b"} | json | level="info" | unwrap took [1m])'
    )
    assert len(series) == 45  # info lines; msg differs per line: one series each
    for labels, samples in series.items():
        values = dict(labels)
        assert "took" not in values and values["level"] == "info"
        i = int(values["msg"].rsplit(" ", 1)[1])
        assert samples == [(BASE + i * SECOND, i / 4)]


async def test_labels_series_and_stats(served: Served) -> None:
    def label(name: str = "", query_text: str = "", end: int = 100) -> querier_pb2.LabelRequest:
        return querier_pb2.LabelRequest(
            name=name, start=BASE, end=BASE + end * SECOND, query=query_text
        )

    names = await served.stub.Label(label(), metadata=TENANT)
    assert list(names.values) == ["app", "pod"]
    pods = await served.stub.Label(label("pod"), metadata=TENANT)
    assert list(pods.values) == ["a", "b", "c"]
    api_pods = await served.stub.Label(label("pod", '{app="api"}'), metadata=TENANT)
    assert list(api_pods.values) == ["a", "b"]
    assert list((await served.stub.Label(label("pod", end=0), metadata=TENANT)).values) == []

    request = querier_pb2.SeriesRequest(
        start=BASE, end=BASE + 100 * SECOND, selectors=['{pod="a"}', '{app="web"}']
    )
    series = await served.stub.Series(request, metadata=TENANT)
    assert [[(p.name, p.value) for p in s.labels] for s in series.series] == [
        [("app", "api"), ("pod", "a")],
        [("app", "web"), ("pod", "c")],
    ]
    everything = await served.stub.Series(
        querier_pb2.SeriesRequest(start=BASE, end=BASE + 100 * SECOND), metadata=TENANT
    )
    assert len(everything.series) == 3

    stats = await served.stub.GetStats(
        querier_pb2.IndexStatsRequest(selector='{app="api"}', start=BASE, end=BASE + 100 * SECOND),
        metadata=TENANT,
    )
    api = [s for s in served.tenant.streams.values() if 'app="api"' in s.labels]
    assert stats.streams == 2
    assert stats.entries == 120
    assert stats.chunks == sum(len(s.chunks) for s in api)
    assert stats.bytes == sum(d.chunk.uncompressed_size for s in api for d in s.chunks)


async def test_unknown_tenant_has_no_data(served: Served) -> None:
    other = (("x-scope-orgid", "other"),)
    request = querier_pb2.QueryRequest(selector='{app="api"}', start=BASE, end=BASE + SECOND)
    responses = [r async for r in served.stub.Query(request, metadata=other)]
    assert [list(r.batches) for r in responses] == [[]]
    names = await served.stub.Label(querier_pb2.LabelRequest(end=BASE), metadata=other)
    assert list(names.values) == []
    assert "other" not in served.service._instances


async def test_bad_queries_and_missing_tenants_are_invalid_arguments(served: Served) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in served.stub.Query(
            querier_pb2.QueryRequest(selector="{app="), metadata=TENANT
        ):
            pass
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.value.details() or "").startswith("parse error")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in served.stub.QuerySample(
            querier_pb2.SampleQueryRequest(selector='{app="api"}'), metadata=TENANT
        ):
            pass
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await served.stub.Label(querier_pb2.LabelRequest())
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == "no org id"


async def _tailers(served: Served, expected: int) -> None:
    for _ in range(200):
        count = await served.stub.TailersCount(querier_pb2.TailersCountRequest(), metadata=TENANT)
        if count.count == expected:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"tailers never reached {expected}")


async def test_tail_receives_matching_pushed_entries(served: Served) -> None:
    call = served.stub.Tail(
        querier_pb2.TailRequest(query='{app="api"} |= "live" | logfmt'), metadata=TENANT
    )
    await _tailers(served, 1)
    now = BASE + 1000 * SECOND
    served.push(
        {
            STREAMS[0]: [(now, "live k=1"), (now + 1, "not this one")],
            STREAMS[2]: [(now, "live but web")],
        }
    )
    response = await call.read()
    assert isinstance(response, querier_pb2.TailResponse)
    [batch] = response.batches
    assert [(p.name, p.value) for p in batch.labels] == [("app", "api"), ("k", "1"), ("pod", "a")]
    assert list(batch.timestamps) == [now] and list(batch.lines) == ["live k=1"]
    call.cancel()
    await _tailers(served, 0)


async def test_a_full_tail_queue_drops_instead_of_blocking_pushes(served: Served) -> None:
    small = query.QueryService({"t": served.tenant}, tail_queue_size=1)
    stream_a = next(s for s in served.tenant.streams.values() if s.labels == STREAMS[0])
    with small._tails.tailing("t", (), log_pipeline.Pipeline.from_ast(())) as tailer:
        for i in range(3):
            small._tails.on_push("t", stream_a, [BASE + i], [f"x{i}"], None)
        assert tailer.queue.qsize() == 1
        assert tailer.dropped == 2
    assert small._tails.count("t") == 0


@pytest.mark.parametrize("seed", range(6))
async def test_random_out_of_order_pushes_come_back_in_order(served: Served, seed: int) -> None:
    rng = random.Random(seed)
    streams = [f'{{app="rand", n="{n}"}}' for n in range(3)]
    for _ in range(12):
        labels = rng.choice(streams)
        start = BASE + 500 * SECOND + rng.randrange(0, 400) * SECOND
        rows = [
            (start + i * SECOND // 7, f"r{rng.randrange(1000)} level={i % 3}") for i in range(25)
        ]
        served.push({labels: rows})
    for text in ('{app="rand"}', '{app="rand"} | logfmt | level!="1"'):
        for direction in ("forward", "backward"):
            for end in (BASE + 700 * SECOND, BASE + 2000 * SECOND):
                got, _ = await _query(served, text, direction, end=end)
                expected = _reference(served.pushed, text, BASE, end, direction, 0)
                # Equal timestamps of one stream may come in either order.
                assert [(e.ts, e.labels) for e in got] == [(e.ts, e.labels) for e in expected]
                assert sorted(got) == sorted(expected)
                assert len(got) > 50
