"""kill -9 loses no acknowledged entry; chunks and index files land in MinIO under their keys.

One lokistack process (`--target=all`, replication factor 1, chunks and index in a real MinIO
bucket) takes a continuous stream of pushes and is killed with SIGKILL at a random moment, five
times over, restarting on the same WAL directory each time. Checkpoints run every second, so
recovery goes through both the checkpoint and the segments after it. At the end a graceful stop
flushes everything, and every entry whose push was answered 204 must be readable from the chunks
that the index lists.
"""

from __future__ import annotations

import pathlib
import random
import re
import threading
import time

from lokistack.storage import chunk_keys, index_reader
from testinfra import minio as minio_infra

from tests.support import lokistack_process, push, stored

PUSH = "/loki/api/v1/push"
ROUNDS = 5
INDEX_KEY = re.compile(r"^index/\d+/fake/crash-test-\d+\.sqlite$")


class Pusher(threading.Thread):
    """Pushes batches of unique lines until stopped; remembers the ones acknowledged."""

    def __init__(self, url: str, round_number: int) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.round_number = round_number
        self.acknowledged: set[str] = set()
        self.pushes = 0
        self.halt = threading.Event()

    def run(self) -> None:
        batch = 0
        while not self.halt.is_set():
            now = time.time_ns()
            lines = [f"round-{self.round_number} batch-{batch} entry-{i}" for i in range(20)]
            body = push.protobuf_body(
                {
                    f'{{app="crash", shard="{batch % 3}"}}': [
                        (now + i, line) for i, line in enumerate(lines)
                    ]
                }
            )
            try:
                answer = push.post(self.url + PUSH, body, timeout=5)
            except OSError:
                answer = push.Answer(0, "")
            if answer.status == 204:
                self.acknowledged.update(lines)
                self.pushes += 1
            elif answer.status:
                raise AssertionError(f"unexpected answer {answer}")
            batch += 1


def test_kill_dash_nine_loses_no_acknowledged_entry(
    minio_server: minio_infra.MinioServer, minio_bucket: str, tmp_path: pathlib.Path
) -> None:
    started_ns = time.time_ns()
    settings = lokistack_process.deep_merge(
        stored.s3_settings(minio_server, minio_bucket),
        {
            "target": "all",
            "ring": {"replication_factor": 1, "heartbeat_period": "1s"},
            "ingester": {"wal": {"checkpoint_duration": "1s"}},
            "limits": {"ingestion_rate_mb": 256, "ingestion_burst_size_mb": 512},
        },
    )
    process = lokistack_process.LokistackProcess("crash-test", tmp_path / "ingester", settings)
    acknowledged: set[str] = set()
    rng = random.Random(20261121)
    try:
        for round_number in range(ROUNDS):
            process.start()
            pusher = Pusher(process.url, round_number)
            pusher.start()
            time.sleep(rng.uniform(1.0, 3.0))
            process.kill()
            pusher.halt.set()
            pusher.join(10)
            assert pusher.pushes > 0, f"round {round_number}: no push was acknowledged"
            acknowledged |= pusher.acknowledged

        process.start()
        assert process.terminate(timeout=60) == 0  # graceful: flush, seal and ship the index
    finally:
        process.stop()

    found = stored.read_back_sync(
        minio_server,
        minio_bucket,
        cache_dir=tmp_path / "index-cache",
        tenant="fake",
        matchers=[index_reader.Matcher("app", "=", "crash")],
        from_ns=started_ns,
        through_ns=time.time_ns() + 10**9,
    )
    missing = acknowledged - set(found.lines)
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged entries were lost"
    assert found.chunk_keys and all(
        chunk_keys.parse_chunk_key(key).tenant == "fake" for key in found.chunk_keys
    )
    assert found.index_keys and all(INDEX_KEY.match(key) for key in found.index_keys)
