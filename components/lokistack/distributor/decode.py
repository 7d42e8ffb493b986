"""Push bodies to ``PushRequest``: Content-Encoding, Content-Type, snappy and protobuf.

Loki's matrix (reference/loki-write-path.md §1.2-1.5): Content-Encoding first (none, ``snappy``
accepted as a no-op, ``gzip``, ``deflate`` = raw DEFLATE), then the media type: JSON for
``application/json`` (:mod:`~lokistack.distributor.decode_json`), otherwise a snappy-*block*
compressed protobuf. Errors carry the HTTP status and the exact body text Loki answers with, so
clients and their retry logic behave the same.

Decisions that are ours (docs say why where Loki is silent):

- A zero-length protobuf body is 400 ``snappy: corrupt input``: Go's ``snappy.DecodedLen`` finds
  no length preamble in an empty buffer. A snappy-compressed *empty* ``PushRequest`` (the single
  byte ``0x00``) decodes to a request with zero streams.
- Protobuf strings that are not valid UTF-8 (Go accepts them, upb does not) are decoded by a
  slower second pass that replaces the bad bytes with U+FFFD, instead of failing the request.
- :func:`decode_push` also parses every stream's labels (:func:`parse_stream_labels`): this is
  the HTTP path, where one unparsable stream fails the whole request (§1.7). Service-name
  discovery and label validation happen later, in the validator.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import zlib
from typing import Any, Final

import snappy
from google.protobuf import message as pb_message

from lokistack.distributor import decode_error, decode_json
from lokistack.distributor.decode_error import PushDecodeError
from lokistack.model import labels as model_labels
from lokistack.proto import push_pb2

MIB: Final = 1024 * 1024
MAX_STREAM_LABELS_SIZE: Final = 1 << 24
"""Largest labels string of one stream, in bytes (Loki's maxStreamLabelsSize)."""

REQUEST_BODY_TOO_LARGE: Final = "request_body_too_large"

_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

__all__ = [
    "MAX_STREAM_LABELS_SIZE",
    "MIB",
    "REQUEST_BODY_TOO_LARGE",
    "DecodeLimits",
    "PushDecodeError",
    "decode_push",
    "parse_media_type",
    "parse_stream_labels",
    "snappy_decoded_len",
]


@dataclasses.dataclass(frozen=True)
class DecodeLimits:
    """``distributor.max_recv_msg_size`` and ``max_decompressed_size`` (0 = 50 x recv)."""

    max_recv_msg_size: int = 100 * MIB
    max_decompressed_size: int = 0

    @property
    def decompressed_limit(self) -> int:
        return self.max_decompressed_size or 50 * self.max_recv_msg_size


def _too_large(size: int, limit: int, what: str = "message size") -> PushDecodeError:
    return PushDecodeError(
        413,
        f"request body too large: {what} too large than max ({size} vs {limit})",
        REQUEST_BODY_TOO_LARGE,
    )


def decode_push(
    body: bytes,
    *,
    content_type: str | None,
    content_encoding: str | None,
    legacy_json: bool,
    limits: DecodeLimits,
) -> push_pb2.PushRequest:
    """Decode one HTTP push body; raise :class:`PushDecodeError` with Loki's answer."""
    if len(body) > limits.max_recv_msg_size:
        raise _too_large(len(body), limits.max_recv_msg_size)
    encoding = content_encoding or ""
    if encoding == "gzip":
        body = _inflate(body, zlib.MAX_WBITS | 16, limits.decompressed_limit)
    elif encoding == "deflate":
        body = _inflate(body, -zlib.MAX_WBITS, limits.decompressed_limit)
    elif encoding not in ("", "snappy"):
        raise decode_error.bad_request(f'Content-Encoding "{encoding}" not supported')
    if parse_media_type(content_type) == "application/json":
        request = decode_json.decode_legacy(body) if legacy_json else decode_json.decode_v1(body)
    else:
        request = _decode_protobuf(body, limits.decompressed_limit)
    parse_stream_labels(request)
    return request


def parse_stream_labels(request: push_pb2.PushRequest) -> list[model_labels.Labels]:
    """Every stream's parsed labels, in order: the HTTP path's all-or-nothing check.

    :func:`decode_push` calls it, so an HTTP push fails as a whole, as Loki's
    ``ParseLokiRequest`` does: a labels string over 16 MiB is 413 ``request body too large``,
    the first one that does not parse is 400 ``couldn't parse labels: <error>`` (Loki counts no
    discarded samples for it, so ``reason`` is None). Over gRPC the validator drops such a
    stream instead. Parses are cached, so the validator's second look costs a dict lookup.
    """
    parsed = []
    for stream in request.streams:
        text = stream.labels
        size = len(text)
        if size * 4 > MAX_STREAM_LABELS_SIZE and (
            size > MAX_STREAM_LABELS_SIZE or len(text.encode("utf-8")) > MAX_STREAM_LABELS_SIZE
        ):
            raise PushDecodeError(413, "request body too large", REQUEST_BODY_TOO_LARGE)
        try:
            parsed.append(_parse_labels_cached(text))
        except model_labels.LabelsError as err:
            raise decode_error.bad_request(f"couldn't parse labels: {err}") from None
    return parsed


@functools.lru_cache(maxsize=16384)
def _parse_labels_cached(text: str) -> model_labels.Labels:
    return model_labels.parse_labels(text)


def parse_media_type(content_type: str | None) -> str:
    """The lower-cased media type, with Go's ``mime.ParseMediaType`` errors (400)."""
    media_type, _, params = (content_type or "").partition(";")
    media_type = media_type.strip().lower()
    kind, slash, subtype = media_type.partition("/")
    if not kind or not _TOKEN.fullmatch(kind):
        raise decode_error.bad_request("mime: no media type")
    if slash and not _TOKEN.fullmatch(subtype):
        raise decode_error.bad_request(
            "mime: expected token after slash"
            if not subtype or not _TOKEN.match(subtype)
            else "mime: unexpected content after media subtype"
        )
    for param in params.split(";"):
        if not param.strip():
            continue
        key, equals, value = param.strip().partition("=")
        if not equals or not _TOKEN.fullmatch(key.strip()) or not value.strip():
            raise decode_error.bad_request("mime: invalid media parameter")
    return media_type


# -- compression ---------------------------------------------------------------------------------


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    """gunzip (every member, as Go's reader does) or raw-inflate, at most ``limit`` bytes."""
    out: list[bytes] = []
    total = 0
    data = body
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            chunk = inflater.decompress(data, limit + 1 - total)
        except zlib.error as err:
            gzip_header = wbits > 0 and "header" in str(err)
            raise decode_error.bad_request(
                "gzip: invalid header" if gzip_header else "flate: corrupt input"
            ) from None
        total += len(chunk)
        out.append(chunk)
        if total > limit:
            raise _too_large(total, limit, "decompressed message size")
        if not inflater.eof:
            raise decode_error.bad_request("unexpected EOF")
        data = inflater.unused_data
        if wbits < 0 or not data:
            return b"".join(out)


def snappy_decoded_len(block: bytes) -> int:
    """The uncompressed length in a snappy block's varint preamble (Go's ``DecodedLen``)."""
    value = 0
    for index, byte in enumerate(block[:5]):
        value |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            if value > 0xFFFFFFFF:
                break
            return value
    raise decode_error.bad_request("snappy: corrupt input")


def _decode_protobuf(body: bytes, limit: int) -> push_pb2.PushRequest:
    size = snappy_decoded_len(body)
    if size > limit:
        raise _too_large(size, limit, "decompressed message size")
    try:
        raw = snappy.uncompress(body)
    except Exception:  # python-snappy raises its own UncompressError, cramjam others
        raise decode_error.bad_request("snappy: corrupt input") from None
    try:
        return push_pb2.PushRequest.FromString(raw)
    except pb_message.DecodeError as err:
        if "UTF-8" not in str(err):
            raise decode_error.bad_request("proto: cannot parse invalid wire-format data") from None
    try:
        lenient = _lenient_request_class().FromString(raw)
    except pb_message.DecodeError:
        raise decode_error.bad_request("proto: cannot parse invalid wire-format data") from None
    return _from_lenient(lenient)


@functools.cache
def _lenient_request_class() -> Any:
    """``PushRequest`` with ``bytes`` in place of ``string``: same wire format, no UTF-8 check."""
    from google.protobuf import (  # noqa: PLC0415  (only for bodies with invalid UTF-8)
        descriptor_pb2,
        descriptor_pool,
        message_factory,
        timestamp_pb2,
    )

    field = descriptor_pb2.FieldDescriptorProto
    optional, repeated = field.LABEL_OPTIONAL, field.LABEL_REPEATED

    def message(
        name: str, *fields: tuple[str, int, int, int, str]
    ) -> descriptor_pb2.DescriptorProto:
        proto = descriptor_pb2.DescriptorProto(name=name)
        for field_name, number, label, kind, type_name in fields:
            added = proto.field.add(name=field_name, number=number, label=label, type=kind)
            if type_name:
                added.type_name = type_name
        return proto

    msg, raw, u64 = field.TYPE_MESSAGE, field.TYPE_BYTES, field.TYPE_UINT64
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="lokistack/lenient_push.proto",
        package="lenient",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
        message_type=[
            message("Pair", ("name", 1, optional, raw, ""), ("value", 2, optional, raw, "")),
            message(
                "Entry",
                ("timestamp", 1, optional, msg, ".google.protobuf.Timestamp"),
                ("line", 2, optional, raw, ""),
                ("structuredMetadata", 3, repeated, msg, ".lenient.Pair"),
                ("parsed", 4, repeated, msg, ".lenient.Pair"),
            ),
            message(
                "Stream",
                ("labels", 1, optional, raw, ""),
                ("entries", 2, repeated, msg, ".lenient.Entry"),
                ("hash", 3, optional, u64, ""),
            ),
            message(
                "Request",
                ("streams", 1, repeated, msg, ".lenient.Stream"),
                ("format", 2, optional, raw, ""),
            ),
        ],
    )
    timestamp_proto = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(timestamp_proto)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(timestamp_proto)
    pool.Add(file_proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("lenient.Request"))


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _from_lenient(lenient: Any) -> push_pb2.PushRequest:
    request = push_pb2.PushRequest(format=_text(lenient.format))
    for source in lenient.streams:
        stream = request.streams.add(labels=_text(source.labels), hash=source.hash)
        for entry in source.entries:
            target = stream.entries.add(line=_text(entry.line))
            target.timestamp.seconds = entry.timestamp.seconds
            target.timestamp.nanos = entry.timestamp.nanos
            for pair in entry.structuredMetadata:
                target.structuredMetadata.add(name=_text(pair.name), value=_text(pair.value))
    return request
