"""Query throughput and latency over a day of chunks in MinIO, through the HTTP query API.

A dataset of about ``BENCH_QUERY_GB`` (2) GB of log lines is written straight into a MinIO bucket
with the storage code the ingester's flush uses (``MemChunk`` cut by ``space_for`` and at the
2-hour ``max_chunk_age``, ``ChunkStore.put_chunk``, the index head and shipper), not through the
push API, which would take far longer than the queries. The lines are ~200-byte JSON
(``api``, ``checkout``, ``payments``) and logfmt (``auth``, ``worker``, ``search``) lines over 24
hours in 36 streams labelled ``app``, ``env`` and ``level`` (``api`` carries 40% of the volume,
``prod`` 75%, ``info`` 80%), one copy per stream (``BENCH_QUERY_RF`` writes more copies, cut at
different points, as replicated ingesters would). The dataset stays in MinIO's data directory
(``BENCH_QUERY_DIR``, default ``~/.cache/lokistack/bench-query``), recognised by a marker object
that records its parameters, so later runs skip the generation.

One ``lokistack --target=querier`` process reads it, with an empty in-memory ring: the data ends
over an hour ago and ``query_ingesters_within`` is 1 s, so no ingester is asked (a query that
reaches into that window fails, the ring being empty). The chunk cache is off unless
``BENCH_QUERY_CHUNK_CACHE_MB`` says otherwise, so every query downloads its chunks from MinIO.
Each query covers the whole day through ``/loki/api/v1/query_range``; the log queries' matches
are planted so rarely (72 lines each) that ``limit=100`` never stops a scan early:

- ``literal``: ``{app="api"} |= "<token>"``;
- ``regex``: ``{app="api"} |~ "err.r [0-9]+"``;
- ``json``: ``{app="api"} | json | status >= 500``;
- ``metric``: ``sum by (level) (rate({env="prod"}[5m]))`` with a 5-minute step.

Reported per query: the end-to-end latency, the bytes and lines scanned (the response's
``stats.summary``) per second of wall time and per CPU-second of the querier process (from
``/proc/<pid>/stat``, all its threads), and the CPU-seconds MinIO spent. MinIO, the querier and
this client share the machine's cores.

Knobs (environment): BENCH_QUERY_GB (2), BENCH_QUERY_RF (1), BENCH_QUERY_QUERIES (all:
``literal,regex,json,metric``), BENCH_QUERY_REPEATS (1; the fastest run is reported),
BENCH_QUERY_CHUNK_CACHE_MB (0), BENCH_QUERY_DIR. ``ensure_dataset`` and ``start_querier`` are
meant for other read-path benchmarks to reuse (``bench_frontend``: a frontend over queriers).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import hashlib
import json
import multiprocessing
import os
import pathlib
import random
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tools"), str(ROOT)]

import minio  # noqa: E402
from lokistack.chunk import chunk as chunk_mod  # noqa: E402
from lokistack.model import fingerprint as model_fingerprint  # noqa: E402
from lokistack.model import labels as model_labels  # noqa: E402
from lokistack.storage import chunk_keys, chunk_store, index_shipper, objstore  # noqa: E402
from lokistack.storage import s3 as s3_store  # noqa: E402
from minio import deleteobjects  # noqa: E402
from testinfra import minio as minio_infra  # noqa: E402

from tests.support import lokistack_process, stored  # noqa: E402

FORMAT_VERSION: Final = 1
"""Part of the marker: bump it whenever the generated data changes, so caches regenerate."""

TENANT: Final = "bench"
MARKER_KEY: Final = "bench-query-dataset.json"
HOUR_NS: Final = 3600 * 10**9
SLICE_NS: Final = 2 * HOUR_NS  # max_chunk_age: no chunk spans more than one slice
SLICES: Final = 12  # 24 hours
NEEDLE: Final = "c0ffee-needle-7731"
ACCESS_KEY: Final = "lokistack"
SECRET_KEY: Final = "bench-query-not-a-secret"  # MinIO on loopback; fixed so the data dir reopens

APPS: Final = (
    ("api", "json", 0.40),
    ("checkout", "json", 0.12),
    ("payments", "json", 0.12),
    ("auth", "logfmt", 0.12),
    ("worker", "logfmt", 0.12),
    ("search", "logfmt", 0.12),
)
ENVS: Final = (("prod", 0.75), ("staging", 0.25))
LEVELS: Final = (("info", 0.80), ("warn", 0.12), ("error", 0.08))
NEEDLE_APP: Final = "api"
LINE_BYTES_ESTIMATE: Final = {"json": 216, "logfmt": 185}  # to size a slice before writing it


@dataclasses.dataclass(frozen=True)
class Query:
    name: str
    query: str
    limit: int = 100
    step: str = ""


QUERIES: Final = (
    Query("literal", f'{{app="{NEEDLE_APP}"}} |= "{NEEDLE}"'),
    Query("regex", f'{{app="{NEEDLE_APP}"}} |~ "err.r [0-9]+"'),
    Query("json", f'{{app="{NEEDLE_APP}"}} | json | status >= 500'),
    Query("metric", 'sum by (level) (rate({env="prod"}[5m]))', step="5m"),
)


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def cache_dir() -> pathlib.Path:
    """Where the benchmark MinIO keeps its data between runs."""
    default = pathlib.Path.home() / ".cache" / "lokistack" / "bench-query"
    return pathlib.Path(os.environ.get("BENCH_QUERY_DIR", str(default)))


# Dataset ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Dataset:
    """What :func:`ensure_dataset` found or wrote: the bucket, its time range and its size."""

    bucket: str
    tenant: str
    gb: float
    rf: int
    start_ns: int
    end_ns: int
    streams: int
    lines: int
    line_bytes: int
    chunks: int
    chunk_bytes: int
    generated_seconds: float
    version: int = FORMAT_VERSION
    reused: bool = False

    def __str__(self) -> str:
        how = "reused from the cache" if self.reused else "generated"
        ratio = f", {self.line_bytes / self.chunk_bytes:.1f}x smaller" if self.rf == 1 else ""
        start = datetime.datetime.fromtimestamp(self.start_ns / 1e9, datetime.UTC)
        return (
            f"dataset {self.bucket}: {self.line_bytes / 1e9:.2f} GB in {self.lines / 1e6:.2f} M "
            f"lines, {self.streams} streams x RF {self.rf}, {self.chunks} chunk objects "
            f"({self.chunk_bytes / 1e6:.0f} MB{ratio}), 24 h from {start:%Y-%m-%d %H:%M} UTC; "
            f"{how} (generation took {self.generated_seconds:.0f} s)"
        )


@dataclasses.dataclass(frozen=True)
class _Stream:
    app: str
    fmt: str
    env: str
    level: str
    share: float

    @property
    def labels(self) -> str:
        pairs = [("app", self.app), ("env", self.env), ("level", self.level)]
        return model_labels.canonical(model_labels.normalize(pairs))


def streams() -> list[_Stream]:
    return [
        _Stream(app, fmt, env, level, app_share * env_share * level_share)
        for app, fmt, app_share in APPS
        for env, env_share in ENVS
        for level, level_share in LEVELS
    ]


@dataclasses.dataclass(frozen=True)
class _Unit:
    """One stream's lines of one 2-hour slice: the generation's unit of parallel work."""

    stream: _Stream
    slice_index: int
    start_ns: int
    lines: int
    rf: int
    seed: int


@dataclasses.dataclass(frozen=True)
class _ChunkRow:
    replica: int
    fingerprint: int
    labels: str
    from_ns: int
    through_ns: int
    key: str
    size: int
    entries: int


@dataclasses.dataclass(frozen=True)
class _UnitResult:
    lines: int
    line_bytes: int
    rows: list[_ChunkRow]


_METHODS: Final = ("GET", "GET", "GET", "POST", "PUT", "DELETE", "GET", "PATCH")
_PATHS: Final = (
    "/api/v1/orders/",
    "/api/v1/carts/",
    "/api/v1/users/",
    "/api/v1/products/",
    "/api/v1/invoices/",
    "/api/v2/search/",
    "/api/v1/sessions/",
    "/api/v1/payments/",
)
_OK_STATUS: Final = (200, 200, 200, 200, 200, 200, 201, 204, 200, 304, 200, 301, 200, 200, 200, 200)
_BAD_STATUS: Final = (400, 401, 403, 404, 404, 409, 422, 429)
_JSON_MSG: Final = {
    "info": ("request completed", "request served from cache", "session refreshed", "ok"),
    "warn": ("slow request", "retrying upstream call", "deprecated API version", "cache miss"),
    "error": ("request rejected", "validation failed", "quota exceeded", "upstream refused"),
}
_CALLERS: Final = (
    "queue/worker.go:128",
    "queue/worker.go:214",
    "auth/token.go:77",
    "search/index.go:342",
    "http/server.go:91",
    "store/client.go:156",
    "cron/scheduler.go:63",
    "auth/session.go:118",
)
_LOGFMT_MSG: Final = {
    "info": ('"job finished"', '"token issued"', '"query served"', '"index refreshed"'),
    "warn": ('"job slow"', '"token near expiry"', '"partial results"', '"queue backlog"'),
    "error": ('"job failed"', '"token rejected"', '"query aborted"', '"connection reset"'),
}
_QUEUES: Final = (
    "emails",
    "exports",
    "billing",
    "webhooks",
    "thumbnails",
    "reindex",
    "audit",
    "gc",
)
_TENANTS: Final = ("acme-corp", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka")


def _clock(date: str, ts: int) -> str:
    seconds, nanos = divmod(ts, 10**9)
    minutes, second = divmod(seconds % 86400, 60)
    hour, minute = divmod(minutes, 60)
    return f"{date}T{hour:02d}:{minute:02d}:{second:02d}.{nanos // 1000:06d}Z"


def _json_line(date: str, ts: int, level: str, bits: int, special: str) -> str:
    """One access-log line; ``special`` plants a needle, a regex match or a 5xx."""
    status = _BAD_STATUS[bits & 7] if level == "error" else _OK_STATUS[bits & 15]
    msg = _JSON_MSG[level][(bits >> 4) & 3]
    if special == "regex":
        status, msg = 424, "upstream error 503 from payments-svc"
    elif special == "5xx":
        status, msg = 503, "service unavailable"
    order = f',"order":"{NEEDLE}"' if special == "needle" else ""
    return (
        f'{{"ts":"{_clock(date, ts)}","level":"{level}","method":"{_METHODS[(bits >> 6) & 7]}",'
        f'"path":"{_PATHS[(bits >> 9) & 7]}{(bits >> 12) & 0x3FFF}","status":{status},'
        f'"duration_ms":{(bits >> 28) & 0xFF}.{((bits >> 38) & 0x3FF) % 1000:03d},'
        f'"bytes":{(bits >> 48) & 0x3FFF},"user":"u-{(bits >> 62) & 0xFFF:05d}",'
        f'"trace_id":"{(bits >> 82) & 0xFFFFFFFFFFFFFFFF:016x}"{order},"msg":"{msg}"}}'
    )


def _logfmt_line(date: str, ts: int, level: str, bits: int) -> str:
    return (
        f"ts={_clock(date, ts)} level={level} caller={_CALLERS[bits & 7]} "
        f"msg={_LOGFMT_MSG[level][(bits >> 3) & 3]} queue={_QUEUES[(bits >> 5) & 7]} "
        f"job_id={(bits >> 8) & 0xFFFFFFFFFFFF:012x} attempt={1 + ((bits >> 72) & 3)} "
        f"duration={(bits >> 74) & 0x1F}.{((bits >> 83) & 0x3FF) % 1000:03d}s "
        f"tenant={_TENANTS[(bits >> 93) & 7]} trace_id={(bits >> 96) & 0xFFFFFFFFFFFF:012x}"
    )


def _unit_entries(unit: _Unit) -> tuple[list[int], list[str]]:
    """The unit's timestamps (strictly increasing over the slice) and lines."""
    rng = random.Random(unit.seed)
    count = unit.lines
    step = SLICE_NS // count
    timestamps = [unit.start_ns + i * step + rng.randrange(step) for i in range(count)]
    date = datetime.datetime.fromtimestamp(unit.start_ns // 10**9, datetime.UTC).strftime(
        "%Y-%m-%d"
    )
    stream = unit.stream
    specials: dict[int, str] = {}
    if stream.app == NEEDLE_APP and count >= 3:
        specials = dict(zip(rng.sample(range(count), 3), ("needle", "regex", "5xx"), strict=True))
    getrandbits = rng.getrandbits
    if stream.fmt == "json":
        lines = [
            _json_line(date, ts, stream.level, getrandbits(146), specials.get(i, ""))
            for i, ts in enumerate(timestamps)
        ]
    else:
        lines = [_logfmt_line(date, ts, stream.level, getrandbits(144)) for ts in timestamps]
    return timestamps, lines


