"""Push body decoding: encodings, media types, snappy protobuf, JSON dispatch, limits."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import pytest
import snappy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lokistack.distributor import decode, decode_error
from lokistack.model import labels as model_labels
from lokistack.proto import push_pb2

PROTO = "application/x-protobuf"
JSON = "application/json"
LIMITS = decode.DecodeLimits()
NS = 1_000_000_000


def _request(*streams: tuple[str, list[tuple[int, str]]]) -> push_pb2.PushRequest:
    request = push_pb2.PushRequest()
    for text, entries in streams:
        stream = request.streams.add(labels=text)
        for nanos, line in entries:
            entry = stream.entries.add(line=line)
            entry.timestamp.seconds, entry.timestamp.nanos = divmod(nanos, NS)
    return request


def _proto_body(request: push_pb2.PushRequest) -> bytes:
    return bytes(snappy.compress(request.SerializeToString()))


def _decode(
    body: bytes,
    content_type: str | None = PROTO,
    content_encoding: str | None = None,
    *,
    legacy_json: bool = False,
    limits: decode.DecodeLimits = LIMITS,
) -> push_pb2.PushRequest:
    return decode.decode_push(
        body,
        content_type=content_type,
        content_encoding=content_encoding,
        legacy_json=legacy_json,
        limits=limits,
    )


def _error(body: bytes, *args: Any, **kwargs: Any) -> decode.PushDecodeError:
    with pytest.raises(decode.PushDecodeError) as caught:
        _decode(body, *args, **kwargs)
    return caught.value


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush()


SAMPLE = _request(('{app="api"}', [(1_700_000_000_123_456_789, "hello"), (-1, "before 1970")]))


# -- protobuf -----------------------------------------------------------------------------------


def test_protobuf_snappy() -> None:
    assert _decode(_proto_body(SAMPLE)) == SAMPLE


@pytest.mark.parametrize("content_type", [PROTO, "foo", "application/octet-stream; x=y"])
def test_any_other_media_type_is_protobuf(content_type: str) -> None:
    assert _decode(_proto_body(SAMPLE), content_type) == SAMPLE


@pytest.mark.parametrize(
    ("encoding", "wrap"),
    [("snappy", lambda b: b), ("gzip", gzip.compress), ("deflate", _deflate), ("", lambda b: b)],
)
def test_content_encodings_wrap_the_snappy_block(encoding: str, wrap: Any) -> None:
    assert _decode(wrap(_proto_body(SAMPLE)), PROTO, encoding) == SAMPLE


def test_gzip_with_several_members() -> None:
    body = _proto_body(SAMPLE)
    wrapped = gzip.compress(body[:5]) + gzip.compress(body[5:])
    assert _decode(wrapped, PROTO, "gzip") == SAMPLE


def test_empty_push_request_has_no_streams() -> None:
    assert len(_decode(b"\x00").streams) == 0  # snappy block of zero bytes


def test_zero_length_protobuf_body_is_corrupt_snappy() -> None:
    error = _error(b"")
    assert (error.status, error.message, error.reason) == (400, "snappy: corrupt input", None)


def test_truncated_snappy() -> None:
    body = _proto_body(_request(('{a="b"}', [(1, "x" * 200 + "y" * 200)])))
    assert _error(body[: len(body) // 2]).message == "snappy: corrupt input"


def test_snappy_length_preamble_overflow() -> None:
    assert _error(b"\xff\xff\xff\xff\xff\x01").message == "snappy: corrupt input"


def test_invalid_protobuf() -> None:
    error = _error(bytes(snappy.compress(b"\xff\xff\xff\xff")))
    assert (error.status, error.message) == (400, "proto: cannot parse invalid wire-format data")


def test_invalid_utf8_in_protobuf_strings_is_replaced() -> None:
    raw = _request(('{a="b"}', [(5, "AB")])).SerializeToString().replace(b"AB", b"A\xff")
    request = _decode(bytes(snappy.compress(raw)))
    assert request.streams[0].entries[0].line == "A\ufffd"
    assert request.streams[0].entries[0].timestamp.nanos == 5
    assert request.streams[0].labels == '{a="b"}'


def test_snappy_decoded_len() -> None:
    assert decode.snappy_decoded_len(bytes(snappy.compress(b"x" * 300))) == 300
    assert decode.snappy_decoded_len(b"\x00") == 0


_names = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True)
_label_strings = st.dictionaries(_names, st.text(min_size=1, max_size=10), max_size=4).map(
    lambda d: model_labels.canonical(model_labels.normalize(list(d.items())))
)
_entries = st.lists(
    st.tuples(
        st.integers(-(2**40), 2**40),
        st.integers(0, NS - 1),
        st.text(max_size=30),
        st.lists(st.tuples(st.text(max_size=5), st.text(max_size=5)), max_size=2),
    ),
    max_size=5,
)


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_label_strings, _entries), max_size=4))
def test_protobuf_round_trip(streams: list[tuple[str, list[Any]]]) -> None:
    request = push_pb2.PushRequest()
    for text, entries in streams:
        stream = request.streams.add(labels=text)
        for seconds, nanos, line, metadata in entries:
            entry = stream.entries.add(line=line)
            entry.timestamp.seconds, entry.timestamp.nanos = seconds, nanos
            for name, value in metadata:
                entry.structuredMetadata.add(name=name, value=value)
    assert _decode(_proto_body(request)) == request


# -- encodings, media types, sizes ----------------------------------------------------------


def test_unsupported_content_encoding() -> None:
    error = _error(_proto_body(SAMPLE), PROTO, "br")
    assert (error.status, error.message) == (400, 'Content-Encoding "br" not supported')


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        (None, "mime: no media type"),
        ("", "mime: no media type"),
        ("; charset=utf-8", "mime: no media type"),
        ("application/", "mime: expected token after slash"),
        ("a/b/c", "mime: unexpected content after media subtype"),
        ("application/json; charset", "mime: invalid media parameter"),
    ],
)
def test_bad_content_type(content_type: str | None, message: str) -> None:
    error = _error(_proto_body(SAMPLE), content_type)
    assert (error.status, error.message) == (400, message)


def test_media_type_parameters_and_case() -> None:
    assert decode.parse_media_type("Application/JSON; charset=utf-8") == "application/json"


def test_body_over_max_recv_msg_size() -> None:
    error = _error(b"x" * 11, limits=decode.DecodeLimits(max_recv_msg_size=10))
    assert error.status == 413
    assert error.message == "request body too large: message size too large than max (11 vs 10)"
    assert error.reason == "request_body_too_large"


def test_snappy_decoded_length_over_max_decompressed_size() -> None:
    body = _proto_body(_request(('{a="b"}', [(1, "x" * 500)])))
    size = decode.snappy_decoded_len(body)
    limits = decode.DecodeLimits(max_recv_msg_size=10_000, max_decompressed_size=100)
    error = _error(body, limits=limits)
    assert error.status == 413
    assert error.message == (
        f"request body too large: decompressed message size too large than max ({size} vs 100)"
    )
    assert error.reason == "request_body_too_large"


@pytest.mark.parametrize(("encoding", "wrap"), [("gzip", gzip.compress), ("deflate", _deflate)])
def test_inflated_size_over_max_decompressed_size(encoding: str, wrap: Any) -> None:
    limits = decode.DecodeLimits(max_recv_msg_size=10_000, max_decompressed_size=100)
    error = _error(wrap(b"\0" * 5000), PROTO, encoding, limits=limits)
    assert error.status == 413
    assert error.message.endswith("decompressed message size too large than max (101 vs 100)")


def test_default_decompressed_limit_is_fifty_times_recv() -> None:
    assert decode.DecodeLimits(max_recv_msg_size=10).decompressed_limit == 500
    assert decode.DecodeLimits().decompressed_limit == 5_242_880_000


@pytest.mark.parametrize(
    ("encoding", "body", "message"),
    [
        ("gzip", b"not gzip at all", "gzip: invalid header"),
        ("gzip", gzip.compress(b"x" * 100)[:15], "unexpected EOF"),
        ("gzip", b"", "unexpected EOF"),
        ("deflate", _deflate(b"x" * 1000)[:3], "unexpected EOF"),
        ("deflate", b"\xff\xff\xff", "flate: corrupt input"),
    ],
)
def test_broken_compression(encoding: str, body: bytes, message: str) -> None:
    error = _error(body, PROTO, encoding)
    assert (error.status, error.message) == (400, message)


def test_labels_over_16_mib() -> None:
    request = _request(("x" * (decode.MAX_STREAM_LABELS_SIZE + 1), []))
    error = _error(_proto_body(request))
    assert (error.status, error.message) == (413, "request body too large")
    assert error.reason == "request_body_too_large"


def test_labels_over_16_mib_counted_in_utf8_bytes() -> None:
    text = '{a="' + "😀" * (decode.MAX_STREAM_LABELS_SIZE // 4) + '"}'
    assert _error(_proto_body(_request((text, [])))).status == 413


def test_unparsable_labels_fail_the_whole_request() -> None:
    request = _request(('{a="b"}', [(1, "ok")]), ('{a.b="c"}', [(1, "bad")]))
    error = _error(_proto_body(request))
    assert error.status == 400
    assert error.message == (
        "couldn't parse labels: 1:3: parse error: unexpected character inside braces: '.'"
    )
    assert error.reason is None


def test_parse_stream_labels() -> None:
    request = _request(('{b="2", a="1"}', []), ("", []))
    assert decode.parse_stream_labels(request) == [(("a", "1"), ("b", "2")), ()]


# -- JSON through the entry point (the shapes themselves: test_decode_json.py) -------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "snappy"])
def test_json_with_content_encoding(encoding: str) -> None:
    document = {"streams": [{"stream": {"a": "b"}, "values": [["1", "x"]]}]}
    body = json.dumps(document).encode()
    wrappers: dict[str, Any] = {"gzip": gzip.compress, "deflate": _deflate, "snappy": bytes}
    wrapped = wrappers[encoding](body)
    assert _decode(wrapped, "application/json; charset=utf-8", encoding).streams[0].labels == (
        '{a="b"}'
    )


def test_snappy_compressed_json_is_not_decompressed() -> None:
    body = bytes(snappy.compress(b'{"streams": []}'))
    error = _error(body, JSON, "snappy")
    assert error.status == 400
    assert error.message.startswith("malformed push request: invalid JSON")


def test_json_label_names_must_be_legacy_identifiers() -> None:
    document = {"streams": [{"stream": {"a.b": "c"}, "values": [["1", "x"]]}]}
    error = _error(json.dumps(document).encode(), JSON)
    assert error.status == 400
    assert error.message.startswith("couldn't parse labels: 1:3: parse error:")


def test_legacy_json_gzip() -> None:
    body = gzip.compress(json.dumps({"streams": [{"labels": "{}", "entries": []}]}).encode())
    assert _decode(body, JSON, "gzip", legacy_json=True).streams[0].labels == "{}"


def test_push_decode_error_attributes() -> None:
    error = decode.PushDecodeError(413, "request body too large", "request_body_too_large")
    assert (error.status, error.message, error.reason, str(error)) == (
        413,
        "request body too large",
        "request_body_too_large",
        "request body too large",
    )


def test_push_decode_error_is_shared_with_the_json_decoder() -> None:
    assert decode.PushDecodeError is decode_error.PushDecodeError
