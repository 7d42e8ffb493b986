"""JSON push bodies: Loki's v1 shape and the legacy ``/api/prom/push`` shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lokistack.distributor import decode_error, decode_json
from lokistack.model import goquote
from lokistack.proto import push_pb2

NS = 1_000_000_000


def _body(document: Any) -> bytes:
    return document if isinstance(document, bytes) else json.dumps(document).encode()


def _v1(document: Any) -> push_pb2.PushRequest:
    return decode_json.decode_v1(_body(document))


def _legacy(document: Any) -> push_pb2.PushRequest:
    return decode_json.decode_legacy(_body(document))


def _v1_error(document: Any) -> decode_error.PushDecodeError:
    with pytest.raises(decode_error.PushDecodeError) as caught:
        _v1(document)
    return caught.value


def _legacy_error(document: Any) -> decode_error.PushDecodeError:
    with pytest.raises(decode_error.PushDecodeError) as caught:
        _legacy(document)
    return caught.value


# -- v1 -------------------------------------------------------------------------------------


def test_json_v1() -> None:
    request = _v1(
        {
            "streams": [
                {
                    "stream": {"b": "2", "a": 'q"uote'},
                    "values": [
                        ["1700000000123456789", "line one"],
                        ["-1", "old", {"trace_id": "abc", "user": "u"}],
                        None,
                        ["5", "extra elements ignored", {}, "ignored"],
                    ],
                    "unknown": True,
                }
            ],
            "unknown": 1,
        }
    )
    stream = request.streams[0]
    assert stream.labels == '{a="q\\"uote", b="2"}'
    assert [(e.timestamp.seconds, e.timestamp.nanos, e.line) for e in stream.entries] == [
        (1_700_000_000, 123_456_789, "line one"),
        (-1, 999_999_999, "old"),
        (0, 5, "extra elements ignored"),
    ]
    metadata = stream.entries[1].structuredMetadata
    assert [(p.name, p.value) for p in metadata] == [("trace_id", "abc"), ("user", "u")]


def test_json_null_and_empty_parts() -> None:
    assert len(_v1({"streams": None}).streams) == 0
    assert len(_v1({}).streams) == 0
    request = _v1({"streams": [{"stream": {"a": "b"}, "values": None}, None, {}]})
    assert [s.labels for s in request.streams] == ['{a="b"}', ""]
    assert len(request.streams[0].entries) == 0


def test_json_label_values_that_are_not_strings_are_kept_verbatim() -> None:
    body = b'{"streams": [{"stream": {"n": 1.50, "t": true, "z": null}, "values": []}]}'
    assert _v1(body).streams[0].labels == '{n="1.50", t="true", z="null"}'


def test_json_unpaired_surrogates_and_bad_utf8_become_replacement_characters() -> None:
    body = b'{"streams": [{"stream": {"a": "\\ud800"}, "values": [["1", "x\\udc00\xff"]]}]}'
    stream = _v1(body).streams[0]
    assert stream.labels == '{a="\ufffd"}'
    assert stream.entries[0].line == "x\ufffd\ufffd"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"", "malformed push request: invalid JSON: Expecting value: line 1 column 1 (char 0)"),
        (b"{", "malformed push request: invalid JSON: "),
        (b'{"streams": NaN}', "malformed push request: invalid JSON: invalid JSON value NaN"),
        ([], 'malformed push request: body: expected an object with a "streams" array'),
        ({"streams": {}}, "malformed push request: streams: expected an array"),
        ({"streams": [1]}, "malformed push request: streams[0]: expected an object"),
        ({"streams": [{"values": {}}]}, "malformed push request: streams[0].values: expected"),
        (
            {"streams": [{"stream": [], "values": []}]},
            "malformed push request: streams[0].stream: expected an object",
        ),
        (
            {"streams": [{"stream": {"a": {}}, "values": []}]},
            "malformed push request: streams[0].stream.a: expected a string",
        ),
        ({"streams": [{"values": [["1"]]}]}, "malformed push request: streams[0].values[0]: "),
        ({"streams": [{"values": ["x"]}]}, "malformed push request: streams[0].values[0]: "),
        (
            {"streams": [{"values": [["1", "a"], [1, "x"]]}]},
            "malformed push request: streams[0].values[1][0]: timestamp must be a string",
        ),
        (
            {"streams": [{"values": [["1.5", "x"]]}]},
            "malformed push request: streams[0].values[0][0]: timestamp '1.5' is not",
        ),
        ({"streams": [{"values": [["", "x"]]}]}, "malformed push request: streams[0].values[0][0]"),
        (
            {"streams": [{"values": [["+1", "x"]]}]},
            "malformed push request: streams[0].values[0][0]",
        ),
        (
            {"streams": [{"values": [["9223372036854775808", "x"]]}]},
            "malformed push request: streams[0].values[0][0]: timestamp '9223372036854775808'",
        ),
        (
            {"streams": [{"values": [["1", 5]]}]},
            "malformed push request: streams[0].values[0][1]: line must be a string",
        ),
        (
            {"streams": [{"values": [["1", "x", "y"]]}]},
            "malformed push request: streams[0].values[0][2]: structured metadata must be an",
        ),
        (
            {"streams": [{"values": [["1", "x", {"k": 1}]]}]},
            "malformed push request: streams[0].values[0][2].k: structured metadata values",
        ),
    ],
)
def test_json_errors(document: Any, message: str) -> None:
    error = _v1_error(document)
    assert error.status == 400
    assert error.message.startswith(message)


def test_json_int64_bounds() -> None:
    values = [["9223372036854775807", "max"], ["-9223372036854775808", "min"]]
    entries = _v1({"streams": [{"values": values}]}).streams[0].entries
    assert entries[0].timestamp.seconds * NS + entries[0].timestamp.nanos == 2**63 - 1
    assert entries[1].timestamp.seconds * NS + entries[1].timestamp.nanos == -(2**63)


_names = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True)
_json_streams = st.lists(
    st.tuples(
        st.dictionaries(_names, st.text(max_size=8), max_size=4),
        st.lists(
            st.tuples(
                st.integers(-(2**63), 2**63 - 1),
                st.text(max_size=20),
                st.none() | st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
            ),
            max_size=5,
        ),
    ),
    max_size=4,
)


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(_json_streams)
def test_json_round_trip(streams: list[tuple[dict[str, str], list[Any]]]) -> None:
    document: dict[str, Any] = {"streams": []}
    expected = push_pb2.PushRequest()
    for label_set, values in streams:
        rows: list[Any] = []
        document["streams"].append({"stream": label_set, "values": rows})
        pairs = ", ".join(f"{k}={goquote.go_quote(label_set[k])}" for k in sorted(label_set))
        stream = expected.streams.add(labels="{" + pairs + "}")
        for nanos, line, metadata in values:
            rows.append([str(nanos), line] if metadata is None else [str(nanos), line, metadata])
            entry = stream.entries.add(line=line)
            entry.timestamp.seconds, entry.timestamp.nanos = divmod(nanos, NS)
            for name, value in (metadata or {}).items():
                entry.structuredMetadata.add(name=name, value=value)
    assert _v1(document) == expected


# -- legacy --------------------------------------------------------------------------------


def test_legacy_v1() -> None:
    document = {
        "streams": [
            {
                "labels": '{app="api"}',
                "entries": [
                    {"ts": "2024-01-02T03:04:05.123456789Z", "line": "a"},
                    {
                        "ts": "2024-01-02T04:04:05+01:00",
                        "line": "b",
                        "structuredMetadata": {"k": "v"},
                    },
                    {"ts": "1969-12-31T23:59:59.5Z", "line": "c"},
                    {"line": "no timestamp"},
                    None,
                ],
                "unknown": 1,
            }
        ]
    }
    stream = _legacy(document).streams[0]
    assert stream.labels == '{app="api"}'
    stamps = [(e.timestamp.seconds, e.timestamp.nanos) for e in stream.entries]
    assert stamps == [
        (1_704_164_645, 123_456_789),
        (1_704_164_645, 0),
        (-1, 500_000_000),
        (-62_135_596_800, 0),
    ]
    assert [(p.name, p.value) for p in stream.entries[1].structuredMetadata] == [("k", "v")]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"streams": [{"labels": 1}]},
            "malformed push request: streams[0].labels: expected a string",
        ),
        (
            {"streams": [{"entries": [1]}]},
            "malformed push request: streams[0].entries[0]: expected",
        ),
        (
            {"streams": [{"entries": [{"ts": "yesterday"}]}]},
            "malformed push request: streams[0].entries[0].ts: expected an RFC3339 timestamp",
        ),
        (
            {"streams": [{"entries": [{"ts": "2024-02-30T00:00:00Z"}]}]},
            "malformed push request: streams[0].entries[0].ts: invalid timestamp",
        ),
        (
            {"streams": [{"entries": [{"ts": 5}]}]},
            "malformed push request: streams[0].entries[0].ts: expected an RFC3339",
        ),
        (
            {"streams": [{"entries": [{"line": 5}]}]},
            "malformed push request: streams[0].entries[0].line: expected a string",
        ),
        (
            {"streams": [{"entries": [{"structuredMetadata": []}]}]},
            "malformed push request: streams[0].entries[0].structuredMetadata: structured",
        ),
    ],
)
def test_legacy_json_errors(document: Any, message: str) -> None:
    error = _legacy_error(document)
    assert error.status == 400
    assert error.message.startswith(message)