def _cut(timestamps: list[int], lines: list[str], target_size: int) -> list[chunk_mod.MemChunk]:
    """Chunks as an ingester's stream cuts them (``space_for`` before each entry), closed."""
    chunks: list[chunk_mod.MemChunk] = []
    current = chunk_mod.MemChunk(target_size=target_size)
    for ts, line in zip(timestamps, lines, strict=True):
        if not current.space_for(len(line), 0):
            current.close()
            chunks.append(current)
            current = chunk_mod.MemChunk(target_size=target_size)
        current.append(ts, line)
    current.close()
    chunks.append(current)
    return chunks


_WORKER_STORE: s3_store.S3Store | None = None


def _worker_init(endpoint: str, bucket: str) -> None:
    global _WORKER_STORE  # noqa: PLW0603 - one store per generator process
    _WORKER_STORE = s3_store.S3Store(
        endpoint,
        bucket,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        region=minio_infra.REGION,
        secure=False,
        request_timeout=60.0,
        max_connections=8,
    )


def _generate_unit(unit: _Unit) -> _UnitResult:
    """Build one unit's chunks (each replica cut at its own points) and store them."""
    assert _WORKER_STORE is not None
    timestamps, lines = _unit_entries(unit)
    labels = unit.stream.labels
    fingerprint = model_fingerprint.fingerprint(labels)
    store = chunk_store.ChunkStore(_WORKER_STORE)
    rows: list[_ChunkRow] = []

    async def put_all(replica: int, chunks: list[chunk_mod.MemChunk]) -> None:
        async def put(memchunk: chunk_mod.MemChunk) -> None:
            data = memchunk.encode()
            key = await store.put_chunk(
                TENANT,
                fingerprint,
                memchunk.mint,
                memchunk.maxt,
                chunk_keys.chunk_checksum(data),
                data,
            )
            rows.append(
                _ChunkRow(
                    replica,
                    fingerprint,
                    labels,
                    memchunk.mint,
                    memchunk.maxt,
                    key,
                    len(data),
                    memchunk.num_entries,
                )
            )

        await asyncio.gather(*(put(memchunk) for memchunk in chunks))

    for replica in range(unit.rf):
        # Replicas receive the same entries but cut their chunks at different points.
        target = chunk_mod.DEFAULT_TARGET_SIZE - replica * 200 * 1024
        asyncio.run(put_all(replica, _cut(timestamps, lines, target)))
    return _UnitResult(len(lines), sum(len(line) for line in lines), rows)


