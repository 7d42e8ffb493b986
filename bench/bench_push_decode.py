"""How fast the Loki push wire format decodes: the distributor's floor per entry.

A PushRequest of 10 streams x 1,000 entries of ~150-byte lines, snappy block compressed as
clients send it. Measured: decompress + parse alone, and decompress + parse + reading every
entry's timestamp and line (the honest number: Python objects per entry are the cost).
"""

from __future__ import annotations

import random

import snappy
from lokistack.proto import push_pb2
from measure import Measurement, best_of

STREAMS = 10
ENTRIES_PER_STREAM = 1000


def _request() -> bytes:
    rng = random.Random(42)
    words = [f"word{i}" for i in range(500)]
    request = push_pb2.PushRequest()
    for stream_index in range(STREAMS):
        stream = request.streams.add(labels=f'{{app="bench", pod="pod-{stream_index}"}}')
        for entry_index in range(ENTRIES_PER_STREAM):
            entry = stream.entries.add(line=" ".join(rng.choices(words, k=20)))
            entry.timestamp.seconds = 1_700_000_000 + entry_index
            entry.timestamp.nanos = entry_index
    return bytes(snappy.compress(request.SerializeToString()))


def run() -> list[Measurement]:
    body = _request()
    raw = snappy.decompress(body)
    entries = STREAMS * ENTRIES_PER_STREAM

    def parse() -> object:
        return push_pb2.PushRequest.FromString(snappy.decompress(body))

    def parse_and_touch() -> int:
        request = push_pb2.PushRequest.FromString(snappy.decompress(body))
        total = 0
        for stream in request.streams:
            for entry in stream.entries:
                total += entry.timestamp.seconds + len(entry.line)
        return total

    return [
        Measurement("snappy + parse", best_of(5, parse), entries, "entries", len(raw)),
        Measurement(
            "snappy + parse + touch every entry",
            best_of(5, parse_and_touch),
            entries,
            "entries",
            len(raw),
        ),
    ]
