"""End-to-end fixtures: the LokiStack CRD, a namespace, and the operator as a local process.

The operator runs as ``lokistack-operator`` against the session's real control plane (root
fixtures ``kubeconfig`` and ``kube_api``), watching one namespace, with short intervals so the
tests stay fast. Its log is attached to the report of a failing test. Every test in this directory
is marked ``e2e`` (and ``integration``: it needs the real infrastructure).
"""

from __future__ import annotations

import contextlib
import pathlib
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Generator, Iterator
from typing import Any

import pytest
from kubernetes import client as kube_client
from testinfra import processes

from tests.support import crd

REPO = pathlib.Path(__file__).resolve().parents[2]
OPERATOR = pathlib.Path(sys.executable).parent / "lokistack-operator"
E2E_DIR = pathlib.Path(__file__).resolve().parent

_OPERATOR_LOGS: dict[str, pathlib.Path] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: runs the operator against the real control plane (tests/e2e)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in pathlib.Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and "operator" in getattr(item, "fixturenames", ()):
        for name, path in _OPERATOR_LOGS.items():
            report.sections.append((f"{name} log (tail)", processes.log_tail(path, 120)))
    return report


@pytest.fixture(scope="module")
def lokistack_crd(kube_api: kube_client.ApiClient) -> Iterator[dict[str, Any]]:
    """The CRD from crds/lokistack.yaml, installed for the module and removed after it."""
    api = kube_client.ApiextensionsV1Api(kube_api)
    existed = crd.established(kube_api)
    body = crd.install(kube_api, field_manager="lokistack-e2e")
    name = body["metadata"]["name"]
    try:
        yield body
    finally:
        if not existed:
            with contextlib.suppress(kube_client.ApiException):
                api.delete_custom_resource_definition(name)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    api.read_custom_resource_definition(name)
                except kube_client.ApiException:
                    break
                time.sleep(0.5)


@pytest.fixture(scope="module")
def e2e_namespace(kube_api: kube_client.ApiClient) -> Iterator[str]:
    """A namespace shared by the module's tests (one operator watches it); deleted after."""
    core = kube_client.CoreV1Api(kube_api)
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    core.create_namespace(kube_client.V1Namespace(metadata=kube_client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except urllib.error.URLError:
        return False


@pytest.fixture(scope="module")
def operator(
    kubeconfig: pathlib.Path,
    e2e_namespace: str,
    lokistack_crd: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[processes.ManagedProcess]:
    """``lokistack-operator`` watching ``e2e_namespace``, with a 1 s status refresh."""
    workdir = tmp_path_factory.mktemp("operator")
    liveness = f"http://127.0.0.1:{processes.free_port()}/healthz"
    process = processes.ManagedProcess(
        "lokistack-operator",
        [
            str(OPERATOR),
            f"--kubeconfig={kubeconfig}",
            f"--namespace={e2e_namespace}",
            f"--liveness={liveness}",
            "--image=lokistack:e2e",
            "--status-interval=1",
            "--ingester-shutdown-timeout=60",
            "--ingester-poll-interval=0.2",
            "--log-level=info",
        ],
        workdir / "operator.log",
        cwd=workdir,
    )
    _OPERATOR_LOGS["lokistack-operator"] = process.log_path
    process.start()
    try:
        process.wait_ready(lambda: _healthy(liveness), timeout=30)
        yield process
    finally:
        process.stop(grace=10)