def bucket_name(gb: float, rf: int) -> str:
    return f"query-v{FORMAT_VERSION}-{round(gb * 1000)}mb-rf{rf}"


def dataset_store(server: minio_infra.MinioServer, bucket: str) -> s3_store.S3Store:
    return stored.minio_store(server, bucket)


def _minio_client(server: minio_infra.MinioServer) -> minio.Minio:
    return minio.Minio(
        server.endpoint,
        access_key=server.access_key,
        secret_key=server.secret_key,
        secure=False,
        region=minio_infra.REGION,
    )


def _read_marker(server: minio_infra.MinioServer, bucket: str) -> Dataset | None:
    async def read() -> bytes | None:
        store = dataset_store(server, bucket)
        try:
            return await store.get(MARKER_KEY)
        except objstore.ObjectNotFoundError:
            return None
        finally:
            store.close()

    data = asyncio.run(read())
    if data is None:
        return None
    fields = json.loads(data)
    if fields.get("version") != FORMAT_VERSION:
        return None
    return Dataset(**fields, reused=True)


def _empty_bucket(client: minio.Minio, bucket: str) -> None:
    """Remove what a generation that did not finish left behind (its index would be wrong)."""
    names = [
        obj.object_name
        for obj in client.list_objects(bucket, recursive=True)
        if obj.object_name is not None
    ]
    for start in range(0, len(names), 1000):
        batch = [deleteobjects.DeleteObject(name) for name in names[start : start + 1000]]
        errors = list(client.remove_objects(bucket, batch))
        if errors:
            raise RuntimeError(f"could not empty bucket {bucket}: {errors[0]}")


