"""Loki's LogQL conformance scripts through the public APIs of `lokistack --target=all`.

Every loaded state is pushed through the push API (distributor, validation, ingester, WAL) and
every ``eval`` is answered by the query API (querier, ingester gRPC, engine, JSON encoding), so
this is the engine conformance of tests/unit/logql/engine/test_conformance.py end to end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import logqltest, logqltest_http, lokistack_process

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


@logqltest.requires_scripts
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_conformance_case_over_http(runner: logqltest_http.Runner, case: logqltest.Case) -> None:
    assert runner.run(case) == logqltest.PASS, case.query
