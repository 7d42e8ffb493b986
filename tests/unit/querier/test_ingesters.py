"""The querier's ingester client against three real in-process ingester query services that hold
the same data (replication factor 3), registered in an in-memory ring."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from lokistack import config, limits
from lokistack.chunk import codec as chunk_codec
from lokistack.ingester import instance, query
from lokistack.ingester import stream as stream_mod
from lokistack.iter import entries
from lokistack.proto import push_pb2, querier_pb2_grpc
from lokistack.querier import ingesters
from lokistack.ring import model
from lokistack.ring import ring as ring_mod
from lokistack.ring.kv import memory

SHAPE = stream_mod.ChunkShape(chunk_codec.Encoding.SNAPPY, 256, 1024, 2 * 3600 * 10**9)
BASE = 1_700_000_000 * 10**9
SECOND = 10**9
END = BASE + 1000 * SECOND
STREAMS = ('{app="api", pod="a"}', '{app="api", pod="b"}', '{app="web"}')


def _request(rows: dict[str, list[tuple[int, str]]]) -> push_pb2.PushRequest:
    request = push_pb2.PushRequest()
    for labels, pushed in rows.items():
        stream = request.streams.add(labels=labels)
        for ts, line in pushed:
            entry = stream.entries.add(line=line)
            entry.timestamp.seconds, entry.timestamp.nanos = divmod(ts, SECOND)
    return request


@dataclasses.dataclass
class Ingester:
    tenant: instance.TenantInstance
    service: query.QueryService
    server: grpc.aio.Server
    addr: str


@dataclasses.dataclass
class Cluster:
    members: list[Ingester]
    store: memory.MemoryRingStore
    querier: ingesters.IngesterQuerier

    def push(self, rows: dict[str, list[tuple[int, str]]]) -> None:
        for ingester in self.members:
            records, error = ingester.tenant.push(_request(rows))
            assert error is None
            ingester.service.on_records("t", records)


async def _ingester(name: str) -> Ingester:
    overrides = limits.Overrides(
        config.Limits(per_stream_rate_limit=1 << 30, per_stream_rate_limit_burst=1 << 30)
    )
    tenant = instance.TenantInstance("t", overrides, lambda: 3, 3, SHAPE)
    service = query.QueryService({"t": tenant})
    server = grpc.aio.server()
    querier_pb2_grpc.add_QuerierServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return Ingester(tenant, service, server, f"127.0.0.1:{port}")


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    started = [await _ingester(f"ingester-{i}") for i in range(3)]
    store = memory.MemoryRingStore(
        model.RingDesc.of(
            model.InstanceDesc.create(
                f"ingester-{i}", ingester.addr, tokens=[i * 1000 + 1], heartbeat=time.time()
            )
            for i, ingester in enumerate(started)
        )
    )
    ring = ring_mod.Ring(store, 3, datetime.timedelta(minutes=1))
    querier = ingesters.IngesterQuerier(
        ring, datetime.timedelta(seconds=5), tail_reconnect_period=0.2
    )
    result = Cluster(started, store, querier)
    result.push(
        {
            labels: [(BASE + i * SECOND, f"{labels} line {i}") for i in range(50)]
            for labels in STREAMS
        }
    )
    try:
        yield result
    finally:
        await querier.close()
        await ring.stop()
        for ingester in started:
            await ingester.server.stop(None)


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("limit", [0, 10])
async def test_logs_come_once_despite_three_replicas(
    cluster: Cluster, direction: entries.Direction, limit: int
) -> None:
    found, stats = await cluster.querier.select_logs(
        "t", '{app="api"}', BASE, END, direction, limit
    )
    expected = sorted(
        ((BASE + i * SECOND, labels) for labels in STREAMS[:2] for i in range(50)),
        reverse=direction == "backward",
    )
    expected = expected[:limit] if limit else expected
    assert [(e.ts, f'{{app="api", pod="{dict(e.labels)["pod"]}"}}') for e in found] == expected
    assert len({(e.ts, e.labels, e.line) for e in found}) == len(found)
    assert stats.ingester_total_reached >= 2
    assert stats.ingester_total_lines_sent >= 2 * len(found)


async def test_samples_count_replicas_once_and_keep_real_repeats(cluster: Cluster) -> None:
    # Two different lines of one stream at one time, both of length 2: two samples, not six.
    cluster.push({'{app="dup"}': [(BASE + 5 * SECOND, "aa"), (BASE + 5 * SECOND, "bb")]})
    series = await cluster.querier.select_samples(
        "t", 'count_over_time({app=~"api|dup"}[1m])', BASE, END
    )
    by_labels = {labels: (ts, values) for labels, ts, values in series}
    assert by_labels[(("app", "dup"),)] == ([BASE + 5 * SECOND] * 2, [2.0, 2.0])
    pod_a = by_labels[(("app", "api"), ("pod", "a"))]
    assert pod_a[0] == [BASE + i * SECOND for i in range(50)]
    assert len(series) == 3


def test_replica_samples_merge_by_largest_multiplicity() -> None:
    labels = (("app", "x"),)
    merged = ingesters.merge_replica_samples(
        [
            {labels: ([1, 2, 2, 3], [1.0, 5.0, 5.0, float("nan")])},
            {labels: ([1, 2, 4], [1.0, 5.0, 7.0])},
            {labels: ([2, 3], [6.0, float("nan")])},
        ]
    )
    [(got_labels, ts, values)] = merged
    assert got_labels == labels
    assert ts == [1, 2, 2, 2, 3, 4]
    assert values[:4] == [1.0, 5.0, 5.0, 6.0] and values[5] == 7.0
    assert values[4] != values[4]  # the NaN sample, once


async def test_labels_series_stats_and_tailers(cluster: Cluster) -> None:
    querier = cluster.querier
    assert await querier.label("t", None, BASE, END) == ["app", "pod"]
    assert await querier.label("t", "app", BASE, END) == ["api", "web"]
    assert await querier.label("t", "pod", BASE, END, '{app="api"}') == ["a", "b"]
    assert await querier.series("t", ['{pod="a"}', '{app="web"}'], BASE, END) == [
        (("app", "api"), ("pod", "a")),
        (("app", "web"),),
    ]
    assert len(await querier.series("t", [], BASE, END)) == 3
    stats = await querier.stats("t", '{app="api"}', BASE, END)
    assert stats.streams == 2 and stats.entries == 100
    one = cluster.members[0].tenant
    assert stats.chunks == sum(
        len(s.chunks) for s in one.streams.values() if 'app="api"' in s.labels
    )
    assert await querier.tailers_count("t") == 0


async def test_one_ingester_down_still_answers_two_do_not(cluster: Cluster) -> None:
    await cluster.members[0].server.stop(None)
    found, _ = await cluster.querier.select_logs("t", '{app="web"}', BASE, END, "forward", 0)
    assert len(found) == 50
    assert await cluster.querier.label("t", "app", BASE, END) == ["api", "web"]
    await cluster.members[1].server.stop(None)
    with pytest.raises(ingesters.IngesterQueryError) as failed:
        await cluster.querier.select_logs("t", '{app="web"}', BASE, END, "forward", 0)
    assert failed.value.status == 500
    assert "2 of 3 ingesters failed" in failed.value.message


async def test_unhealthy_ring_members_fail_fast(cluster: Cluster) -> None:
    for i in (0, 1):
        member = cluster.store.snapshot().instances[f"ingester-{i}"]
        await cluster.store.put(member.replace(state=model.InstanceState.JOINING))
    with pytest.raises(ingesters.IngesterQueryError, match="too many unhealthy instances"):
        await cluster.querier.label("t", None, BASE, END)


async def test_refused_queries_are_client_errors(cluster: Cluster) -> None:
    with pytest.raises(ingesters.IngesterQueryError) as refused:
        await cluster.querier.select_logs("t", "{app=", BASE, END, "forward", 0)
    assert refused.value.status == 400
    assert refused.value.message.startswith("parse error")


async def test_tail_merges_ingesters_without_replica_copies(cluster: Cluster) -> None:
    live = cluster.querier.tail("t", '{app="api"} |= "live"')
    async with contextlib.aclosing(live):
        first = asyncio.ensure_future(anext(live))
        for _ in range(200):
            if all(i.service._tails.count("t") for i in cluster.members):
                break
            await asyncio.sleep(0.01)
        assert await cluster.querier.tailers_count("t") == 1
        now = BASE + 2000 * SECOND
        cluster.push({STREAMS[0]: [(now, "live 1"), (now + 1, "other")]})
        cluster.push({STREAMS[1]: [(now + 2, "live 2")]})
        received = list(await asyncio.wait_for(first, 5))
        while len(received) < 2:
            received.extend(await asyncio.wait_for(anext(live), 5))
        assert sorted((e.ts, e.line) for e in received) == [(now, "live 1"), (now + 2, "live 2")]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(live), 0.5)  # the other copies were dropped
    for _ in range(200):
        if await cluster.querier.tailers_count("t") == 0:
            break
        await asyncio.sleep(0.01)
    assert await cluster.querier.tailers_count("t") == 0


async def test_tail_ends_when_no_ingester_is_left(cluster: Cluster) -> None:
    live = cluster.querier.tail("t", '{app="api"}')
    async with contextlib.aclosing(live):
        pending = asyncio.ensure_future(anext(live))
        for _ in range(200):
            if all(i.service._tails.count("t") for i in cluster.members):
                break
            await asyncio.sleep(0.01)
        for i, member in enumerate(cluster.members):
            await member.server.stop(None)
            await cluster.store.delete(f"ingester-{i}")
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(pending, 5)