def ensure_dataset(server: minio_infra.MinioServer, gb: float, rf: int = 1) -> Dataset:
    """The dataset of ``gb`` GB of lines at replication factor ``rf`` in ``server``: found by its
    marker, or generated now (over 24 hours ending at least an hour ago)."""
    bucket = bucket_name(gb, rf)
    client = _minio_client(server)
    if client.bucket_exists(bucket):
        found = _read_marker(server, bucket)
        if found is not None:
            return found
        _empty_bucket(client, bucket)
    else:
        client.make_bucket(bucket)
    started = time.perf_counter()
    end_ns = (time.time_ns() - HOUR_NS) // SLICE_NS * SLICE_NS
    start_ns = end_ns - SLICES * SLICE_NS
    all_streams = streams()
    units: list[_Unit] = []
    for stream_index, stream in enumerate(all_streams):
        budget = gb * 1e9 * stream.share / SLICES
        count = max(3, round(budget / LINE_BYTES_ESTIMATE[stream.fmt]))
        for slice_index in range(SLICES):
            seed = stream_index * 1000 + slice_index
            start = start_ns + slice_index * SLICE_NS
            units.append(_Unit(stream, slice_index, start, count, rf, seed))
    units.sort(key=lambda unit: -unit.lines)  # biggest first, for an even finish
    workers = os.cpu_count() or 1
    # fork: the workers inherit this module as loaded; no thread of this process is busy now.
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, _worker_init, (server.endpoint, bucket)) as pool:
        results = pool.map(_generate_unit, units, chunksize=1)
    rows = [row for result in results for row in result.rows]
    objects = {row.key: row.size for row in rows}  # replicas that cut alike share a key
    with tempfile.TemporaryDirectory(prefix="bench-query-index-") as tmp:
        asyncio.run(_write_index(server, bucket, pathlib.Path(tmp), rows, rf))
    dataset = Dataset(
        bucket=bucket,
        tenant=TENANT,
        gb=gb,
        rf=rf,
        start_ns=start_ns,
        end_ns=end_ns,
        streams=len(all_streams),
        lines=sum(result.lines for result in results),
        line_bytes=sum(result.line_bytes for result in results),
        chunks=len(objects),
        chunk_bytes=sum(objects.values()),
        generated_seconds=time.perf_counter() - started,
    )
    marker = dataclasses.asdict(dataset)
    del marker["reused"]

    async def put_marker() -> None:
        store = dataset_store(server, bucket)
        try:
            await store.put(MARKER_KEY, json.dumps(marker).encode())
        finally:
            store.close()

    asyncio.run(put_marker())  # last: a dataset without its marker is regenerated
    return dataset


