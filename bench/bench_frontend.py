"""A day-long metric query through the query frontend with three queriers, against one querier.

The frontend's point is that a large query does not run on one querier: it is cut into
``split_queries_by_interval`` (30 m) pieces that every connected querier's workers pull and run
side by side. This benchmark measures what that buys on this machine, over the query benchmark's
dataset (``bench_query.ensure_dataset``: about ``BENCH_QUERY_GB`` GB of lines over 24 h in MinIO,
reused from its cache when present), with the same query as its ``metric`` row:
``sum by (level) (rate({env="prod"}[5m]))`` with a 5-minute step, over the whole day.

Three setups run one after the other, each with freshly started processes:

- ``querier``: one ``lokistack --target=querier`` answering ``/loki/api/v1/query_range`` itself
  (the whole day in one query);
- ``frontend+1``: a ``--target=query-frontend`` with that one querier connected as its worker;
- ``frontend+3``: the frontend with three queriers connected.

Every querier has the shipped defaults for what the comparison is about (``max_concurrent`` 4, a
100 MB chunk cache; ``BENCH_FRONTEND_CHUNK_CACHE_MB`` changes the cache), reads only the store
(``query_ingesters_within`` 1 s, an empty ring) and downloads the index before the measured query
(a ``/series`` call to each querier). Each query is sent with ``Cache-Control: no-cache``, so the
frontend's results cache answers nothing; ``BENCH_FRONTEND_REPEATS`` (1) runs it again on the same
processes (with warm chunk caches) and keeps the fastest run. Reported per setup: the latency, the
speed-up over ``querier``, the CPU-seconds of the read path's processes (each querier's and the
frontend's) and of MinIO, and whether the answer (``data.result``) equals the single querier's.
MinIO, the read path and this client share the machine's cores, so the speed-up is bounded by
them, not by the number of queriers.

Knobs (environment): BENCH_QUERY_GB (2), BENCH_QUERY_RF (1), BENCH_QUERY_DIR (see
``bench_query``), BENCH_FRONTEND_QUERIERS (3), BENCH_FRONTEND_CHUNK_CACHE_MB (100),
BENCH_FRONTEND_REPEATS (1), BENCH_FRONTEND_QUERIES (``metric``; any of ``bench_query``'s).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import pathlib
import tempfile
import time
from collections.abc import Sequence
from typing import Any, Final

import bench_query
from testinfra import minio as minio_infra

from tests.support import lokistack_process

NO_CACHE: Final = {"Cache-Control": "no-cache"}
"""Sent with every measured query: the frontend's results cache must not answer it."""


@dataclasses.dataclass(frozen=True)
class SetupResult:
    """One setup's run of one query, and how it compares with the single querier's."""

    setup: str
    result: bench_query.QueryResult
    querier_cpu: tuple[float, ...]
    frontend_cpu: float
    baseline: bench_query.QueryResult | None

    def __str__(self) -> str:
        result = self.result
        mb = result.bytes_scanned / 1e6
        speedup = same = ""
        if self.baseline is not None:
            speedup = f" x{self.baseline.seconds / result.seconds:.2f} vs querier;"
            same = (
                "same answer as the single querier"
                if result.digest == self.baseline.digest
                else "ANSWER DIFFERS from the single querier's"
            )
        split = "/".join(f"{cpu:.1f}" for cpu in self.querier_cpu)
        frontend = f", frontend {self.frontend_cpu:.1f}" if self.setup != "querier" else ""
        return (
            f"{result.query.name:<7} {self.setup:<11} {result.seconds:7.2f} s{speedup} "
            f"{mb:.0f} MB, {result.lines_scanned / 1e6:.2f} M lines, wall "
            f"{mb / result.seconds:.0f} MB/s; CPU-s queriers {split}{frontend}, MinIO "
            f"{result.minio_cpu:.1f}; {result.results} results{'; ' if same else ''}{same}"
        )


def _querier_settings(cache_mb: int, frontend_grpc_port: int | None) -> dict[str, Any]:
    settings: dict[str, Any] = {"querier": {"chunk_cache_size": f"{cache_mb}MB"}}
    if frontend_grpc_port is not None:
        settings["querier"]["frontend_addresses"] = [f"127.0.0.1:{frontend_grpc_port}"]
    return settings


def _wait_connected(frontend: lokistack_process.LokistackProcess, queriers: int) -> None:
    """Until every querier's workers have opened their stream to the frontend."""
    deadline = time.monotonic() + 60
    while frontend.metric("loki_query_frontend_connected_clients") < queriers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{queriers} queriers did not all connect to the frontend")
        time.sleep(0.2)


