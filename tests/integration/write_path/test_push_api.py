"""The push API of one `lokistack --target=all` process: Loki's answers, and hostile input.

One process with the in-memory ring and replication factor 1, as `make run` starts it. Every
bad request must get a clean 4xx and leave the process healthy and accepting pushes.
"""

from __future__ import annotations

import gzip
import json
import os
import pathlib
import urllib.request
from collections.abc import Iterator

import pytest
import snappy

from tests.support import lokistack_process, polling, push

PUSH = "/loki/api/v1/push"


TENANT = "team-a"
LIMITED_TENANT = "limited"  # max 50 streams, through the runtime config file


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lokistack_process.LokistackProcess]:
    workdir = tmp_path_factory.mktemp("all-in-one")
    runtime_config = workdir / "runtime.yaml"
    runtime_config.write_text(
        f"overrides:\n  {LIMITED_TENANT}:\n    max_global_streams_per_user: 50\n"
    )
    process = lokistack_process.LokistackProcess(
        "all-in-one",
        workdir,
        {
            "target": "all",
            "auth_enabled": True,
            "ring": {"replication_factor": 1, "heartbeat_period": "1s"},
            "distributor": {"max_recv_msg_size": "8MB"},
            "limits": {"ingestion_rate_mb": 64, "ingestion_burst_size_mb": 128},
            "runtime_config": {"file": str(runtime_config), "period": "1s"},
        },
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _post(
    stack: lokistack_process.LokistackProcess,
    body: bytes,
    content_type: str = "application/x-protobuf",
    headers: dict[str, str] | None = None,
    tenant: str = TENANT,
) -> push.Answer:
    return push.post(
        stack.url + PUSH, body, content_type, headers={"X-Scope-OrgID": tenant, **(headers or {})}
    )


def _healthy_after(stack: lokistack_process.LokistackProcess) -> None:
    assert stack.running()
    assert stack.is_ready()
    ok = _post(stack, push.protobuf_body({'{app="health"}': [(push.now_ns(), "ok")]}))
    assert ok.status == 204, ok


def test_protobuf_and_json_pushes_are_stored(stack: lokistack_process.LokistackProcess) -> None:
    before = stack.metric("lokistack_ingester_entries_appended_total", tenant=TENANT)
    now = push.now_ns()
    answer = _post(
        stack,
        push.protobuf_body({'{app="api", env="prod"}': [(now, "one"), (now + 1, "two")]}),
    )
    assert answer == push.Answer(204, "")
    answer = _post(
        stack,
        push.json_body({'{app="api", env="dev"}': [(now, "three")]}),
        content_type="application/json",
    )
    assert answer == push.Answer(204, "")
    gzipped = _post(
        stack,
        gzip.compress(push.json_body({'{app="gz"}': [(now, "four")]})),
        content_type="application/json",
        headers={"Content-Encoding": "gzip"},
    )
    assert gzipped.status == 204, gzipped
    after = stack.metric("lokistack_ingester_entries_appended_total", tenant=TENANT)
    assert after - before == 4
    assert stack.metric("loki_distributor_lines_received_total", tenant=TENANT) >= 4


def test_partial_success_stores_the_valid_streams(
    stack: lokistack_process.LokistackProcess,
) -> None:
    before = stack.metric("lokistack_ingester_entries_appended_total", tenant=TENANT)
    now = push.now_ns()
    answer = _post(
        stack,
        push.protobuf_body(
            {
                '{app="good"}': [(now, "kept")],
                '{app="old"}': [(now - 30 * 24 * 3600 * 10**9, "too old")],
            }
        ),
    )
    assert answer.status == 400
    assert "has timestamp too old" in answer.body
    assert answer.body.endswith("\n")
    assert stack.metric("lokistack_ingester_entries_appended_total", tenant=TENANT) - before == 1
    assert (
        stack.metric(
            "loki_discarded_samples_total", reason="greater_than_max_sample_age", tenant=TENANT
        )
        >= 1
    )


def test_stream_limit_is_enforced_by_the_ingester(
    stack: lokistack_process.LokistackProcess,
) -> None:
    now = push.now_ns()
    streams = {f'{{app="many", n="{i}"}}': [(now, "x")] for i in range(60)}
    answer = _post(stack, push.protobuf_body(streams), tenant=LIMITED_TENANT)
    assert answer.status == 429
    assert "maximum active stream limit exceeded" in answer.body


def test_runtime_config_changes_apply_without_a_restart(
    stack: lokistack_process.LokistackProcess,
) -> None:
    runtime_config = stack.workdir / "runtime.yaml"
    now = push.now_ns()
    two_streams = push.protobuf_body({'{app="a"}': [(now, "x")], '{app="b"}': [(now, "y")]})
    assert _post(stack, two_streams, tenant="tightened").status == 204

    runtime_config.write_text(runtime_config.read_text() + "  tightened:\n    max_line_size: 4\n")
    long_line = push.protobuf_body({'{app="a"}': [(now + 1, "longer than four")]})

    def refused() -> push.Answer | None:
        answer = _post(stack, long_line, tenant="tightened")
        return answer if answer.status == 400 else None

    answer = polling.wait_until(refused, timeout=15, describe="the new max_line_size never applied")
    assert "max entry size '4' bytes exceeded" in answer.body
    assert _post(stack, long_line, tenant=TENANT).status == 204  # other tenants unchanged


def test_missing_tenant_is_401(stack: lokistack_process.LokistackProcess) -> None:
    body = push.protobuf_body({'{app="x"}': [(push.now_ns(), "x")]})
    assert push.post(stack.url + PUSH, body) == push.Answer(401, "no org id\n")


def test_unsupported_encoding_and_type(stack: lokistack_process.LokistackProcess) -> None:
    body = push.protobuf_body({'{app="x"}': [(push.now_ns(), "x")]})
    answer = _post(stack, body, headers={"Content-Encoding": "br"})
    assert answer == push.Answer(400, 'Content-Encoding "br" not supported\n')
    answer = _post(stack, body, content_type="")
    assert answer == push.Answer(400, "mime: no media type\n")
    _healthy_after(stack)


@pytest.mark.parametrize(
    ("name", "body", "content_type", "encoding"),
    [
        (
            "truncated snappy",
            push.protobuf_body({'{a="b"}': [(1, "x" * 1000)]})[:20],
            "application/x-protobuf",
            None,
        ),
        ("not snappy at all", os.urandom(512), "application/x-protobuf", None),
        (
            "snappy of garbage protobuf",
            bytes(snappy.compress(b"\xff" * 64)),
            "application/x-protobuf",
            None,
        ),
        (
            "malformed json",
            b'{"streams": [{"stream": {"a": "b"}, "values": [[1, "x"]]',
            "application/json",
            None,
        ),
        (
            "json with a number timestamp",
            json.dumps({"streams": [{"stream": {"a": "b"}, "values": [[1, "x"]]}]}).encode(),
            "application/json",
            None,
        ),
        ("empty json body", b"", "application/json", None),
        ("bad gzip", b"\x1f\x8b\x08\x00garbage", "application/json", "gzip"),
        ("bad deflate", b"\x00\x01\x02garbage", "application/json", "deflate"),
        (
            "unparsable labels",
            push.protobuf_body({'{a="b"': [(1, "x")]}),
            "application/x-protobuf",
            None,
        ),
    ],
)
def test_hostile_bodies_get_a_clean_4xx(
    stack: lokistack_process.LokistackProcess,
    name: str,
    body: bytes,
    content_type: str,
    encoding: str | None,
) -> None:
    headers = {"Content-Encoding": encoding} if encoding else {}
    answer = _post(stack, body, content_type=content_type, headers=headers)
    assert 400 <= answer.status < 500, (name, answer)
    assert answer.body.strip(), name
    _healthy_after(stack)


def test_oversized_body_is_413(stack: lokistack_process.LokistackProcess) -> None:
    body = os.urandom(9 * 1024 * 1024)
    answer = _post(stack, body)
    assert answer.status == 413
    assert answer.body.startswith("request body too large:")
    _healthy_after(stack)


def test_huge_labels_and_lines_are_refused(stack: lokistack_process.LokistackProcess) -> None:
    now = push.now_ns()
    huge_labels = '{app="' + "v" * 100_000 + '"}'
    answer = _post(stack, push.protobuf_body({huge_labels: [(now, "x")]}))
    assert answer.status == 400
    assert "label value too long" in answer.body
    ten_mb_line = "x" * (10 * 1024 * 1024)
    body = push.protobuf_body({'{app="big"}': [(now, ten_mb_line)]})
    answer = _post(stack, body)  # compresses below the 8 MB body limit
    assert answer.status == 400
    assert "max entry size" in answer.body
    _healthy_after(stack)


def test_zero_length_protobuf_body(stack: lokistack_process.LokistackProcess) -> None:
    # Loki's snappy decoder finds no length prefix in an empty body.
    answer = _post(stack, b"")
    assert answer == push.Answer(400, "snappy: corrupt input\n")
    _healthy_after(stack)


def test_ring_page(stack: lokistack_process.LokistackProcess, tmp_path: pathlib.Path) -> None:
    request = urllib.request.Request(stack.url + "/ring", headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        status = json.load(response)
    assert [instance["id"] for instance in status["instances"]] == ["all-in-one"]
    with urllib.request.urlopen(stack.url + "/ring", timeout=5) as response:
        assert "all-in-one" in response.read().decode()


def test_flush_endpoint_stores_chunks_and_index(stack: lokistack_process.LokistackProcess) -> None:
    now = push.now_ns()
    assert (
        _post(stack, push.protobuf_body({'{app="flushed"}': [(now, "to storage")]})).status == 204
    )
    answer = push.post(stack.url + "/flush", b"", content_type="")
    assert answer.status == 204
    objects = stack.workdir / "data" / "objects"

    def stored() -> bool:
        chunks = list((objects / TENANT / "chunks").glob("*/*"))
        index_files = list((objects / "index").glob(f"*/{TENANT}/*.sqlite"))
        return bool(chunks) and bool(index_files)

    polling.wait_until(
        stored, timeout=20, describe=lambda: f"objects: {sorted(objects.rglob('*'))}"
    )
    assert stack.metric("loki_ingester_chunks_flushed_total", reason="forced") >= 1