async def _write_index(
    server: minio_infra.MinioServer,
    bucket: str,
    tmp: pathlib.Path,
    rows: list[_ChunkRow],
    rf: int,
) -> None:
    """One index head per replica (each an ingester), sealed and uploaded as flush does."""
    store = dataset_store(server, bucket)
    try:
        for replica in range(rf):
            shipper = index_shipper.IndexShipper(
                store,
                tmp / f"ingester-{replica}",
                f"bench-ingester-{replica}",
                datetime.timedelta(minutes=15),
            )
            for row in sorted(rows, key=lambda r: (r.from_ns, r.key)):
                if row.replica == replica:
                    await shipper.head.add_chunk(
                        TENANT,
                        row.fingerprint,
                        row.labels,
                        row.from_ns,
                        row.through_ns,
                        row.key,
                        row.size,
                        row.entries,
                    )
            await shipper.seal_and_upload()
            shipper.head.close()
    finally:
        store.close()


@contextlib.contextmanager
def dataset_minio() -> Iterator[minio_infra.MinioServer]:
    """The benchmark MinIO, on its persistent data directory (:func:`cache_dir`)."""
    server = minio_infra.MinioServer(cache_dir() / "minio", ACCESS_KEY, SECRET_KEY)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# Querier ------------------------------------------------------------------------------------

