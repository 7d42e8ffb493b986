"""Loki's two JSON push bodies to ``PushRequest``: v1 (``/loki/api/v1/push``) and legacy.

:mod:`~lokistack.distributor.decode` picks the shape once the body is decompressed and its media
type is ``application/json``; it parses the stream labels afterwards. Errors are
:class:`~lokistack.distributor.decode_error.PushDecodeError` (400), as for every push body.

Decisions that are ours (docs say why where Loki is silent):

- A zero-length JSON body is a JSON syntax error, 400.
- Unpaired surrogates in JSON strings become U+FFFD, as in Go's JSON decoder.
- JSON errors name the offending element (``streams[0].values[3][0]``); Loki's texts there come
  from its JSON library and are not meaningful to copy.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any, Final

from lokistack.distributor import decode_error
from lokistack.model import goquote
from lokistack.proto import push_pb2

_NS: Final = 1_000_000_000
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_GO_ZERO_TIME_SECONDS: Final = -62135596800
"""Unix seconds of Go's zero ``time.Time`` (year 1): a legacy entry without ``ts``."""

_RFC3339: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


class _JSONNumber(str):
    """A JSON number kept as its source text: label values take it verbatim, as Loki does."""

    __slots__ = ()


def _json_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON value {name}")


def _load_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", "replace")  # Go's JSON decoder does the same
    try:
        return json.loads(
            text, parse_int=_JSONNumber, parse_float=_JSONNumber, parse_constant=_json_constant
        )
    except ValueError as err:
        raise decode_error.bad_request(f"malformed push request: invalid JSON: {err}") from None


def _malformed(path: str, problem: str) -> decode_error.PushDecodeError:
    return decode_error.bad_request(f"malformed push request: {path}: {problem}")


def _index_of(items: list[Any], item: Any) -> int:
    """Where ``item`` is in ``items``: found only on error, to keep the hot loops index-free."""
    return next(index for index, candidate in enumerate(items) if candidate is item)


def _streams_of(document: Any, key: str) -> list[Any]:
    if not isinstance(document, dict):
        raise _malformed("body", 'expected an object with a "streams" array')
    streams = document.get("streams")
    if streams is None:
        return []
    if not isinstance(streams, list):
        raise _malformed("streams", "expected an array")
    for index, item in enumerate(streams):
        if item is not None and not isinstance(item, dict):
            raise _malformed(f"streams[{index}]", "expected an object")
        if item is not None and not isinstance(item.get(key, []), list | None):
            raise _malformed(f"streams[{index}].{key}", "expected an array")
    return streams


def decode_v1(body: bytes) -> push_pb2.PushRequest:
    """Loki's v1 JSON: ``{"streams": [{"stream": {...}, "values": [[ts, line, sm?], ...]}]}``."""
    document = _load_json(body)
    try:
        return _build_v1(document)
    except UnicodeEncodeError:  # an unpaired surrogate escape somewhere in a string
        return _build_v1(_replace_surrogates(document))


def _build_v1(document: Any) -> push_pb2.PushRequest:
    request = push_pb2.PushRequest()
    add_stream = request.streams.add
    streams = _streams_of(document, "values")
    for stream_index, item in enumerate(streams):
        if item is None:
            continue
        stream = add_stream(labels=_label_set_string(item.get("stream"), stream_index))
        values = item.get("values")
        if not values:
            continue
        add_entry = stream.entries.add
        for value in values:
            if value is None:
                continue
            if type(value) is not list or len(value) < 2:
                raise _malformed(
                    f"streams[{stream_index}].values[{_index_of(values, value)}]",
                    "expected an array [timestamp, line] or [timestamp, line, metadata]",
                )
            timestamp, line = value[0], value[1]
            if not isinstance(timestamp, str) or type(timestamp) is _JSONNumber:
                raise _malformed(
                    f"streams[{stream_index}].values[{_index_of(values, value)}][0]",
                    "timestamp must be a string of Unix nanoseconds",
                )
            if timestamp.isdigit() and timestamp.isascii():
                nanos = int(timestamp)
                if nanos > _INT64_MAX:
                    nanos = _parse_nanos(timestamp, stream_index, _index_of(values, value))
            else:
                nanos = _parse_nanos(timestamp, stream_index, _index_of(values, value))
            if type(line) is not str:
                raise _malformed(
                    f"streams[{stream_index}].values[{_index_of(values, value)}][1]",
                    "line must be a string",
                )
            entry = add_entry(line=line)
            stamp = entry.timestamp
            stamp.seconds, stamp.nanos = divmod(nanos, _NS)
            if len(value) > 2:
                _add_metadata(
                    entry,
                    value[2],
                    f"streams[{stream_index}].values[{_index_of(values, value)}][2]",
                )
    return request


