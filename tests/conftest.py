"""Session fixtures for the real test infrastructure: MinIO and a Kubernetes control plane.

Both are started once per test session, on free loopback ports, from the binaries that
``make tools`` builds into the cache (see tools/testinfra). A missing binary fails the test with
the command that builds it; nothing is skipped. When a test that used them fails, the tail of each
component's log is attached to its report.

``LOKISTACK_TEST_KUBECONFIG`` makes the session use an existing cluster (for example the one
``make cluster`` started) instead of starting its own.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import time
import uuid
from collections.abc import Generator, Iterator

import minio
import pytest
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from testinfra import controlplane, processes
from testinfra import minio as minio_infra

from tests.support import component_logs


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for fixture_name in getattr(item, "fixturenames", ()):
            for component, path in component_logs.BY_FIXTURE.get(fixture_name, {}).items():
                report.sections.append((f"{component} log (tail)", processes.log_tail(path)))
    return report


@pytest.fixture(scope="session")
def minio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[minio_infra.MinioServer]:
    server = minio_infra.MinioServer(tmp_path_factory.mktemp("minio"))
    server.start()
    component_logs.register("minio_server", {"minio": server.log_path})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def minio_client(minio_server: minio_infra.MinioServer) -> minio.Minio:
    return minio.Minio(
        minio_server.endpoint,
        access_key=minio_server.access_key,
        secret_key=minio_server.secret_key,
        secure=False,
        region=minio_infra.REGION,
    )


@pytest.fixture
def minio_bucket(minio_client: minio.Minio) -> Iterator[str]:
    """A fresh, empty bucket, removed with its objects after the test."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    minio_client.make_bucket(name)
    try:
        yield name
    finally:
        for obj in minio_client.list_objects(name, recursive=True):
            if obj.object_name is not None:
                minio_client.remove_object(name, obj.object_name)
        minio_client.remove_bucket(name)


@pytest.fixture(scope="session")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    """Path of a kubeconfig for a live control plane, started for this session if needed."""
    existing = os.environ.get("LOKISTACK_TEST_KUBECONFIG")
    if existing:
        yield pathlib.Path(existing)
        return
    plane = controlplane.ControlPlane(tmp_path_factory.mktemp("control-plane"))
    plane.start()
    component_logs.register(
        "kubeconfig", {process.name: process.log_path for process in plane.components}
    )
    try:
        yield plane.kubeconfig
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kube_api(kubeconfig: pathlib.Path) -> Iterator[kube_client.ApiClient]:
    api = kube_config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    with contextlib.closing(api):
        yield api


@pytest.fixture
def namespace(kube_api: kube_client.ApiClient) -> Iterator[str]:
    """A fresh namespace whose default ServiceAccount exists; deleted after the test."""
    core = kube_client.CoreV1Api(kube_api)
    name = f"test-{uuid.uuid4().hex[:10]}"
    core.create_namespace(kube_client.V1Namespace(metadata=kube_client.V1ObjectMeta(name=name)))
    deadline = time.monotonic() + 30
    while True:
        try:
            core.read_namespaced_service_account("default", name)
            break
        except kube_client.ApiException as error:
            if error.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    try:
        yield name
    finally:
        core.delete_namespace(name)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With LOKISTACK_FORBID_SKIPS=1 (``make test``), a skipped test fails the run.

    The suite promises that every test runs against the real infrastructure; a skip there would
    stand in for missing work, so CI treats it as a failure.
    """
    if os.environ.get("LOKISTACK_FORBID_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = reporter.stats.get("skipped", [])
    if skipped and exitstatus == 0:
        reporter.write_line(f"make test: {len(skipped)} test(s) skipped; failing the run", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
