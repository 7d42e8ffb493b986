"""Object store throughput on a real MinIO, and how long an index lookup takes.

Starts its own MinIO on loopback (the test infrastructure binary, ``make tools``) and measures:

- put and get of 1.5 MB objects (the chunk target size), 8 requests in flight;
- ``ChunkStore.get_chunks`` of the same objects with its default parallelism of 16;
- ``IndexReader.series`` over 50 index files x 1,000 series in one period (what a day of
  15-minute seals by a few ingesters looks like before compaction): cold (the files are
  downloaded into an empty cache) and warm (cached), with a selective and a broad matcher.

Knobs (environment): BENCH_STORAGE_OBJECTS (32), BENCH_STORAGE_FILES (50),
BENCH_STORAGE_SERIES (1000). MinIO shares the 2 cores with the client, so numbers are a floor.
"""

from __future__ import annotations

import asyncio
import functools
import os
import pathlib
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Coroutine
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tools"), str(ROOT)]

import minio  # noqa: E402
from lokistack.model import fingerprint as model_fingerprint  # noqa: E402
from lokistack.model import labels as model_labels  # noqa: E402
from lokistack.storage import chunk_store, index_format, index_reader  # noqa: E402
from measure import Measurement, best_of  # noqa: E402
from testinfra import minio as minio_infra  # noqa: E402

from tests.support import stored  # noqa: E402

OBJECT_SIZE = 1536 * 1024
OBJECTS = int(os.environ.get("BENCH_STORAGE_OBJECTS", "32"))
FILES = int(os.environ.get("BENCH_STORAGE_FILES", "50"))
SERIES = int(os.environ.get("BENCH_STORAGE_SERIES", "1000"))
IN_FLIGHT = 8
PERIOD = 19_723
T0 = PERIOD * index_format.DAY_NS
BUCKET = "bench"


Job = Callable[[], Coroutine[Any, Any, object]]


def _timed(repeats: int, work: Job) -> float:
    return best_of(repeats, lambda: asyncio.run(work()))


async def _bounded(jobs: list[Job]) -> None:
    semaphore = asyncio.Semaphore(IN_FLIGHT)

    async def one(job: Job) -> None:
        async with semaphore:
            await job()

    await asyncio.gather(*(one(job) for job in jobs))


def _series_labels(index: int) -> str:
    pairs = [
        ("app", f"app-{index % 20}"),
        ("namespace", f"ns-{index % 5}"),
        ("pod", f"pod-{index}"),
    ]
    return model_labels.canonical(model_labels.normalize(pairs))


def _index_file(path: pathlib.Path, file_index: int) -> None:
    """One sealed index file: every series with one chunk, written with the documented schema."""
    connection = sqlite3.connect(path)
    try:
        connection.executescript(index_format.SCHEMA)
        series, postings, chunks = [], [], []
        for index in range(SERIES):
            labels = _series_labels(index)
            fp = model_fingerprint.fingerprint(labels)
            stored = index_format.fingerprint_to_sql(fp)
            series.append((stored, labels))
            postings += [(n, v, stored) for n, v in model_labels.parse_labels(labels)]
            start = T0 + file_index * 900 * 10**9
            key = f"bench/chunks/{fp:016x}/{start:x}-{start + 10**9:x}-{file_index:08x}"
            chunks.append((stored, start, start + 10**9, key, OBJECT_SIZE, 1000))
        with connection:
            connection.executemany("INSERT INTO series VALUES (?, ?)", series)
            connection.executemany("INSERT INTO postings VALUES (?, ?, ?)", postings)
            connection.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)", chunks)
        connection.execute("VACUUM")
    finally:
        connection.close()


def _measure(server: minio_infra.MinioServer, tmp: pathlib.Path) -> list[Measurement]:
    store = stored.minio_store(server, BUCKET)
    results: list[Measurement] = []
    try:
        payload = os.urandom(OBJECT_SIZE)
        keys = [f"bench/chunks/{n:016x}/0-1-00000000" for n in range(OBJECTS)]
        total = OBJECTS * OBJECT_SIZE

        def puts() -> Coroutine[Any, Any, None]:
            return _bounded([functools.partial(store.put, key, payload) for key in keys])

        def gets() -> Coroutine[Any, Any, None]:
            return _bounded([functools.partial(store.get, key) for key in keys])

        def get_chunks() -> Coroutine[Any, Any, dict[str, bytes]]:
            return chunk_store.ChunkStore(store).get_chunks(keys)

        results.append(
            Measurement(
                f"put {OBJECTS} x 1.5 MB, {IN_FLIGHT} in flight",
                _timed(3, puts),
                OBJECTS,
                "objects",
                total,
            )
        )
        results.append(
            Measurement(
                f"get {OBJECTS} x 1.5 MB, {IN_FLIGHT} in flight",
                _timed(3, gets),
                OBJECTS,
                "objects",
                total,
            )
        )
        results.append(
            Measurement(
                "ChunkStore.get_chunks (16 parallel)",
                _timed(3, get_chunks),
                OBJECTS,
                "objects",
                total,
            )
        )

        files_dir = tmp / "files"
        files_dir.mkdir()
        index_bytes = 0
        for file_index in range(FILES):
            path = files_dir / f"ingester-{file_index % 3}-{1_704_067_200_000 + file_index}.sqlite"
            _index_file(path, file_index)
            index_bytes += path.stat().st_size
            asyncio.run(store.put(f"index/{PERIOD}/bench/{path.name}", path.read_bytes()))

        selective = [index_reader.Matcher("app", "=", "app-3")]
        broad = [index_reader.Matcher("namespace", "=~", "ns-[0-2]")]
        cold_runs = iter(range(1000))

        def lookup(
            matchers: list[index_reader.Matcher], cache: pathlib.Path
        ) -> Coroutine[Any, Any, list[index_reader.SeriesRef]]:
            reader = index_reader.IndexReader(store, cache)
            return reader.series("bench", T0, T0 + index_format.DAY_NS - 1, matchers)

        def cold() -> Coroutine[Any, Any, list[index_reader.SeriesRef]]:
            return lookup(selective, tmp / f"cold-{next(cold_runs)}")

        refs = FILES * SERIES
        results.append(
            Measurement(
                f"index lookup cold, {FILES} files",
                _timed(3, cold),
                refs,
                "refs scanned",
                index_bytes,
            )
        )
        warm_cache = tmp / "warm"
        asyncio.run(lookup(selective, warm_cache))
        found = asyncio.run(lookup(selective, warm_cache))
        results.append(
            Measurement(
                f"index lookup warm, app= ({len(found)} series)",
                _timed(5, lambda: lookup(selective, warm_cache)),
                refs,
                "refs scanned",
                index_bytes,
            )
        )
        found = asyncio.run(lookup(broad, warm_cache))
        results.append(
            Measurement(
                f"index lookup warm, =~ ({len(found)} series)",
                _timed(5, lambda: lookup(broad, warm_cache)),
                refs,
                "refs scanned",
                index_bytes,
            )
        )
    finally:
        store.close()
    return results


def run() -> list[Measurement]:
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp_name:
        tmp = pathlib.Path(tmp_name)
        server = minio_infra.MinioServer(tmp / "minio")
        server.start()
        try:
            client = minio.Minio(
                server.endpoint,
                access_key=server.access_key,
                secret_key=server.secret_key,
                secure=False,
                region=minio_infra.REGION,
            )
            client.make_bucket(BUCKET)
            return _measure(server, tmp)
        finally:
            server.stop()
