"""Ingest throughput and latency of the push API, end to end over HTTP.

Pushes protobuf + snappy bodies (what Promtail and Alloy send) from concurrent clients for a
fixed time against real ``lokistack`` processes, and reports lines/s, MB/s of log lines and the
p50/p99 latency of one push. Two setups:

- ``single``: one process, ``--target=all``, in-memory ring, replication factor 1 (``make run``);
- ``replicated``: one distributor and three ingesters as separate processes, the ring in
  Kubernetes Leases on a local control plane, replication factor 3.

Knobs (environment): BENCH_INGEST_SETUPS (``single,replicated``), BENCH_INGEST_STREAMS (10 per
push), BENCH_INGEST_LINES (100 per stream), BENCH_INGEST_LINE_SIZE (150 bytes),
BENCH_INGEST_CLIENTS (4), BENCH_INGEST_SECONDS (10). The load generator shares the 2 cores with
the servers, so numbers are a floor for what the servers could do alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import pathlib
import random
import sys
import tempfile
import time
from collections.abc import Iterator

import aiohttp
import snappy

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tools"), str(ROOT)]

from lokistack.proto import push_pb2  # noqa: E402
from testinfra import controlplane  # noqa: E402

from tests.support import lokistack_process, stacks  # noqa: E402


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclasses.dataclass(frozen=True)
class Shape:
    streams: int = _env_int("BENCH_INGEST_STREAMS", 10)
    lines: int = _env_int("BENCH_INGEST_LINES", 100)
    line_size: int = _env_int("BENCH_INGEST_LINE_SIZE", 150)
    clients: int = _env_int("BENCH_INGEST_CLIENTS", 4)
    seconds: float = float(os.environ.get("BENCH_INGEST_SECONDS", "10"))


@dataclasses.dataclass(frozen=True)
class IngestResult:
    setup: str
    shape: Shape
    pushes: int
    failures: int
    seconds: float
    latencies: list[float]

    def __str__(self) -> str:
        lines = self.pushes * self.shape.streams * self.shape.lines
        mb = lines * self.shape.line_size / 1e6
        ordered = sorted(self.latencies) or [0.0]
        p50 = ordered[len(ordered) // 2] * 1e3
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3
        return (
            f"{self.setup:<11} {self.shape.streams}x{self.shape.lines} lines of "
            f"{self.shape.line_size} B, {self.shape.clients} clients: "
            f"{lines / self.seconds:9.0f} lines/s {mb / self.seconds:6.1f} MB/s  "
            f"push p50 {p50:6.1f} ms p99 {p99:6.1f} ms  ({self.pushes} pushes, "
            f"{self.failures} failed)"
        )


def _bodies(shape: Shape, count: int) -> list[bytes]:
    """Distinct pushes with increasing timestamps and random words, as real logs look."""
    rng = random.Random(7)
    words = [f"{rng.getrandbits(40):x}" for _ in range(2000)]
    base = time.time_ns()
    bodies = []
    for batch in range(count):
        request = push_pb2.PushRequest()
        for stream_index in range(shape.streams):
            stream = request.streams.add(
                labels=f'{{app="bench", pod="pod-{stream_index}", env="prod"}}'
            )
            for line_index in range(shape.lines):
                line = " ".join(rng.choices(words, k=shape.line_size // 10))[: shape.line_size]
                entry = stream.entries.add(line=line.ljust(shape.line_size, "."))
                ts = base + (batch * shape.lines + line_index) * 1000
                entry.timestamp.seconds, entry.timestamp.nanos = divmod(ts, 1_000_000_000)
        bodies.append(bytes(snappy.compress(request.SerializeToString())))
    return bodies


async def _load(url: str, shape: Shape, bodies: list[bytes], setup: str) -> IngestResult:
    latencies: list[float] = []
    failures = 0
    pushes = 0
    deadline = time.perf_counter() + shape.seconds
    headers = {"Content-Type": "application/x-protobuf"}

    async def client(session: aiohttp.ClientSession, offset: int) -> None:
        nonlocal failures, pushes
        index = offset
        while time.perf_counter() < deadline:
            body = bodies[index % len(bodies)]
            index += shape.clients
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status == 204:
                    pushes += 1
                    latencies.append(time.perf_counter() - started)
                else:
                    failures += 1

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session, i) for i in range(shape.clients)))
    return IngestResult(setup, shape, pushes, failures, time.perf_counter() - started, latencies)


_SERVER_LIMITS = {
    "limits": {
        "ingestion_rate_mb": 4096,
        "ingestion_burst_size_mb": 8192,
        "per_stream_rate_limit": "4GB",
        "per_stream_rate_limit_burst": "8GB",
        "max_global_streams_per_user": 0,
    },
    "server": {"log_level": "warn"},
}


@contextlib.contextmanager
def _single(workdir: pathlib.Path) -> Iterator[str]:
    settings = lokistack_process.deep_merge(
        _SERVER_LIMITS, {"target": "all", "ring": {"replication_factor": 1}}
    )
    process = lokistack_process.LokistackProcess("bench-all", workdir / "all", settings)
    process.start()
    try:
        yield process.url
    finally:
        process.stop()


@contextlib.contextmanager
def _replicated(workdir: pathlib.Path) -> Iterator[str]:
    plane = controlplane.ControlPlane(workdir / "control-plane")
    plane.start()
    settings = lokistack_process.deep_merge(
        _SERVER_LIMITS, {"ring": {"replication_factor": 3, "heartbeat_period": "2s"}}
    )
    try:
        with stacks.replicated_write_path(
            workdir, plane.kubeconfig, "default", settings
        ) as write_path:
            yield write_path.distributor.url
    finally:
        plane.stop()


def run() -> list[IngestResult]:
    shape = Shape()
    setups = os.environ.get("BENCH_INGEST_SETUPS", "single,replicated").split(",")
    bodies = _bodies(shape, 64)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        for setup in setups:
            starter = {"single": _single, "replicated": _replicated}[setup]
            with starter(pathlib.Path(tmp) / setup) as url:
                results.append(asyncio.run(_load(url + "/loki/api/v1/push", shape, bodies, setup)))
    return results
