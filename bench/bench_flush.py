"""Flush throughput: in-memory chunks to a real MinIO, with index rows, end to end.

50 streams x 20,000 entries of 150-byte logfmt-like lines (about 150 MB of lines) sit in an
ingester's chunks; one forced flush closes every chunk, encodes it, writes it to MinIO and adds
its index row, with 32 flush workers. MinIO runs on the same 2 cores.
"""

from __future__ import annotations

import asyncio
import datetime
import pathlib
import random
import sys
import tempfile
import time

import minio

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tools"), str(ROOT)]

from lokistack import config, limits  # noqa: E402
from lokistack.chunk import codec  # noqa: E402
from lokistack.ingester import flush, instance, stream  # noqa: E402
from lokistack.storage import chunk_store, index_shipper  # noqa: E402
from measure import Measurement  # noqa: E402
from testinfra import minio as minio_infra  # noqa: E402

from tests.support import stored  # noqa: E402

STREAMS = 50
ENTRIES = 20_000


async def _flush_once(workdir: pathlib.Path) -> list[Measurement]:
    server = minio_infra.MinioServer(workdir / "minio")
    server.start()
    try:
        minio.Minio(
            server.endpoint,
            access_key=server.access_key,
            secret_key=server.secret_key,
            secure=False,
        ).make_bucket("flush")
        store = stored.minio_store(server, "flush")
        shape = stream.ChunkShape(codec.Encoding.SNAPPY, 262144, 1572864, 2 * 3600 * 10**9)
        tenant = instance.TenantInstance(
            "bench", limits.Overrides(config.Limits()), lambda: 1, 1, shape
        )
        rng = random.Random(3)
        words = [f"{rng.getrandbits(40):x}" for _ in range(500)]
        lines = [
            ("level=info msg=" + " ".join(rng.choices(words, k=14)))[:150] for _ in range(ENTRIES)
        ]
        line_bytes = sum(len(line) for line in lines) * STREAMS
        for index in range(STREAMS):
            tenant.create_stream(f'{{app="flush", n="{index}"}}').append(
                list(range(1, ENTRIES + 1)), lines, None
            )
        shipper = index_shipper.IndexShipper(
            store, workdir / "index", "bench", datetime.timedelta(minutes=15)
        )
        policy = flush.FlushPolicy(
            idle_seconds=1800,
            max_age_ns=2 * 3600 * 10**9,
            retain_seconds=0,
            check_period=30,
            workers=32,
            op_timeout=600,
        )
        flusher = flush.Flusher({"bench": tenant}, chunk_store.ChunkStore(store), shipper, policy)
        flusher.start()
        started = time.perf_counter()
        await flusher.flush_all()
        seconds = time.perf_counter() - started
        stored_bytes = sum(info.size for info in await store.list("bench/chunks/"))
        await flusher.stop()
        store.close()
    finally:
        server.stop()
    entries = STREAMS * ENTRIES
    return [
        Measurement("flush: lines in", seconds, entries, "entries", line_bytes),
        Measurement("flush: chunk bytes to MinIO", seconds, entries, "entries", stored_bytes),
    ]


def run() -> list[Measurement]:
    with tempfile.TemporaryDirectory(prefix="bench-flush-") as tmp:
        return asyncio.run(_flush_once(pathlib.Path(tmp)))
