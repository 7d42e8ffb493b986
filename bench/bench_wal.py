"""How fast the WAL logs pushes and replays them: the ingester's durability cost per entry.

Pushes of 10 streams x 100 entries of ~150-byte lines, each logged as one batch of 10 entries
records. Measured:

- building the records from the protobuf stream;
- ``log()`` in ``group`` mode (encode + CRC + write; the fsync task runs beside it);
- ``log()`` in ``always`` mode with 1 and with 32 concurrent callers (group commit);
- replay of a ~200 MB WAL, decoding records only and also materialising every line.

The WAL is written to a temporary directory on the default temporary file system. Byte rates count
frame bytes written to or read from the WAL.
"""

from __future__ import annotations

import asyncio
import datetime
import pathlib
import random
import tempfile
import time

from lokistack.proto import push_pb2
from lokistack.wal import log, record, replay
from measure import Measurement, best_of

STREAMS = 10
ENTRIES_PER_STREAM = 100
BATCHES = 400  # per log measurement: 400k entries, ~64 MB
REPLAY_BYTES = 200 * 1000 * 1000
PERIOD = datetime.timedelta(milliseconds=100)


def _request(seed: int) -> push_pb2.PushRequest:
    rng = random.Random(seed)
    words = [f"word{i}" for i in range(500)]
    request = push_pb2.PushRequest()
    for stream_index in range(STREAMS):
        stream = request.streams.add(labels=f'{{app="bench", pod="pod-{stream_index}"}}')
        for entry_index in range(ENTRIES_PER_STREAM):
            line = " ".join(rng.choices(words, k=20))[:150].ljust(150, ".")
            entry = stream.entries.add(line=line)
            entry.timestamp.seconds = 1_700_000_000 + entry_index
            entry.timestamp.nanos = entry_index
    return request


def _records(request: push_pb2.PushRequest) -> list[record.Record]:
    return [
        record.EntriesRecord.from_stream("bench", index, stream, counter=ENTRIES_PER_STREAM)
        for index, stream in enumerate(request.streams)
    ]


async def _log(
    directory: pathlib.Path, fsync: log.FsyncMode, callers: int, records: list[record.Record]
) -> float:
    wal = log.WAL(directory, 128 << 20, fsync, PERIOD)
    await wal.open()

    async def caller(count: int) -> None:
        for _ in range(count):
            await wal.log(records)

    started = time.perf_counter()
    await asyncio.gather(*(caller(BATCHES // callers) for _ in range(callers)))
    seconds = time.perf_counter() - started
    await wal.close()
    return seconds


def _measure_log(fsync: log.FsyncMode, callers: int, records: list[record.Record]) -> float:
    best = float("inf")
    for _ in range(3):
        with tempfile.TemporaryDirectory(prefix="bench-wal-") as directory:
            seconds = asyncio.run(_log(pathlib.Path(directory), fsync, callers, records))
        best = min(best, seconds)
    return best


async def _fill(directory: pathlib.Path, records: list[record.Record], batches: int) -> None:
    wal = log.WAL(directory, 128 << 20, "group", PERIOD)
    await wal.open()
    for _ in range(batches):
        await wal.log(records)
    await wal.close()


def run() -> list[Measurement]:
    request = _request(42)
    entries = STREAMS * ENTRIES_PER_STREAM
    records = _records(request)
    frame_bytes = len(record.encode_batch(records)) + 9
    line_bytes = sum(len(entry.line) for stream in request.streams for entry in stream.entries)
    total_entries = entries * BATCHES
    total_bytes = frame_bytes * BATCHES
    columns = [
        (
            [e.timestamp.seconds * 1_000_000_000 + e.timestamp.nanos for e in stream.entries],
            [e.line for e in stream.entries],
        )
        for stream in request.streams
    ]

    def from_entries() -> list[record.EntriesRecord]:
        return [
            record.EntriesRecord.from_entries("bench", index, stamps, lines)
            for index, (stamps, lines) in enumerate(columns)
        ]

    results = [
        Measurement(
            "from_entries (lists the ingester has)",
            best_of(20, from_entries),
            entries,
            "entries",
            line_bytes,
        ),
        Measurement(
            "from_stream (10x100 push)",
            best_of(20, lambda: _records(request)),
            entries,
            "entries",
            line_bytes,
        ),
        Measurement(
            "encode_batch (10x100 push)",
            best_of(20, lambda: record.encode_batch(records)),
            entries,
            "entries",
            frame_bytes,
        ),
    ]
    modes: list[tuple[str, log.FsyncMode, int]] = [
        ("log group, 1 caller", "group", 1),
        ("log always, 1 caller", "always", 1),
        ("log always, 32 callers", "always", 32),
    ]
    for name, fsync, callers in modes:
        seconds = _measure_log(fsync, callers, records)
        results.append(Measurement(name, seconds, total_entries, "entries", total_bytes))

    with tempfile.TemporaryDirectory(prefix="bench-wal-") as directory:
        path = pathlib.Path(directory)
        batches = REPLAY_BYTES // frame_bytes
        asyncio.run(_fill(path, records, batches))
        size = sum(file.stat().st_size for file in path.iterdir())

        def decode_only() -> int:
            return sum(1 for _ in replay.replay(path))

        def with_lines() -> int:
            total = 0
            for item in replay.replay(path):
                if isinstance(item, record.EntriesRecord):
                    total += len(item.lines)
            return total

        replayed = batches * entries
        mb = f"{size / 1e6:.0f} MB"
        results.append(
            Measurement(f"replay {mb}, records", best_of(3, decode_only), replayed, "entries", size)
        )
        results.append(
            Measurement(f"replay {mb}, + lines", best_of(3, with_lines), replayed, "entries", size)
        )
    return results