QUERIER_SETTINGS: Final[dict[str, Any]] = {
    "target": "querier",
    "auth_enabled": True,
    "ring": {"replication_factor": 1},
    "querier": {"query_ingesters_within": "1s", "chunk_cache_size": 0},
    "limits": {"query_timeout": "10m", "max_query_series": 0},
    "server": {"log_level": "warn"},
}
"""A querier that reads only the store (every chunk from MinIO) and lets long queries finish."""


def start_querier(
    workdir: pathlib.Path,
    server: minio_infra.MinioServer,
    dataset: Dataset,
    name: str = "querier",
    settings: Mapping[str, Any] | None = None,
) -> lokistack_process.LokistackProcess:
    """A started ``lokistack`` querier over ``dataset``; ``settings`` are laid over
    :data:`QUERIER_SETTINGS` (e.g. a frontend address). The caller stops it."""
    merged = lokistack_process.deep_merge(
        lokistack_process.deep_merge(QUERIER_SETTINGS, stored.s3_settings(server, dataset.bucket)),
        settings or {},
    )
    process = lokistack_process.LokistackProcess(name, workdir / name, merged)
    process.start()
    return process


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far, every thread included."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def query_range(
    url: str,
    dataset: Dataset,
    query: Query,
    timeout: float = 900.0,
    headers: Mapping[str, str] | None = None,
) -> tuple[float, dict[str, Any]]:
    """One ``query_range`` over the whole dataset: (wall seconds, decoded response)."""
    params = {
        "query": query.query,
        "start": str(dataset.start_ns),
        "end": str(dataset.end_ns),
        "limit": str(query.limit),
    }
    if query.step:
        params["step"] = query.step
    request = urllib.request.Request(
        f"{url}/loki/api/v1/query_range?{urllib.parse.urlencode(params)}",
        headers={"X-Scope-OrgID": dataset.tenant, **(headers or {})},
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")
        raise RuntimeError(f"{query.name}: HTTP {error.code}: {detail}") from None
    return time.perf_counter() - started, json.loads(body)


# Measuring ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class QueryResult:
    query: Query
    seconds: float
    querier_cpu: float
    minio_cpu: float
    bytes_scanned: int
    lines_scanned: int
    results: int
    digest: str
    """A hash of ``data.result``, to tell whether two setups gave the same answer."""

    def __str__(self) -> str:
        mb = self.bytes_scanned / 1e6
        lines = self.lines_scanned / 1e6
        cpu = max(self.querier_cpu, 1e-9)
        return (
            f"{self.query.name:<8} {self.seconds:7.2f} s  {mb:7.0f} MB {lines:6.2f} M lines: "
            f"wall {mb / self.seconds:6.1f} MB/s {lines / self.seconds:5.2f} M lines/s; "
            f"querier {self.querier_cpu:6.1f} CPU-s -> {mb / cpu:6.1f} MB/s "
            f"{lines / cpu:5.2f} M lines/s per core; MinIO {self.minio_cpu:5.1f} CPU-s; "
            f"{self.results} results  [{self.query.query}]"
        )


@dataclasses.dataclass(frozen=True)
class Note:
    """A line of context in the report (the dataset, the warm-up)."""

    text: str

    def __str__(self) -> str:
        return self.text


def _result_count(body: dict[str, Any]) -> int:
    data = body["data"]
    if data["resultType"] == "streams":
        return sum(len(stream["values"]) for stream in data["result"])
    return sum(len(series.get("values", ())) for series in data["result"])


def measure(
    url: str,
    dataset: Dataset,
    query: Query,
    *,
    querier_pids: Sequence[int],
    minio_pid: int,
    repeats: int = 1,
    headers: Mapping[str, str] | None = None,
) -> QueryResult:
    """The fastest of ``repeats`` runs of ``query`` sent to ``url``, with the CPU time the
    read path's processes (``querier_pids``: queriers, a frontend) and MinIO spent on it."""

    def querier_cpu() -> float:
        return sum(cpu_seconds(pid) for pid in querier_pids)

    best: QueryResult | None = None
    for _ in range(repeats):
        querier_before, minio_before = querier_cpu(), cpu_seconds(minio_pid)
        seconds, body = query_range(url, dataset, query, headers=headers)
        summary = body["data"]["stats"]["summary"]
        result = QueryResult(
            query,
            seconds,
            querier_cpu() - querier_before,
            cpu_seconds(minio_pid) - minio_before,
            int(summary["totalBytesProcessed"]),
            int(summary["totalLinesProcessed"]),
            _result_count(body),
            hashlib.sha256(json.dumps(body["data"]["result"]).encode()).hexdigest()[:16],
        )
        if best is None or result.seconds < best.seconds:
            best = result
    assert best is not None
    return best


def warm_up(url: str, dataset: Dataset) -> Note:
    """Download the index into the querier's cache, so the first query does not pay for it."""
    params = urllib.parse.urlencode(
        {"start": str(dataset.start_ns), "end": str(dataset.end_ns), "match[]": '{app=~".+"}'}
    )
    request = urllib.request.Request(
        f"{url}/loki/api/v1/series?{params}", headers={"X-Scope-OrgID": dataset.tenant}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:
        found = len(json.loads(response.read())["data"])
    return Note(
        f"warm-up: /series over 24 h (index download) {time.perf_counter() - started:.2f} s, "
        f"{found} streams"
    )


def run() -> list[QueryResult | Note]:
    gb = _env_float("BENCH_QUERY_GB", 2.0)
    rf = int(os.environ.get("BENCH_QUERY_RF", "1"))
    repeats = int(os.environ.get("BENCH_QUERY_REPEATS", "1"))
    cache_mb = int(os.environ.get("BENCH_QUERY_CHUNK_CACHE_MB", "0"))
    wanted = os.environ.get("BENCH_QUERY_QUERIES", ",".join(q.name for q in QUERIES)).split(",")
    selected = [query for query in QUERIES if query.name in wanted]
    load = pathlib.Path("/proc/loadavg").read_text().split()[0]
    report: list[QueryResult | Note] = [Note(f"machine load (1-minute average) at start: {load}")]
    with dataset_minio() as server, tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        dataset = ensure_dataset(server, gb, rf)
        report.append(Note(str(dataset)))
        settings = {"querier": {"chunk_cache_size": f"{cache_mb}MB"}}
        querier = start_querier(pathlib.Path(tmp), server, dataset, settings=settings)
        try:
            assert querier.process is not None and server.process is not None
            report.append(warm_up(querier.url, dataset))
            for query in selected:
                report.append(
                    measure(
                        querier.url,
                        dataset,
                        query,
                        querier_pids=[querier.process.pid],
                        minio_pid=server.process.pid,
                        repeats=repeats,
                    )
                )
        finally:
            querier.stop()
    return report
