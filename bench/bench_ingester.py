"""The ingester's memory per stream and per entry, and WAL replay speed into chunks.

- memory per stream: 10,000 streams of one entry each in a tenant instance (tracemalloc);
- memory per entry: 100,000 logfmt-like 150-byte lines in one stream, blocks cut along the way;
- replay: 1M entries (10 streams x 1,000 entries x 100 pushes) logged to a WAL, then a new
  ingester replays them into chunks at start (checkpoint-free: every segment is replayed).
"""

from __future__ import annotations

import asyncio
import pathlib
import random
import tempfile
import time
import tracemalloc

from lokistack import config, limits
from lokistack.chunk import codec
from lokistack.ingester import ingester as ingester_mod
from lokistack.ingester import instance, stream
from lokistack.proto import push_pb2
from lokistack.storage import filesystem
from measure import Measurement, Reading

SHAPE = stream.ChunkShape(codec.Encoding.SNAPPY, 262144, 1572864, 2 * 3600 * 10**9)
UNLIMITED = config.Limits(
    max_global_streams_per_user=0,
    per_stream_rate_limit=1 << 40,
    per_stream_rate_limit_burst=1 << 40,
)


def _lines(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    words = [f"{rng.getrandbits(40):x}" for _ in range(500)]
    return [("level=info msg=" + " ".join(rng.choices(words, k=14)))[:150] for _ in range(count)]


def _tenant() -> instance.TenantInstance:
    return instance.TenantInstance("bench", limits.Overrides(UNLIMITED), lambda: 1, 1, SHAPE)


def _traced_bytes(work: object) -> int:
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    assert callable(work)
    work()
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    return grown


def _memory_per_stream() -> Reading:
    tenant = _tenant()

    def fill() -> None:
        for batch in range(10):
            request = push_pb2.PushRequest()
            for index in range(1000):
                entry = request.streams.add(
                    labels=f'{{app="mem", pod="pod-{batch}-{index}", namespace="ns-{index % 10}"}}'
                ).entries.add(line="x")
                entry.timestamp.seconds = 1_700_000_000
            tenant.push(request)

    grown = _traced_bytes(fill)
    return Reading("memory per stream (10k streams)", grown / 10_000, "bytes")


def _memory_per_entry() -> Reading:
    """Pushed through ``push`` as in production: every entry's line is a new string."""
    tenant = _tenant()
    request = push_pb2.PushRequest()
    target = request.streams.add(labels='{app="mem"}')
    for line in _lines(1000):
        target.entries.add(line=line)

    def fill() -> None:
        for batch in range(100):
            for offset, entry in enumerate(target.entries):
                entry.timestamp.seconds = 1_700_000_000 + batch
                entry.timestamp.nanos = offset
            tenant.push(request)

    grown = _traced_bytes(fill)
    return Reading("memory per 150 B entry (100k entries)", grown / 100_000, "bytes")


async def _replay(workdir: pathlib.Path) -> Measurement:
    cfg = config.parse(
        f"""
ingester:
  index_dir: {workdir / "index"}
  flush_on_shutdown: false
  wal: {{dir: {workdir / "wal"}}}
""",
        "bench",
    )

    class Active:
        def is_active(self) -> bool:
            return True

    def new_ingester() -> ingester_mod.Ingester:
        return ingester_mod.Ingester(
            cfg,
            overrides=limits.Overrides(UNLIMITED),
            member=Active(),
            healthy_ingesters=lambda: 1,
            store=filesystem.FilesystemStore(workdir / "objects"),
            instance_id="bench",
        )

    lines = _lines(1000, seed=5)
    writer = new_ingester()
    await writer.start()
    assert writer.wal is not None
    for batch in range(100):
        request = push_pb2.PushRequest()
        for index in range(10):
            target = request.streams.add(labels=f'{{app="replay", n="{index}"}}')
            for offset, line in enumerate(lines):
                entry = target.entries.add(line=line)
                entry.timestamp.seconds = 1_700_000_000 + batch
                entry.timestamp.nanos = offset
        records, _ = writer.instance("bench").push(request)
        await writer.wal.log(records)
    await writer.stop()

    reader = new_ingester()
    started = time.perf_counter()
    await reader.start()
    seconds = time.perf_counter() - started
    entries = reader.instance("bench").entry_count()
    await reader.stop()
    return Measurement(
        "WAL replay into chunks at start", seconds, entries, "entries", entries * 150
    )


def run() -> list[Measurement | Reading]:
    with tempfile.TemporaryDirectory(prefix="bench-ingester-") as tmp:
        replay = asyncio.run(_replay(pathlib.Path(tmp)))
    return [_memory_per_stream(), _memory_per_entry(), replay]
