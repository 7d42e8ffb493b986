"""One distributor and three ingesters as separate processes, with the ring in Kubernetes Leases.

At replication factor 3 a push needs 2 of 3 ingesters: it survives one killed ingester and fails
with a 5xx when two are gone. A killed ingester that comes back rejoins with the tokens it had
(persisted beside its WAL); a gracefully stopped one leaves the ring.
"""

from __future__ import annotations

import json
import pathlib
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as kube_client
from lokistack.ring.kv import lease_codec

from tests.support import lokistack_process, polling, push, stacks

PUSH = "/loki/api/v1/push"


def _ring(process: lokistack_process.LokistackProcess) -> dict[str, dict[str, Any]]:
    request = urllib.request.Request(process.url + "/ring", headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        status = json.load(response)
    return {instance["id"]: instance for instance in status["instances"]}


def _tokens(ingester: lokistack_process.LokistackProcess) -> list[int]:
    tokens_file = ingester.workdir / "data" / "wal" / "tokens.json"
    data = json.loads(tokens_file.read_text())
    return list(data["tokens"] if isinstance(data, dict) else data)


def _lease_tokens(
    kube_api: kube_client.ApiClient, namespace: str, instance: str
) -> tuple[int, ...]:
    lease = kube_client.CoordinationV1Api(kube_api).read_namespaced_lease(
        lease_codec.lease_name("lokistack-ring", "ingester", instance), namespace
    )
    annotations = lease.metadata.annotations or {}
    return lease_codec.decode_tokens(annotations[lease_codec.ANNOTATION_TOKENS])


def _entries(process: lokistack_process.LokistackProcess) -> float:
    return process.metric("lokistack_ingester_entries_appended_total", tenant="fake")


def _push(distributor: lokistack_process.LokistackProcess, label: str) -> push.Answer:
    now = push.now_ns()
    streams = {
        f'{{app="replication", n="{label}-{i}"}}': [(now + j, f"line {j}") for j in range(5)]
        for i in range(10)
    }
    return push.post(distributor.url + PUSH, push.protobuf_body(streams))


@pytest.fixture
def stack(
    kubeconfig: pathlib.Path, namespace: str, tmp_path: pathlib.Path
) -> Iterator[stacks.WritePath]:
    settings = {
        "ring": {"replication_factor": 3, "heartbeat_timeout": "15s"},
        "limits": {"ingestion_rate_mb": 64, "ingestion_burst_size_mb": 128},
    }
    with stacks.replicated_write_path(tmp_path, kubeconfig, namespace, settings) as write_path:
        yield write_path


def test_quorum_rejoin_and_leave(
    stack: stacks.WritePath,
    kube_api: kube_client.ApiClient,
    namespace: str,
) -> None:
    distributor, ingesters = stack.distributor, stack.ingesters

    answer = _push(distributor, "all-up")
    assert answer == push.Answer(204, ""), answer
    # The 204 promises a quorum: every stream on at least 2 of the 3 ingesters (each ingester
    # gets all 10 streams in one Push, so it holds all 50 entries or none). The third copy is
    # best effort, as in Loki, and may arrive after the answer.
    polling.wait_until(
        lambda: sum(_entries(ingester) == 50 for ingester in ingesters) >= 2,
        timeout=10,
        describe=lambda: f"entries per ingester: {[_entries(i) for i in ingesters]}",
    )

    tokens_before = _tokens(ingesters[0])
    assert len(tokens_before) == 128
    ingesters[0].kill()
    answer = _push(distributor, "one-down")
    assert answer == push.Answer(204, ""), answer

    ingesters[1].kill()
    answer = _push(distributor, "two-down")
    assert 500 <= answer.status < 600, answer

    ingesters[0].start()

    def rejoined() -> bool:
        member = _ring(distributor).get("ingester-0")
        return member is not None and member["state"] == "ACTIVE"

    polling.wait_until(
        rejoined,
        timeout=20,
        describe=lambda: f"ingester-0 in the ring: {_ring(distributor).get('ingester-0')}",
    )
    # The ring holds the very tokens it had before the kill (not just the same count).
    assert _lease_tokens(kube_api, namespace, "ingester-0") == tuple(sorted(tokens_before))
    answer = _push(distributor, "rejoined")
    assert answer == push.Answer(204, ""), answer

    assert ingesters[2].terminate() == 0
    polling.wait_until(
        lambda: "ingester-2" not in _ring(distributor),
        timeout=20,
        describe=lambda: f"ring after ingester-2 stopped: {sorted(_ring(distributor))}",
    )
