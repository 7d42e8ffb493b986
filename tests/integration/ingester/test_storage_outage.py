"""Object storage goes away while flushes are due: pushes go on, nothing is lost, retries show.

The test runs its own MinIO (the session one must stay up for other tests), makes chunks due for
flushing within a second (short idle period and check period), stops MinIO while pushing goes
on, then starts it again on the same port and data directory. Every acknowledged entry must end
up in the bucket, and the failed attempts must show in loki_ingester_chunks_flush_failures_total.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator

import minio
import pytest
from lokistack.storage import index_reader
from testinfra import minio as minio_infra

from tests.support import lokistack_process, polling, push, stored

PUSH = "/loki/api/v1/push"


@pytest.fixture
def own_minio(tmp_path: pathlib.Path) -> Iterator[minio_infra.MinioServer]:
    server = minio_infra.MinioServer(tmp_path / "minio")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _push_batch(process: lokistack_process.LokistackProcess, label: str, count: int) -> set[str]:
    now = time.time_ns()
    lines = [f"{label}-{i}" for i in range(count)]
    body = push.protobuf_body({'{app="outage"}': [(now + i, line) for i, line in enumerate(lines)]})
    answer = push.post(process.url + PUSH, body)
    assert answer.status == 204, answer
    return set(lines)


def test_flushes_survive_an_object_store_outage(
    own_minio: minio_infra.MinioServer, tmp_path: pathlib.Path
) -> None:
    started_ns = time.time_ns()
    bucket = "outage"
    minio.Minio(
        own_minio.endpoint,
        access_key=own_minio.access_key,
        secret_key=own_minio.secret_key,
        secure=False,
        region=minio_infra.REGION,
    ).make_bucket(bucket)
    settings = lokistack_process.deep_merge(
        stored.s3_settings(own_minio, bucket),
        {
            "target": "all",
            "ring": {"replication_factor": 1, "heartbeat_period": "1s"},
            "storage": {"s3": {"request_timeout": "2s", "max_retries": 1}},
            "ingester": {
                "chunk_idle_period": "1s",
                "flush_check_period": "1s",
                # Flushed chunks leave memory only once their index rows are uploaded.
                "index_seal_period": "2s",
                "flush_op_backoff": {"min_period": "500ms", "max_period": "2s"},
            },
        },
    )
    process = lokistack_process.LokistackProcess("outage-test", tmp_path / "ingester", settings)
    acknowledged: set[str] = set()
    try:
        process.start()
        acknowledged |= _push_batch(process, "before", 100)

        own_minio.stop()
        failures_before = process.metric("loki_ingester_chunks_flush_failures_total")
        for round_number in range(6):
            acknowledged |= _push_batch(process, f"during-{round_number}", 100)
            time.sleep(1)
        polling.wait_until(
            lambda: process.metric("loki_ingester_chunks_flush_failures_total") > failures_before,
            timeout=30,
            describe="no flush attempt failed while MinIO was down",
        )

        own_minio.start()
        acknowledged |= _push_batch(process, "after", 100)
        polling.wait_until(
            lambda: (
                process.metric("loki_ingester_chunks_flushed_total") > 0
                and process.metric("loki_ingester_memory_chunks") <= 1
            ),
            timeout=90,
            describe=lambda: (
                f"chunks still in memory: {process.metric('loki_ingester_memory_chunks')}"
            ),
        )
        assert process.terminate(timeout=60) == 0  # seals and ships the index too
    finally:
        process.stop()

    found = stored.read_back_sync(
        own_minio,
        bucket,
        cache_dir=tmp_path / "index-cache",
        tenant="fake",
        matchers=[index_reader.Matcher("app", "=", "outage")],
        from_ns=started_ns,
        through_ns=time.time_ns() + 10**9,
    )
    missing = acknowledged - set(found.lines)
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged entries were lost"
