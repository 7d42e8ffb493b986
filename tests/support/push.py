"""Build Loki push bodies and send them, as a Loki client would."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

import snappy
from lokistack.proto import push_pb2

Entry = tuple[int, str]  # (timestamp ns, line)


def protobuf_body(streams: Mapping[str, Sequence[Entry]]) -> bytes:
    """A snappy-compressed PushRequest: what Promtail and Alloy send."""
    request = push_pb2.PushRequest()
    for labels, entries in streams.items():
        stream = request.streams.add(labels=labels)
        for ts, line in entries:
            entry = stream.entries.add(line=line)
            entry.timestamp.seconds, entry.timestamp.nanos = divmod(ts, 1_000_000_000)
    return bytes(snappy.compress(request.SerializeToString()))


def json_body(streams: Mapping[str, Sequence[Entry]]) -> bytes:
    """A v1 JSON push; ``streams`` keys are selector strings like ``{app="a"}``."""
    payload: dict[str, list[object]] = {"streams": []}
    for labels, entries in streams.items():
        pairs = dict(
            part.split("=", 1) for part in labels.strip("{}").replace('"', "").split(", ") if part
        )
        payload["streams"].append(
            {"stream": pairs, "values": [[str(ts), line] for ts, line in entries]}
        )
    return json.dumps(payload).encode()


def now_ns() -> int:
    return time.time_ns()


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    body: str


def post(
    url: str,
    body: bytes,
    content_type: str = "application/x-protobuf",
    headers: Mapping[str, str] | None = None,
    timeout: float = 15.0,
) -> Answer:
    request = urllib.request.Request(url, data=body, method="POST")
    # An empty string sends an empty header (urllib would otherwise add a form type).
    request.add_header("Content-Type", content_type)
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.read().decode(errors="replace"))
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read().decode(errors="replace"))