def _parse_nanos(text: str, stream_index: int, value_index: int) -> int:
    digits = text[1:] if text.startswith("-") else text
    if digits.isascii() and digits.isdigit():
        nanos = int(text)
        if _INT64_MIN <= nanos <= _INT64_MAX:
            return nanos
    raise _malformed(
        f"streams[{stream_index}].values[{value_index}][0]",
        f"timestamp {text!r} is not a decimal int64 of Unix nanoseconds",
    )


def _add_metadata(entry: push_pb2.EntryAdapter, metadata: Any, path: str) -> None:
    if not isinstance(metadata, dict):
        raise _malformed(path, "structured metadata must be an object")
    add = entry.structuredMetadata.add
    for name, value in metadata.items():
        if type(value) is not str:
            raise _malformed(f"{path}.{name}", "structured metadata values must be strings")
        add(name=name, value=value)


def _label_set_string(label_set: Any, stream_index: int) -> str:
    """Loki's ``LabelSet.String()``: keys sorted and bare, values Go-quoted."""
    if label_set is None:
        return ""
    if not isinstance(label_set, dict):
        raise _malformed(f"streams[{stream_index}].stream", "expected an object")
    parts = []
    for key in sorted(label_set):
        value = label_set[key]
        if not isinstance(value, str):
            if isinstance(value, dict | list):
                raise _malformed(f"streams[{stream_index}].stream.{key}", "expected a string")
            value = "null" if value is None else ("true" if value else "false")
        parts.append(key + "=" + goquote.go_quote(value))
    return "{" + ", ".join(parts) + "}"


def _replace_surrogates(node: Any) -> Any:
    if isinstance(node, str):
        return _SURROGATE.sub("\ufffd", node)
    if isinstance(node, list):
        return [_replace_surrogates(item) for item in node]
    if isinstance(node, dict):
        return {_replace_surrogates(key): _replace_surrogates(value) for key, value in node.items()}
    return node


def decode_legacy(body: bytes) -> push_pb2.PushRequest:
    """``/api/prom/push`` JSON: ``PushRequest``'s own field names, RFC3339Nano timestamps."""
    document = _load_json(body)
    try:
        return _build_legacy(document)
    except UnicodeEncodeError:
        return _build_legacy(_replace_surrogates(document))


def _build_legacy(document: Any) -> push_pb2.PushRequest:
    request = push_pb2.PushRequest()
    for stream_index, item in enumerate(_streams_of(document, "entries")):
        if item is None:
            continue
        labels = item.get("labels")
        if labels is not None and type(labels) is not str:
            raise _malformed(f"streams[{stream_index}].labels", "expected a string")
        stream = request.streams.add(labels=labels or "")
        for entry_index, source in enumerate(item.get("entries") or ()):
            path = f"streams[{stream_index}].entries[{entry_index}]"
            if source is None:
                continue
            if not isinstance(source, dict):
                raise _malformed(path, "expected an object")
            line = source.get("line")
            if not isinstance(line, str | None) or type(line) is _JSONNumber:
                raise _malformed(f"{path}.line", "expected a string")
            entry = stream.entries.add(line=line or "")
            stamp = source.get("ts")
            if stamp is None:
                entry.timestamp.seconds = _GO_ZERO_TIME_SECONDS
            else:
                entry.timestamp.seconds, entry.timestamp.nanos = _parse_rfc3339(stamp, path)
            metadata = source.get("structuredMetadata")
            if metadata is not None:
                _add_metadata(entry, metadata, f"{path}.structuredMetadata")
    return request


def _parse_rfc3339(value: Any, path: str) -> tuple[int, int]:
    """Go's RFC3339Nano parsing, to ``(unix seconds, nanos)``."""
    match = _RFC3339.fullmatch(value) if type(value) is str else None
    if match is None:
        raise _malformed(f"{path}.ts", f"expected an RFC3339 timestamp, got {value!r}")
    year, month, day, hour, minute, second, fraction, _, sign, off_h, off_m = match.groups()
    try:
        moment = datetime.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second)
        )
    except ValueError as err:
        raise _malformed(f"{path}.ts", f"invalid timestamp {value!r}: {err}") from None
    seconds = (
        (moment.toordinal() - 719163) * 86400 + int(hour) * 3600 + int(minute) * 60 + int(second)
    )
    if sign:
        offset = int(off_h) * 3600 + int(off_m) * 60
        seconds -= offset if sign == "+" else -offset
    nanos = int((fraction or "0")[:9].ljust(9, "0"))
    return seconds, nanos
