"""The committed protobuf modules are what `make proto` generates, and speak Loki's wire format."""

from __future__ import annotations

import pathlib

import protogen
from lokistack.proto import push_pb2


def test_generated_modules_are_current(tmp_path: pathlib.Path) -> None:
    (tmp_path / "lokistack" / "proto").mkdir(parents=True)
    fresh = {path.name: path.read_bytes() for path in protogen.generate(tmp_path)}
    committed = {
        path.name: path.read_bytes() for path in protogen.generated_files(protogen.PROTO_PACKAGE)
    }
    assert sorted(committed) == sorted(fresh), "generated file set differs: run `make proto`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"{stale} are out of date: run `make proto`"


def test_push_request_uses_lokis_field_numbers() -> None:
    request = push_pb2.PushRequest()
    stream = request.streams.add(labels='{a="b"}')
    entry = stream.entries.add(line="x")
    entry.timestamp.seconds = 1
    entry.timestamp.nanos = 2

    # Hand-encoded with Loki's push.proto numbering: PushRequest.streams=1,
    # StreamAdapter.labels=1/entries=2, EntryAdapter.timestamp=1/line=2,
    # Timestamp seconds=1/nanos=2.
    entry_bytes = b"\x0a\x04\x08\x01\x10\x02" + b"\x12\x01x"
    stream_bytes = b"\x0a\x07" + b'{a="b"}' + b"\x12" + bytes([len(entry_bytes)]) + entry_bytes
    expected = b"\x0a" + bytes([len(stream_bytes)]) + stream_bytes
    assert request.SerializeToString() == expected
    assert push_pb2.PushRequest.FromString(expected) == request


def test_structured_metadata_round_trips() -> None:
    request = push_pb2.PushRequest()
    entry = request.streams.add(labels='{app="api"}').entries.add(line="hello")
    entry.structuredMetadata.add(name="trace_id", value="abc123")
    decoded = push_pb2.PushRequest.FromString(request.SerializeToString())
    pair = decoded.streams[0].entries[0].structuredMetadata[0]
    assert (pair.name, pair.value) == ("trace_id", "abc123")
