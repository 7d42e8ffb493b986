"""Loki's LogQL conformance scripts through the public APIs of `lokistack --target=all`.

Every loaded state is pushed through the push API (distributor, validation, ingester, WAL) and
every ``eval`` is answered by the query API (querier, ingester gRPC, engine, JSON encoding), so
this is the engine conformance of tests/unit/logql/engine/test_conformance.py end to end. The
same cases run again through a query frontend (split by 30m, pulled by the process's querier
worker, merged), which must not change any answer.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import logqltest, logqltest_http, lokistack_process, polling

CASES = logqltest.all_cases()


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[logqltest_http.Runner]:
    process = lokistack_process.LokistackProcess(
        "conformance",
        tmp_path_factory.mktemp("conformance"),
        lokistack_process.deep_merge({"target": "all"}, logqltest_http.SETTINGS),
    )
    process.start()
    try:
        yield logqltest_http.Runner(process.url, process.url)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def frontend_runner(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[logqltest_http.Runner]:
    workdir = tmp_path_factory.mktemp("conformance-frontend")
    frontend = lokistack_process.LokistackProcess(
        "frontend",
        workdir / "frontend",
        lokistack_process.deep_merge({"target": "query-frontend"}, logqltest_http.SETTINGS),
    )
    frontend.start()
    stack = lokistack_process.LokistackProcess(
        "conformance-behind-frontend",
        workdir / "all",
        lokistack_process.deep_merge(
            {
                "target": "all",
                "querier": {"frontend_addresses": [f"127.0.0.1:{frontend.grpc_port}"]},
            },
            logqltest_http.SETTINGS,
        ),
    )
    try:
        stack.start()
        polling.wait_until(
            lambda: frontend.metric("loki_query_frontend_connected_clients") >= 1,
            timeout=30,
            describe="the querier worker never connected to the frontend",
        )
        yield logqltest_http.Runner(stack.url, frontend.url)
    finally:
        stack.stop()
        frontend.stop()


@logqltest.requires_scripts
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_conformance_case_over_http(runner: logqltest_http.Runner, case: logqltest.Case) -> None:
    assert runner.run(case) == logqltest.PASS, case.query


@logqltest.requires_scripts
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_conformance_case_through_the_frontend(
    frontend_runner: logqltest_http.Runner, case: logqltest.Case
) -> None:
    assert frontend_runner.run(case) == logqltest.PASS, case.query
