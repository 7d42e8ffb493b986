"""A tenant's streams in the ingester: the stream-count limit and the per-stream rate limit."""

from __future__ import annotations

import pytest
from lokistack import config, limits
from lokistack.chunk import codec as chunk_codec
from lokistack.ingester import instance
from lokistack.ingester import stream as stream_mod
from lokistack.proto import push_pb2
from lokistack.wal import record as wal_record

SHAPE = stream_mod.ChunkShape(chunk_codec.Encoding.SNAPPY, 262144, 1572864, 2 * 3600 * 10**9)


def _request(streams: dict[str, list[str]], ts: int = 1_700_000_000) -> push_pb2.PushRequest:
    request = push_pb2.PushRequest()
    for labels, lines in streams.items():
        stream = request.streams.add(labels=labels)
        for offset, line in enumerate(lines):
            entry = stream.entries.add(line=line)
            entry.timestamp.seconds = ts + offset
    return request


def _instance(
    healthy: int = 3, replication_factor: int = 3, **limit_changes: object
) -> instance.TenantInstance:
    overrides = limits.Overrides(config.Limits(**limit_changes))  # type: ignore[arg-type]
    return instance.TenantInstance("t", overrides, lambda: healthy, replication_factor, SHAPE)


def _push(
    tenant: instance.TenantInstance, request: push_pb2.PushRequest
) -> list[wal_record.Record]:
    records, error = tenant.push(request)
    if error is not None:
        raise error
    return records


def test_entries_are_appended_per_stream_and_described_for_the_wal() -> None:
    tenant = _instance()
    records = _push(tenant, _request({'{a="1"}': ["x", "y"], '{a="2"}': ["z"]}))
    assert [type(r).__name__ for r in records] == [
        "SeriesRecord",
        "EntriesRecord",
        "SeriesRecord",
        "EntriesRecord",
    ]
    records = _push(tenant, _request({'{a="1"}': ["w"]}, ts=1_700_000_100))
    assert len(records) == 1
    entries = records[0]
    assert isinstance(entries, wal_record.EntriesRecord)
    assert list(entries.lines) == ["w"]
    assert entries.counter == 3  # the stream's entry count after this batch
    assert len(tenant.streams) == 2
    assert tenant.entry_count() == 4
    assert tenant.fingerprints_with("a", "1") == {
        next(fp for fp, s in tenant.streams.items() if s.labels == '{a="1"}')
    }


def test_exact_repeats_are_dropped_and_not_logged() -> None:
    tenant = _instance()
    _push(tenant, _request({'{a="1"}': ["x"]}))
    assert _push(tenant, _request({'{a="1"}': ["x"]})) == []
    assert tenant.entry_count() == 1


def test_entries_too_far_behind_are_refused_with_lokis_text() -> None:
    tenant = _instance()
    _push(tenant, _request({'{a="1"}': ["new"]}, ts=1_700_010_000))
    records, error = tenant.push(_request({'{a="1"}': ["old", "ok"]}, ts=1_700_000_000))
    assert error is not None and error.status == 400
    assert "entry too far behind, entry timestamp is: 2023-11-14T22:13:20Z" in error.message
    assert error.message.endswith('total ignored: 2 out of 2 for stream: {a="1"}')
    assert records == []


@pytest.mark.parametrize(
    ("local", "global_", "healthy", "rf", "expected"),
    [
        (0, 0, 3, 3, 0),  # both off: unlimited
        (0, 5000, 3, 3, 5000),  # 5000 / 3 ingesters * RF 3
        (0, 5000, 6, 3, 2500),
        (100, 5000, 3, 3, 100),  # the smaller non-zero limit wins
        (0, 5000, 0, 3, 0),  # no healthy ingester known: the global limit cannot apply
    ],
)
def test_stream_limit_follows_lokis_rules(
    local: int, global_: int, healthy: int, rf: int, expected: int
) -> None:
    tenant = _instance(healthy, rf, max_streams_per_user=local, max_global_streams_per_user=global_)
    assert tenant.stream_limit(tenant.overrides.limits_for("t")) == expected


def test_new_streams_beyond_the_limit_are_refused_and_others_kept() -> None:
    tenant = _instance(max_streams_per_user=2, max_global_streams_per_user=0)
    with pytest.raises(instance.PushError) as refused:
        _push(tenant, _request({'{a="1"}': ["x"], '{a="2"}': ["x"], '{a="3"}': ["x"]}))
    assert refused.value.status == 429
    assert refused.value.message.startswith(
        'maximum active stream limit exceeded when trying to create stream {a="3"}'
    )
    assert refused.value.message.endswith("user: 't'")
    assert len(tenant.streams) == 2
    _push(tenant, _request({'{a="1"}': ["more"]}))  # existing streams still take entries
    assert tenant.entry_count() == 3


def test_per_stream_rate_limit_refuses_the_whole_push_of_that_stream() -> None:
    tenant = _instance(per_stream_rate_limit=10, per_stream_rate_limit_burst=10)
    with pytest.raises(instance.PushError) as refused:
        _push(tenant, _request({'{a="1"}': ["0123456789", "x"], '{a="2"}': ["ok"]}))
    assert refused.value.status == 429
    lines = refused.value.message.splitlines()
    assert lines[0] == (
        "entry with timestamp 2023-11-14 22:13:20 +0000 UTC ignored, reason: "
        "'Per stream rate limit exceeded (limit: 10 B/sec) while attempting to ingest for "
        "stream '{a=\"1\"}' totaling 11 B, consider splitting a stream via additional labels "
        "or contact your Loki administrator to see if the limit can be increased',"
    )
    assert lines[-1] == "user 't', total ignored: 2 out of 2 for stream: {a=\"1\"}"
    assert tenant.entry_count() == 1  # the other stream's entry was kept


def test_go_time_string() -> None:
    assert instance.go_time_string(0) == "1970-01-01 00:00:00 +0000 UTC"
    assert instance.go_time_string(1_500_000_000) == "1970-01-01 00:00:01.5 +0000 UTC"
    assert instance.go_time_string(1) == "1970-01-01 00:00:00.000000001 +0000 UTC"


def test_metadata_stays_aligned_when_only_some_entries_carry_it() -> None:
    tenant = _instance()
    request = push_pb2.PushRequest()
    stream = request.streams.add(labels='{a="1"}')
    for offset, line in enumerate(["plain", "traced", "plain again"]):
        entry = stream.entries.add(line=line)
        entry.timestamp.seconds = 1_700_000_000 + offset
        if line == "traced":
            entry.structuredMetadata.add(name="trace_id", value="abc")
    records = _push(tenant, request)
    entries = records[-1]
    assert isinstance(entries, wal_record.EntriesRecord)
    assert list(entries.metadata) == [(), (("trace_id", "abc"),), ()]
    stored = next(iter(tenant.streams.values())).chunks[0].chunk
    assert [meta for _, _, meta in stored.iterate(0, 2**62, "forward")] == [
        (),
        (("trace_id", "abc"),),
        (),
    ]