def run_setup(
    workdir: pathlib.Path,
    server: minio_infra.MinioServer,
    dataset: bench_query.Dataset,
    queries: Sequence[bench_query.Query],
    *,
    queriers: int,
    frontend: bool,
    cache_mb: int,
    repeats: int,
) -> list[tuple[bench_query.QueryResult, tuple[float, ...], float]]:
    """Start the setup, run each query, stop it: (result, CPU-s per querier, frontend CPU-s)."""
    frontend_process: lokistack_process.LokistackProcess | None = None
    started: list[lokistack_process.LokistackProcess] = []
    try:
        if frontend:
            frontend_process = lokistack_process.LokistackProcess(
                "query-frontend",
                workdir / "query-frontend",
                lokistack_process.deep_merge(
                    bench_query.QUERIER_SETTINGS, {"target": "query-frontend"}
                ),
            )
            frontend_process.start()
            started.append(frontend_process)
        grpc_port = frontend_process.grpc_port if frontend_process is not None else None
        settings = _querier_settings(cache_mb, grpc_port)
        names = [f"querier-{index}" for index in range(queriers)]
        with concurrent.futures.ThreadPoolExecutor(queriers) as pool:
            processes = list(
                pool.map(
                    lambda name: bench_query.start_querier(
                        workdir, server, dataset, name=name, settings=settings
                    ),
                    names,
                )
            )
        started.extend(processes)
        for process in processes:
            bench_query.warm_up(process.url, dataset)
        if frontend_process is not None:
            _wait_connected(frontend_process, queriers)
        entry = frontend_process or processes[0]
        pids = [_pid(process) for process in processes]
        frontend_pids = [_pid(frontend_process)] if frontend_process is not None else []
        assert server.process is not None
        outcome = []
        for query in queries:
            runs = []
            for _ in range(repeats):
                before = [bench_query.cpu_seconds(pid) for pid in pids + frontend_pids]
                result = bench_query.measure(
                    entry.url,
                    dataset,
                    query,
                    querier_pids=pids + frontend_pids,
                    minio_pid=server.process.pid,
                    headers=NO_CACHE,
                )
                spent = [
                    bench_query.cpu_seconds(pid) - cpu
                    for pid, cpu in zip(pids + frontend_pids, before, strict=True)
                ]
                runs.append((result, tuple(spent[: len(pids)]), sum(spent[len(pids) :])))
            outcome.append(min(runs, key=lambda run: run[0].seconds))
        return outcome
    finally:
        for process in reversed(started):
            process.stop()


def _pid(process: lokistack_process.LokistackProcess) -> int:
    assert process.process is not None and process.process.popen is not None
    return process.process.popen.pid


def run() -> list[SetupResult | bench_query.Note]:
    gb = float(os.environ.get("BENCH_QUERY_GB", "2"))
    rf = int(os.environ.get("BENCH_QUERY_RF", "1"))
    queriers = int(os.environ.get("BENCH_FRONTEND_QUERIERS", "3"))
    cache_mb = int(os.environ.get("BENCH_FRONTEND_CHUNK_CACHE_MB", "100"))
    repeats = int(os.environ.get("BENCH_FRONTEND_REPEATS", "1"))
    wanted = os.environ.get("BENCH_FRONTEND_QUERIES", "metric").split(",")
    queries = [query for query in bench_query.QUERIES if query.name in wanted]
    load = pathlib.Path("/proc/loadavg").read_text().split()[0]
    report: list[SetupResult | bench_query.Note] = [
        bench_query.Note(f"machine load (1-minute average) at start: {load}")
    ]
    setups = (
        ("querier", 1, False),
        ("frontend+1", 1, True),
        (f"frontend+{queriers}", queriers, True),
    )
    with bench_query.dataset_minio() as server:
        dataset = bench_query.ensure_dataset(server, gb, rf)
        report.append(bench_query.Note(str(dataset)))
        baselines: dict[str, bench_query.QueryResult] = {}
        for setup, count, frontend in setups:
            with tempfile.TemporaryDirectory(prefix="bench-frontend-") as tmp:
                outcome = run_setup(
                    pathlib.Path(tmp),
                    server,
                    dataset,
                    queries,
                    queriers=count,
                    frontend=frontend,
                    cache_mb=cache_mb,
                    repeats=repeats,
                )
            for result, per_querier, frontend_cpu in outcome:
                baseline = baselines.setdefault(result.query.name, result)
                report.append(
                    SetupResult(
                        setup,
                        result,
                        per_querier,
                        frontend_cpu,
                        None if baseline is result else baseline,
                    )
                )
    return report
