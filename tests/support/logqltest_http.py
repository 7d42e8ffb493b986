"""Run ``.logqltest`` cases through a running Lokistack: push API in, query API out.

Each distinct set of loaded streams is pushed once, as Loki's protobuf push, into its own tenant
(so cases never see each other's data); each ``eval`` then queries ``/loki/api/v1/query`` or
``/query_range`` as that tenant and compares the JSON answer with the expectation, using the
same comparison as the in-process runner.

The scripts count time from t=0. Here t=0 is :data:`BASE_NS`, a UTC midnight two days ago: old
enough to lie fully in the past, young enough for the default ``reject_old_samples`` window, and
a multiple of every step, so a query frontend's step alignment keeps the scripts' times.
The stack must ask ingesters for any time range (``query_ingesters_within: 0``), because
nothing is flushed.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Final

import snappy
from lokistack.logql.engine import samples
from lokistack.model import labels as model_labels
from lokistack.proto import push_pb2

from tests.support import logqltest

DAY_NS: Final = 86_400 * 1_000_000_000
BASE_NS: Final = (time.time_ns() // DAY_NS - 2) * DAY_NS

StateKey = tuple[tuple[model_labels.Labels, tuple[tuple[int, str, model_labels.Labels], ...]], ...]

SETTINGS: Final[dict[str, Any]] = {
    "auth_enabled": True,
    "ring": {"replication_factor": 1},
    "querier": {"query_ingesters_within": "0s"},
    "limits": {
        "discover_service_name": [],
        "discover_log_levels": False,
        "ingestion_rate_mb": 1024,
        "ingestion_burst_size_mb": 1024,
        "max_query_series": 0,
    },
}
"""Config keys a stack under test needs for the scripts (labels exactly as loaded)."""


def _state_key(case: logqltest.Case) -> StateKey:
    return tuple((stream.labels, tuple(stream.entries)) for stream in case.streams)


def push_body(case: logqltest.Case) -> bytes:
    request = push_pb2.PushRequest()
    for stream in case.streams:
        if not stream.entries:
            continue
        pushed = request.streams.add(labels=model_labels.canonical(stream.labels))
        for ts, line, metadata in stream.entries:
            entry = pushed.entries.add(line=line)
            entry.timestamp.seconds, entry.timestamp.nanos = divmod(BASE_NS + ts, 1_000_000_000)
            for name, value in metadata:
                entry.structuredMetadata.add(name=name, value=value)
    return bytes(snappy.compress(request.SerializeToString()))


def _request(url: str, tenant: str, data: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("X-Scope-OrgID", tenant)
    if data is not None:
        request.add_header("Content-Type", "application/x-protobuf")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def _labels(metric: dict[str, str]) -> model_labels.Labels:
    return tuple(sorted(metric.items()))


def _ns(seconds: float) -> int:
    return round(seconds * 1000) * 1_000_000 - BASE_NS


def result_from_json(data: dict[str, Any]) -> samples.Result:
    """The query API's ``data`` as an engine result, times moved back to the script's epoch."""
    kind, result = data["resultType"], data["result"]
    if kind == "scalar":
        return samples.Scalar(_ns(result[0]), logqltest.parse_value(result[1]))
    if kind == "vector":
        items = [
            (_labels(item["metric"]), logqltest.parse_value(item["value"][1])) for item in result
        ]
        ts = _ns(result[0]["value"][0]) if result else 0
        return samples.Vector(ts, items)
    if kind == "matrix":
        return samples.Matrix(
            [
                samples.Series(
                    _labels(item["metric"]),
                    [samples.Sample(_ns(t), logqltest.parse_value(v)) for t, v in item["values"]],
                )
                for item in result
            ]
        )
    raise AssertionError(f"unexpected resultType {kind!r} for a metric query")


class Runner:
    """Pushes each case's streams once and checks its ``eval`` through ``url``'s query API."""

    def __init__(self, push_url: str, query_url: str) -> None:
        self.push_url = push_url
        self.query_url = query_url
        self._tenants: dict[StateKey, str] = {}

    def tenant_for(self, case: logqltest.Case) -> str:
        key = _state_key(case)
        tenant = self._tenants.get(key)
        if tenant is None:
            tenant = f"conformance-{len(self._tenants)}"
            status, body = _request(
                f"{self.push_url}/loki/api/v1/push", tenant, data=push_body(case)
            )
            if status != 204:
                raise AssertionError(f"push for {case.name} failed: {status} {body}")
            self._tenants[key] = tenant
        return tenant

    def run(self, case: logqltest.Case) -> str:
        tenant = self.tenant_for(case)
        if case.instant:
            path = "/loki/api/v1/query"
            query = {"query": case.query, "time": str(BASE_NS + case.start_ns)}
        else:
            path = "/loki/api/v1/query_range"
            query = {
                "query": case.query,
                "start": str(BASE_NS + case.start_ns),
                "end": str(BASE_NS + case.end_ns),
                "step": f"{case.step_ns // 1_000_000}ms",
            }
        status, body = _request(f"{self.query_url}{path}?{urllib.parse.urlencode(query)}", tenant)
        expected = case.expected
        if status != 200:
            if expected.kind == "fail" and status == 400 and expected.message in body:
                return logqltest.PASS
            return f"fail: HTTP {status}: {body.strip()[:300]}"
        answer = json.loads(body)
        if answer.get("status") != "success" or "stats" not in answer["data"]:
            return f"fail: unexpected envelope {body[:300]}"
        return logqltest.compare(case, result_from_json(answer["data"]))
