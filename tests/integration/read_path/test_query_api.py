"""The query API of one `lokistack --target=all` process: Loki's answers, errors and limits.

One process (in-memory ring, replication factor 1, auth on) holds a few streams pushed through
the push API at fixed times ten minutes ago; every endpoint is then asked over HTTP (and the
tail over a WebSocket) and its answer compared with Loki's: the exact JSON shapes and values,
and for errors the exact status and plain-text body (``http.Error``: the message and a newline).
Per-tenant read limits come from the runtime config file. Hostile requests must get a clean
4xx and leave the process healthy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import aiohttp
import lokistack
import pytest

from tests.support import lokistack_process, polling, push

PUSH = "/loki/api/v1/push"
QUERY_RANGE = "/loki/api/v1/query_range"
QUERY = "/loki/api/v1/query"
TAIL = "/loki/api/v1/tail"
TEXT = "text/plain; charset=utf-8"
JSON = "application/json; charset=UTF-8"
SECOND = 10**9

TENANT = "team-a"
LIMITED = "limited"  # max 10 entries, 1h queries, 2 series
LOOKBACK = "lookback"  # 1h lookback and 1h queries: older starts are clamped, not refused
SLOW = "slow"  # a 1us query timeout
TAIL_LIMITED = "tail-limited"  # 2 concurrent tails
EMPTY = "nobody"  # never pushed anything

RUNTIME_CONFIG = f"""overrides:
  {LIMITED}:
    max_entries_limit_per_query: 10
    max_query_length: 1h
    max_query_series: 2
  {LOOKBACK}:
    max_query_lookback: 1h
    max_query_length: 1h
  {SLOW}:
    query_timeout: 1us
  {TAIL_LIMITED}:
    max_concurrent_tail_requests: 2
"""

AT_LEAST_ONE_MATCHER = (
    "parse error : queries require at least one regexp or equality matcher that does not have "
    'an empty-compatible value. For instance, app=~".*" does not meet this requirement, but '
    'app=~".+" will'
)
TIMED_OUT = (
    "request timed out, decrease the duration of the request or add more label matchers "
    "(prefer exact match over regex match) to reduce the amount of data processed"
)
HTML_LINE = '<b>bold</b> & "quoted"'
HTML_LINE_JSON = '"\\u003cb\\u003ebold\\u003c/b\\u003e \\u0026 \\"quoted\\""'


@dataclasses.dataclass(frozen=True)
class Data:
    """What the module pushed: ``base`` is a whole second, ten minutes ago."""

    base: int

    @property
    def base_s(self) -> int:
        return self.base // SECOND

    def at(self, seconds: float) -> int:
        return self.base + round(seconds * SECOND)


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lokistack_process.LokistackProcess]:
    workdir = tmp_path_factory.mktemp("query-api")
    runtime_config = workdir / "runtime.yaml"
    runtime_config.write_text(RUNTIME_CONFIG)
    process = lokistack_process.LokistackProcess(
        "query-api",
        workdir,
        {
            "target": "all",
            "auth_enabled": True,
            "ring": {"replication_factor": 1, "heartbeat_period": "1s"},
            "limits": {
                "discover_service_name": [],
                "discover_log_levels": False,
                "ingestion_rate_mb": 64,
                "ingestion_burst_size_mb": 128,
            },
            "runtime_config": {"file": str(runtime_config), "period": "1s"},
        },
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module", autouse=True)
def data(stack: lokistack_process.LokistackProcess) -> Data:
    """Every test may rely on these streams, so they are pushed before the first one runs."""
    pushed = Data((time.time_ns() // SECOND - 600) * SECOND)
    at = pushed.at
    team = {
        '{app="api", env="prod"}': [(at(i), f"prod line {i}") for i in range(10)],
        '{app="api", env="dev"}': [(at(i + 0.5), f"dev line {i}") for i in range(3)],
        '{app="web"}': [(at(20), HTML_LINE)],
        '{app="html", tag="a<b>&c"}': [(at(21), "<i>")],
        '{app="json"}': [(at(30), '{"level":"info","status":200}')],
        '{app="logfmt"}': [(at(31), "level=warn msg=hi")],
        '{app="many"}': [(at(100 + i / 10), f"many {i:03d}") for i in range(150)],
        '{app="tail", test="history"}': [(at(40 + i), f"history {i}") for i in range(3)],
        '{app="tail", test="slow"}': [(at(40), "slow history")],
        '{app="tail", test="delay"}': [(at(40), "delay history")],
    }
    _push(stack, TENANT, team)
    limited = {f'{{app="x", n="{n}"}}': [(at(i), f"x{n} {i}") for i in range(20)] for n in range(3)}
    _push(stack, LIMITED, limited)
    _push(stack, LOOKBACK, {'{app="x"}': [(at(0), "lookback")]})
    return pushed


def _push(
    stack: lokistack_process.LokistackProcess,
    tenant: str,
    streams: Mapping[str, Sequence[push.Entry]],
) -> None:
    answer = push.post(
        stack.url + PUSH, push.protobuf_body(streams), headers={"X-Scope-OrgID": tenant}
    )
    assert answer.status == 204, answer


def _request(
    stack: lokistack_process.LokistackProcess,
    path: str,
    params: Mapping[str, str | Sequence[str]] | Sequence[tuple[str, str]] | str = (),
    *,
    tenant: str | None = TENANT,
    form: bool = False,
    body: bytes | None = None,
    content_type: str = "application/x-www-form-urlencoded",
    method: str | None = None,
) -> Reply:
    """GET ``path?params``; with ``form``, POST the params as a form; ``body`` is sent as is."""
    encoded = params if isinstance(params, str) else urllib.parse.urlencode(params, doseq=True)
    url = stack.url + path
    if form:
        body = encoded.encode()
    elif encoded:
        url += "?" + encoded
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", content_type)
    if tenant is not None:
        request.add_header("X-Scope-OrgID", tenant)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            raw = response.read()
            status, headers = response.status, response.headers
    except urllib.error.HTTPError as error:
        raw, status, headers = error.read(), error.code, error.headers
    return Reply(status, headers.get("Content-Type", ""), raw.decode(errors="replace"))


def _ok(reply: Reply) -> Any:
    assert reply.status == 200, reply
    assert reply.content_type == JSON, reply
    assert reply.body.endswith("\n")
    return reply.json()


def _error(status: int, message: str) -> Reply:
    return Reply(status, TEXT, message + "\n")


def _result(reply: Reply, result_type: str) -> Any:
    body = _ok(reply)
    assert body["status"] == "success"
    assert list(body["data"]) == ["resultType", "result", "stats"]
    assert body["data"]["resultType"] == result_type
    return body["data"]["result"]


def _values(result: list[dict[str, Any]]) -> list[tuple[int, str]]:
    assert len(result) == 1, result
    return [(int(ts), line) for ts, line in result[0]["values"]]


def _healthy(stack: lokistack_process.LokistackProcess) -> None:
    assert stack.running()
    assert stack.is_ready()
    reply = _request(stack, QUERY_RANGE, {"query": '{app="web"}'})
    assert _result(reply, "streams")[0]["stream"] == {"app": "web"}


# query_range: log queries -------------------------------------------------------------------


def test_log_query_defaults_to_backward_and_100_entries(
    stack: lokistack_process.LokistackProcess, data: Data
) -> None:
    result = _result(_request(stack, QUERY_RANGE, {"query": '{app="many"}'}), "streams")
    assert result[0]["stream"] == {"app": "many"}
    assert _values(result) == [(data.at(100 + i / 10), f"many {i:03d}") for i in range(149, 49, -1)]
    assert all(isinstance(ts, str) for ts, _ in result[0]["values"])


def test_forward_direction_limit_and_half_open_range(
    stack: lokistack_process.LokistackProcess, data: Data
) -> None:
    bounds = {"start": str(data.at(2)), "end": str(data.at(5))}  # nanosecond epochs
    prod = '{app="api", env="prod"}'
    forward = _request(stack, QUERY_RANGE, {"query": prod, "direction": "FORWARD", **bounds})
    assert _values(_result(forward, "streams")) == [
        (data.at(i), f"prod line {i}") for i in (2, 3, 4)
    ]
    backward = _request(stack, QUERY_RANGE, {"query": prod, "limit": "2", **bounds})
    assert _values(_result(backward, "streams")) == [(data.at(i), f"prod line {i}") for i in (4, 3)]
    # Float and integer Unix seconds and RFC 3339 name the same instants.
    rfc3339 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(data.base_s + 5))
    for start, end in [
        (f"{data.base_s + 2}.0", str(data.base_s + 5)),
        (str(data.base_s + 2), rfc3339),
    ]:
        again = {"query": prod, "direction": "forward", "start": start, "end": end}
        assert _result(_request(stack, QUERY_RANGE, again), "streams") == _result(
            forward, "streams"
        )


def test_interval_keeps_one_entry_per_interval(
    stack: lokistack_process.LokistackProcess, data: Data
) -> None:
    params = {
        "query": '{app="api", env="prod"}',
        "start": str(data.base),
        "end": str(data.at(10)),
        "interval": "3s",
    }
    forward = _request(stack, QUERY_RANGE, {**params, "direction": "forward"})
    assert [line for _, line in _values(_result(forward, "streams"))] == [
        f"prod line {i}" for i in (0, 3, 6, 9)
    ]
    backward = _request(stack, QUERY_RANGE, params)
    assert [line for _, line in _values(_result(backward, "streams"))] == [
        f"prod line {i}" for i in (9, 6, 3, 0)
    ]


def test_stats_has_lokis_key_tree(stack: lokistack_process.LokistackProcess, data: Data) -> None:
    reply = _request(stack, QUERY_RANGE, {"query": '{app="api"}', "start": str(data.base)})
    stats = _ok(reply)["data"]["stats"]
    assert list(stats) == ["summary", "querier", "ingester", "cache", "index"]
    assert list(stats["summary"]) == [
        "bytesProcessedPerSecond",
        "linesProcessedPerSecond",
        "totalBytesProcessed",
        "totalLinesProcessed",
        "execTime",
        "queueTime",
        "subqueries",
        "totalEntriesReturned",
        "splits",
        "shards",
        "totalPostFilterLines",
        "totalStructuredMetadataBytesProcessed",
    ]
    assert stats["summary"]["totalEntriesReturned"] == 13
    assert stats["summary"]["totalLinesProcessed"] >= 13
    assert list(stats["querier"]) == ["store", "querierExecTime"]
    assert list(stats["ingester"]) == [
        "totalReached",
        "totalChunksMatched",
        "totalBatches",
        "totalLinesSent",
        "store",
    ]
    for store in (stats["querier"]["store"], stats["ingester"]["store"]):
        assert list(store) == [
            "totalChunksRef",
            "totalChunksDownloaded",
            "chunksDownloadTime",
            "queryReferencedStructuredMetadata",
            "queryUsedV2Engine",
            "chunk",
            "chunkRefsFetchTime",
            "congestionControlLatency",
            "pipelineWrapperFilteredLines",
            "dataobj",
        ]
        assert len(store["chunk"]) == 9
    assert list(stats["cache"]) == [
        "chunk",
        "index",
        "result",
        "statsResult",
        "volumeResult",
        "seriesResult",
        "labelResult",
        "instantMetricResult",
        "logResult",
        "taskResult",
    ]
    for cache in stats["cache"].values():
        assert list(cache) == [
            "entriesFound",
            "entriesRequested",
            "entriesStored",
            "bytesReceived",
            "bytesSent",
            "requests",
            "downloadTime",
            "queryLengthServed",
        ]
    assert list(stats["index"]) == [
        "totalChunks",
        "postFilterChunks",
        "shardsDuration",
        "usedBloomFilters",
        "totalStreams",
        "chunkRefsLookupTime",
        "bloomFilterTime",
    ]


def test_lines_are_html_escaped_and_labels_are_not(
    stack: lokistack_process.LokistackProcess, data: Data
) -> None:
    reply = _request(stack, QUERY_RANGE, {"query": '{app=~"web|html"}', "start": str(data.base)})
    _ok(reply)
    assert (
        '"result":[{"stream":{"app":"html","tag":"a<b>&c"},'
        f'"values":[["{data.at(21)}","\\u003ci\\u003e"]]}},'
        f'{{"stream":{{"app":"web"}},"values":[["{data.at(20)}",{HTML_LINE_JSON}]]}}],'
    ) in reply.body
    assert _values(_result(reply, "streams")[1:]) == [(data.at(20), HTML_LINE)]


def test_streams_are_ordered_by_their_labels(
    stack: lokistack_process.LokistackProcess, data: Data
) -> None:
    query = '{app=~"api|json|logfmt|web"}'
    reply = _request(stack, QUERY_RANGE, {"query": query, "start": str(data.base)})
    assert [stream["stream"] for stream in _result(reply, "streams")] == [
        {"app": "api", "env": "dev"},
        {"app": "api", "env": "prod"},
        {"app": "json"},
        {"app": "logfmt"},
        {"app": "web"},
    ]


def test_parsed_labels_are_part_of_the_stream(
    stack: lokistack_process.LokistackProcess, data: Data
) -> None:
    start = str(data.base)
    parsed = _request(stack, QUERY_RANGE, {"query": '{app="json"} | json', "start": start})
    assert _result(parsed, "streams") == [
        {
            "stream": {"app": "json", "level": "info", "status": "200"},
            "values": [[str(data.at(30)), '{"level":"info","status":200}']],
        }
    ]
    parsed = _request(stack, QUERY_RANGE, {"query": '{app="logfmt"} | logfmt', "start": start})
    assert _result(parsed, "streams") == [
        {
            "stream": {"app": "logfmt", "level": "warn", "msg": "hi"},
            "values": [[str(data.at(31)), "level=warn msg=hi"]],
        }
    ]


def test_no_match_is_an_empty_result(stack: lokistack_process.LokistackProcess) -> None:
    reply = _request(stack, QUERY_RANGE, {"query": '{app="nothing"}'})
    assert _result(reply, "streams") == []
    reply = _request(stack, QUERY_RANGE, {"query": 'count_over_time({app="nothing"}[1m])'})
    assert _result(reply, "matrix") == []


# query_range: metric queries ----------------------------------------------------------------


def test_metric_query_is_a_matrix_at_each_step(
    stack: lokistack_process.LokistackProcess, data: Data
) -> None:
    params = {
        "query": 'count_over_time({app="api", env="prod"}[10s])',
        "start": str(data.base_s),
        "end": str(data.base_s + 20),
        "step": "5s",
    }
    b = data.base_s
    expected = [
        {
            "metric": {"app": "api", "env": "prod"},
            "values": [[b, "1"], [b + 5, "6"], [b + 10, "9"], [b + 15, "4"]],
        }
    ]
    assert _result(_request(stack, QUERY_RANGE, params), "matrix") == expected
    # POST with a form body; logcli's float seconds for the step.
    posted = _request(stack, QUERY_RANGE, {**params, "step": "5"}, form=True)
    assert _result(posted, "matrix") == expected


def test_metric_series_are_ordered_by_labels(
    stack: lokistack_process.LokistackProcess, data: Data
) -> None:
    params = {
        "query": 'sum by (env) (count_over_time({app="api"}[2m]))',
        "start": str(data.base_s + 60),
        "end": str(data.base_s + 60),
        "step": "60",
    }
    assert _result(_request(stack, QUERY_RANGE, params), "matrix") == [
        {"metric": {"env": "dev"}, "values": [[data.base_s + 60, "3"]]},
        {"metric": {"env": "prod"}, "values": [[data.base_s + 60, "10"]]},
    ]


# query_range: errors ------------------------------------------------------------------------

SELECTOR = {"query": '{app="api"}'}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {**SELECTOR, "start": "abc"},
            "could not parse 'start' parameter: strconv.ParseInt: parsing \"abc\": invalid syntax",
        ),
        (
            {**SELECTOR, "end": "2020-13-01T00:00:00Z"},
            "could not parse 'end' parameter: strconv.ParseInt: parsing "
            '"2020-13-01T00:00:00Z": invalid syntax',
        ),
        (
            {**SELECTOR, "start": "20", "end": "10"},
            "end timestamp must not be before or equal to start time",
        ),
        ({**SELECTOR, "limit": "0"}, "limit must be a positive value"),
        ({**SELECTOR, "limit": "-5"}, "limit must be a positive value"),
        ({**SELECTOR, "limit": "x"}, 'strconv.Atoi: parsing "x": invalid syntax'),
        ({**SELECTOR, "direction": "up"}, "invalid direction 'up'"),
        (
            {**SELECTOR, "step": "0"},
            "zero or negative query resolution step widths are not accepted. "
            "Try a positive integer",
        ),
        ({**SELECTOR, "step": "x"}, 'cannot parse "x" to a valid duration'),
        (
            {**SELECTOR, "start": "0", "end": "11001", "step": "1"},
            "exceeded maximum resolution of 11,000 points per time series. "
            "Try increasing the value of the step parameter",
        ),
        ({**SELECTOR, "interval": "-1"}, "interval must be >= 0"),
        (
            {"query": '{app="api"'},
            "parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ,",
        ),
        (
            {"query": 'sum(count_over_time({app="api"}[5m])'},
            "parse error at line 1, col 37: syntax error: unexpected $end",
        ),
        ({"query": ""}, "parse error : syntax error: unexpected $end"),
        ({"query": '{app=~".*"}'}, AT_LEAST_ONE_MATCHER),
        ({"query": '{app=""}'}, AT_LEAST_ONE_MATCHER),
        ({"query": "{}"}, AT_LEAST_ONE_MATCHER),
        ({"query": '{app=~"("}'}, "parse error : error parsing regexp: missing closing ): `(`"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 40 else None,
)
def test_query_range_bad_requests(
    stack: lokistack_process.LokistackProcess, params: dict[str, str], message: str
) -> None:
    assert _request(stack, QUERY_RANGE, params) == _error(400, message)
    assert _request(stack, QUERY_RANGE, params, form=True) == _error(400, message)


def test_missing_tenant_is_401(stack: lokistack_process.LokistackProcess) -> None:
    for path, params in [
        (QUERY_RANGE, SELECTOR),
        (QUERY, {"query": "1+1"}),
        ("/loki/api/v1/labels", {}),
        ("/loki/api/v1/series", {}),
        ("/loki/api/v1/index/stats", SELECTOR),
        (TAIL, SELECTOR),
    ]:
        assert _request(stack, path, params, tenant=None) == _error(401, "no org id"), path


def test_max_entries_limit_per_query(stack: lokistack_process.LokistackProcess, data: Data) -> None:
    query = {"query": '{app="x", n="0"}'}
    assert _request(stack, QUERY_RANGE, {**query, "limit": "11"}, tenant=LIMITED) == _error(
        400,
        "max entries limit per query exceeded, limit > max_entries_limit_per_query (11 > 10)",
    )
    # The default limit of 100 is over it too.
    assert _request(stack, QUERY_RANGE, query, tenant=LIMITED).status == 400
    allowed = _request(stack, QUERY_RANGE, {**query, "limit": "10"}, tenant=LIMITED)
    assert len(_values(_result(allowed, "streams"))) == 10
    # Not applied to metric queries.
    metric = {
        "query": 'sum(count_over_time({app="x"}[1m]))',
        "limit": "11",
        "start": str(data.base_s),
        "end": str(data.base_s + 60),
    }
    assert _result(_request(stack, QUERY_RANGE, metric, tenant=LIMITED), "matrix")


def test_max_query_length(stack: lokistack_process.LokistackProcess, data: Data) -> None:
    params = {
        "query": '{app="x", n="0"}',
        "limit": "5",
        "start": str(data.base_s - 7200),
        "end": str(data.base_s),
    }
    assert _request(stack, QUERY_RANGE, params, tenant=LIMITED) == _error(
        400, "the query time range exceeds the limit (query length: 2h0m0s, limit: 1h)"
    )
    labels = _request(stack, "/loki/api/v1/labels", {"since": "3h"}, tenant=LIMITED)
    assert labels == _error(
        400, "the query time range exceeds the limit (query length: 3h0m0s, limit: 1h)"
    )


def test_max_query_lookback_clamps_before_the_length_check(
    stack: lokistack_process.LokistackProcess, data: Data
) -> None:
    params = {"query": '{app="x"}', "since": "3h"}
    result = _result(_request(stack, QUERY_RANGE, params, tenant=LOOKBACK), "streams")
    assert _values(result) == [(data.base, "lookback")]


def test_max_query_series(stack: lokistack_process.LokistackProcess, data: Data) -> None:
    metric = {
        "query": 'count_over_time({app="x"}[1m])',
        "start": str(data.base_s - 60),
        "end": str(data.base_s + 60),
    }
    assert _request(stack, QUERY_RANGE, metric, tenant=LIMITED) == _error(
        400,
        "maximum number of series (2) reached for a single query; consider reducing query "
        "cardinality by adding more specific stream selectors, reducing the time range, or "
        "aggregating results with functions like sum(), count() or topk()",
    )


def test_query_timeout_is_504(stack: lokistack_process.LokistackProcess) -> None:
    assert _request(stack, QUERY_RANGE, SELECTOR, tenant=SLOW) == _error(504, TIMED_OUT)


# query (instant) ----------------------------------------------------------------------------


def test_instant_scalar_and_grafana_health_check(stack: lokistack_process.LokistackProcess) -> None:
    scalar = _request(stack, QUERY, {"query": "1+1", "time": "1700000000"})
    assert _result(scalar, "scalar") == [1700000000, "2"]
    health = {"query": "vector(1)+vector(1)", "time": "1700000000.5", "step": "1s"}
    assert _result(_request(stack, QUERY, health), "vector") == [
        {"metric": {}, "value": [1700000000.5, "2"]}
    ]
    assert _result(_request(stack, QUERY, health, form=True), "vector") == [
        {"metric": {}, "value": [1700000000.5, "2"]}
    ]


def test_instant_vector(stack: lokistack_process.LokistackProcess, data: Data) -> None:
    at = data.base_s + 60
    params = {"query": 'sum by (env) (count_over_time({app="api"}[1h]))', "time": str(at)}
    assert _result(_request(stack, QUERY, params), "vector") == [
        {"metric": {"env": "dev"}, "value": [at, "3"]},
        {"metric": {"env": "prod"}, "value": [at, "10"]},
    ]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            SELECTOR,
            "log queries are not supported as an instant query type, please change your query "
            "to a range query type",
        ),
        ({"query": "1+1", "limit": "0"}, "limit must be a positive value"),
        ({"query": "1+1", "direction": "sideways"}, "invalid direction 'sideways'"),
        ({"query": "1+"}, "parse error at line 1, col 3: syntax error: unexpected $end"),
    ],
)
def test_instant_query_bad_requests(
    stack: lokistack_process.LokistackProcess, params: dict[str, str], message: str
) -> None:
    assert _request(stack, QUERY, params) == _error(400, message)


# labels, label values, series, index stats --------------------------------------------------

LABEL_NAMES = ["app", "env", "tag", "test"]
APPS = ["api", "html", "json", "logfmt", "many", "tail", "web"]


def test_label_names_and_values(stack: lokistack_process.LokistackProcess) -> None:
    for path in ("/loki/api/v1/labels", "/loki/api/v1/label"):
        assert _ok(_request(stack, path)) == {"status": "success", "data": LABEL_NAMES}
        assert _ok(_request(stack, path, form=True, params={"since": "2h"}))["data"] == (
            LABEL_NAMES
        )
    values = _request(stack, "/loki/api/v1/label/app/values")
    assert _ok(values) == {"status": "success", "data": APPS}
    filtered = _request(stack, "/loki/api/v1/label/env/values", {"query": '{app="api"}'})
    assert _ok(filtered)["data"] == ["dev", "prod"]
    names = _request(stack, "/loki/api/v1/labels", {"query": '{app="web"}'})
    assert _ok(names)["data"] == ["app"]


def test_empty_label_answer_has_no_data_key(stack: lokistack_process.LokistackProcess) -> None:
    for reply in (
        _request(stack, "/loki/api/v1/label/nope/values"),
        _request(stack, "/loki/api/v1/labels", tenant=EMPTY),
        _request(stack, "/loki/api/v1/labels", {"query": '{app="nothing"}'}),
    ):
        assert reply == Reply(200, JSON, '{"status":"success"}\n')


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        (
            "/loki/api/v1/labels",
            {"query": '{app="web"} |= "x"'},
            "only label matchers are supported",
        ),
        ("/loki/api/v1/label/app/values", {"query": "{}"}, AT_LEAST_ONE_MATCHER),
        (
            "/loki/api/v1/labels",
            {"start": "yesterday"},
            "could not parse 'start' parameter: strconv.ParseInt: parsing \"yesterday\": "
            "invalid syntax",
        ),
        (
            "/loki/api/v1/labels",
            {"since": "1x"},
            'could not parse \'since\' parameter: unknown unit "x" in duration "1x"',
        ),
        (
            "/loki/api/v1/series",
            {"match[]": "{app="},
            "parse error at line 1, col 6: syntax error: unexpected $end, expecting STRING",
        ),
        (
            "/loki/api/v1/series",
            {"match[]": '{app="web"} | json'},
            "only label matchers are supported",
        ),
        (
            "/loki/api/v1/index/stats",
            {"query": '{app="web"} |= "x"'},
            "only label matchers are supported",
        ),
        ("/loki/api/v1/index/stats", {}, "parse error : syntax error: unexpected $end"),
        (
            "/loki/api/v1/index/stats",
            {**SELECTOR, "start": "20", "end": "10"},
            "end timestamp must not be before or equal to start time",
        ),
    ],
)
def test_metadata_bad_requests(
    stack: lokistack_process.LokistackProcess, path: str, params: dict[str, str], message: str
) -> None:
    assert _request(stack, path, params) == _error(400, message)


ALL_SERIES = [
    {"app": "api", "env": "dev"},
    {"app": "api", "env": "prod"},
    {"app": "html", "tag": "a<b>&c"},
    {"app": "json"},
    {"app": "logfmt"},
    {"app": "many"},
    {"app": "tail", "test": "delay"},
    {"app": "tail", "test": "history"},
    {"app": "tail", "test": "slow"},
    {"app": "web"},
]


def _sorted(series: list[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(series, key=lambda labels: sorted(labels.items()))


def test_series(stack: lokistack_process.LokistackProcess) -> None:
    api = _request(stack, "/loki/api/v1/series", {"match[]": '{app="api"}'})
    assert _ok(api) == {
        "status": "success",
        "data": [{"app": "api", "env": "dev"}, {"app": "api", "env": "prod"}],
    }
    both = _request(
        stack, "/loki/api/v1/series", [("match[]", '{app="web"}'), ("match", '{app="json"}')]
    )
    assert _sorted(_ok(both)["data"]) == [{"app": "json"}, {"app": "web"}]
    posted = _request(stack, "/loki/api/v1/series", {"match": '{app="web"}'}, form=True)
    assert _ok(posted) == {"status": "success", "data": [{"app": "web"}]}
    for everything in ({"match[]": "{ }"}, {}):
        reply = _request(stack, "/loki/api/v1/series", everything)
        assert _sorted(_ok(reply)["data"]) == ALL_SERIES
    nothing = _request(stack, "/loki/api/v1/series", {"match[]": '{app="nothing"}'})
    assert nothing == Reply(200, JSON, '{"status":"success","data":[]}\n')


def test_index_stats(stack: lokistack_process.LokistackProcess, data: Data) -> None:
    reply = _request(stack, "/loki/api/v1/index/stats", {"query": '{app="api"}'})
    assert reply == Reply(200, JSON, '{"streams":2,"chunks":2,"bytes":140,"entries":13}\n')
    web = _request(stack, "/loki/api/v1/index/stats", {"query": '{app="web"}'}, form=True)
    assert _ok(web) == {"streams": 1, "chunks": 1, "bytes": len(HTML_LINE), "entries": 1}
    before = {"query": '{app="api"}', "start": str(data.base_s - 7200), "end": str(data.base_s)}
    assert _ok(_request(stack, "/loki/api/v1/index/stats", before)) == {
        "streams": 0,
        "chunks": 0,
        "bytes": 0,
        "entries": 0,
    }


# buildinfo, format_query, legacy routes, other paths ----------------------------------------


def test_buildinfo(stack: lokistack_process.LokistackProcess) -> None:
    reply = _request(stack, "/loki/api/v1/status/buildinfo", tenant=None)
    assert reply.status == 200
    assert reply.content_type == "application/json"
    assert reply.json() == {
        "version": lokistack.__version__,
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }


def test_format_query(stack: lokistack_process.LokistackProcess) -> None:
    path = "/loki/api/v1/format_query"
    reply = _request(stack, path, {"query": '{app="a",b=~"c"}|="x"|json|status>200'})
    assert reply == Reply(
        200,
        "application/json; charset=utf-8",
        '{"status":"success","data":"{app=\\"a\\", b=~\\"c\\"} |= \\"x\\" | json | '
        'status\\u003e200"}\n',
    )
    bad = _request(stack, path, {"query": '{app="a"'}, form=True)
    assert bad == Reply(
        400,
        "application/json; charset=utf-8",
        '{"status":"invalid-query","error":"parse error at line 1, col 9: syntax error: '
        'unexpected $end, expecting } or ,"}\n',
    )


def test_legacy_query_is_a_v0_range_query(
    stack: lokistack_process.LokistackProcess, data: Data
) -> None:
    reply = _request(stack, "/api/prom/query", {"query": '{app="web"}', "start": str(data.base)})
    body = _ok(reply)
    assert list(body) == ["streams", "stats"]
    second = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(data.base_s + 20))
    assert body["streams"] == [
        {"labels": '{app="web"}', "entries": [{"ts": f"{second}Z", "line": HTML_LINE}]}
    ]
    assert HTML_LINE_JSON in reply.body
    assert list(body["stats"]) == ["summary", "querier", "ingester", "cache", "index"]
    metric = {"query": 'count_over_time({app="web"}[1m])', "start": str(data.base_s)}
    assert _result(_request(stack, "/api/prom/query", metric), "matrix")


def test_legacy_labels_and_series(stack: lokistack_process.LokistackProcess) -> None:
    assert _ok(_request(stack, "/api/prom/label")) == {"values": LABEL_NAMES}
    assert _ok(_request(stack, "/api/prom/label/app/values")) == {"values": APPS}
    assert _request(stack, "/api/prom/label/nope/values") == Reply(200, JSON, "{}\n")
    series = _request(stack, "/api/prom/series", {"match[]": '{app="web"}'})
    assert _ok(series) == {"status": "success", "data": [{"app": "web"}]}


def test_v2alpha_tail_is_404_not_400(stack: lokistack_process.LokistackProcess) -> None:
    # Grafana takes a 400 here to mean that the v2alpha tail exists.
    assert _request(stack, "/loki/api/v2alpha/tail", SELECTOR).status == 404


def test_ready_and_request_metrics(stack: lokistack_process.LokistackProcess) -> None:
    with urllib.request.urlopen(stack.url + "/ready", timeout=5) as response:
        assert (response.status, response.read()) == (200, b"ready\n")
    assert _request(stack, QUERY_RANGE, SELECTOR).status == 200
    assert _request(stack, QUERY_RANGE, {"query": "{"}).status == 400
    metric = "loki_request_duration_seconds_count"
    assert stack.metric(metric, route="loki_api_v1_query_range", status_code="200") >= 1
    assert stack.metric(metric, route="loki_api_v1_query_range", status_code="400") >= 1


# hostile input ------------------------------------------------------------------------------

LONG_QUERY = '{app="' + "a" * 140_000 + '"}'
API = "query=%7Bapp%3D%22api%22%7D"
FORM = "application/x-www-form-urlencoded"


@dataclasses.dataclass(frozen=True)
class Hostile:
    name: str
    path: str
    query_string: str = ""
    body: bytes | None = None
    content_type: str = FORM
    tenant: str = TENANT


HOSTILE = [
    Hostile("huge limit", QUERY_RANGE, API + "&limit=99999999999999999999"),
    Hostile("limit over uint32", QUERY_RANGE, API + "&limit=4294967296"),
    Hostile("uint32 limit", QUERY_RANGE, API + "&limit=4294967295"),
    Hostile("invalid utf-8 query", QUERY_RANGE, "query=%ff%fe"),
    Hostile("invalid utf-8 labels query", "/loki/api/v1/labels", "query=%ff"),
    Hostile("invalid utf-8 match", "/loki/api/v1/series", "match[]=%ff"),
    Hostile("invalid utf-8 form", QUERY_RANGE, body=API.encode() + b"&limit=2\xff"),
    Hostile("invalid utf-8 escaped in form", QUERY, body=b"query=%ff%fe"),
    Hostile(
        "garbage multipart", QUERY_RANGE, body=b"x", content_type="multipart/form-data; boundary=x"
    ),
    Hostile(
        "json body",
        QUERY_RANGE,
        body=b'{"query": "{app=\\"api\\"}"}',
        content_type="application/json",
    ),
    Hostile("float overflow start", QUERY_RANGE, API + "&start=1e400"),
    Hostile("NaN start", QUERY_RANGE, API + "&start=NaN.0"),
    Hostile("huge step", QUERY_RANGE, API + "&step=1e30"),
    Hostile(
        "int64 extremes", QUERY_RANGE, API + "&start=-9223372036854775808&end=9223372036854775807"
    ),
    Hostile("year zero", QUERY_RANGE, API + "&start=0000-01-01T00:00:00Z"),
    Hostile(
        "query too long", QUERY_RANGE, body=urllib.parse.urlencode({"query": LONG_QUERY}).encode()
    ),
    Hostile("deep nesting", QUERY, "query=" + "%28" * 3000 + "1" + "%29" * 3000),
    Hostile("bad regex in line filter", QUERY_RANGE, "query=%7Bapp%3D%22a%22%7D%7C~%22(%22"),
    Hostile("nul query", QUERY_RANGE, "query=%00"),
    Hostile("bad tenant", "/loki/api/v1/labels", tenant="a/b"),
    Hostile("unknown path", "/loki/api/v1/nope"),
]


@pytest.mark.parametrize("case", HOSTILE, ids=[case.name for case in HOSTILE])
def test_hostile_requests_get_a_clean_4xx(
    stack: lokistack_process.LokistackProcess, case: Hostile
) -> None:
    reply = _request(
        stack,
        case.path,
        case.query_string,
        body=case.body,
        content_type=case.content_type,
        tenant=case.tenant,
    )
    assert 400 <= reply.status < 500, reply
    assert reply.content_type == TEXT, reply
    assert reply.body.strip()
    _healthy(stack)


def test_hostile_answers_in_detail(stack: lokistack_process.LokistackProcess) -> None:
    query = "query=%7Bapp%3D%22api%22%7D"
    assert _request(stack, QUERY_RANGE, query + "&limit=99999999999999999999") == _error(
        400, 'strconv.Atoi: parsing "99999999999999999999": value out of range'
    )
    assert _request(stack, QUERY_RANGE, query + "&limit=4294967295") == _error(
        400,
        "max entries limit per query exceeded, limit > max_entries_limit_per_query "
        "(4294967295 > 5000)",
    )
    long_form = urllib.parse.urlencode({"query": LONG_QUERY}).encode()
    assert _request(stack, QUERY_RANGE, body=long_form) == _error(
        400, "parse error : input size too long (140008 > 131072)"
    )
    assert _request(stack, "/loki/api/v1/labels", tenant="a/b") == _error(
        400, "tenant ID 'a/b' contains unsupported character '/'"
    )
    assert _request(stack, "/loki/api/v1/labels", method="PUT", body=b"").status == 405


def test_junk_parameters_are_ignored(stack: lokistack_process.LokistackProcess) -> None:
    junk = "query=%7Bapp%3D%22web%22%7D&foo=bar&%ff=%00&start=&end=&since=&step=&interval="
    assert _result(_request(stack, QUERY_RANGE, junk), "streams")[0]["stream"] == {"app": "web"}
    weird_value = _request(stack, QUERY_RANGE, {"query": '{app="\x00\ufffd\u2028"}'})
    assert _result(weird_value, "streams") == []


# tail ---------------------------------------------------------------------------------------


def _ws_url(stack: lokistack_process.LokistackProcess) -> str:
    return stack.url.replace("http://", "ws://") + TAIL


async def _receive(ws: aiohttp.ClientWebSocketResponse, within: float = 5.0) -> str:
    """The next text frame. (``receive(timeout=…)`` restarts its timeout at every ping.)"""
    async with asyncio.timeout(within):
        message = await ws.receive()
    assert message.type == aiohttp.WSMsgType.TEXT, message
    assert isinstance(message.data, str)
    return message.data


def _tail_message(labels: Mapping[str, str], entries: Sequence[tuple[int, str]]) -> str:
    stream = json.dumps(dict(labels), separators=(",", ":"))
    return (
        '{"streams":['
        + ",".join(
            f'{{"stream":{stream},"values":[["{ts}",{json.dumps(line)}]]}}' for ts, line in entries
        )
        + "]}"
    )


async def test_tail_sends_history_then_live_entries(
    stack: lokistack_process.LokistackProcess, data: Data
) -> None:
    labels = {"app": "tail", "test": "history"}
    params = {"query": '{app="tail", test="history"}', "limit": "2"}
    async with (
        aiohttp.ClientSession(headers={"X-Scope-OrgID": TENANT}) as session,
        session.ws_connect(_ws_url(stack), params=params) as ws,
    ):
        # The newest `limit` entries before the connection, oldest first.
        history = await _receive(ws)
        assert history == _tail_message(
            labels, [(data.at(41), "history 1"), (data.at(42), "history 2")]
        )
        now = time.time_ns()
        live_line = 'live <1> & "2"'
        await asyncio.to_thread(
            _push, stack, TENANT, {'{app="tail", test="history"}': [(now, live_line)]}
        )
        live = await _receive(ws)
        assert live == (
            '{"streams":[{"stream":{"app":"tail","test":"history"},"values":'
            f'[["{now}","live \\u003c1\\u003e \\u0026 \\"2\\""]]}}]}}'
        )
        assert json.loads(live) == {
            "streams": [{"stream": labels, "values": [[str(now), live_line]]}]
        }


async def test_tail_survives_a_client_that_does_not_read(
    stack: lokistack_process.LokistackProcess, data: Data
) -> None:
    params = {"query": '{app="tail", test="slow"}'}
    async with (
        aiohttp.ClientSession(headers={"X-Scope-OrgID": TENANT}) as session,
        session.ws_connect(_ws_url(stack), params=params) as ws,
    ):
        await asyncio.sleep(2.5)  # the server's pings go unanswered meanwhile
        now = time.time_ns()
        await asyncio.to_thread(
            _push, stack, TENANT, {'{app="tail", test="slow"}': [(now, "late")]}
        )
        labels = {"app": "tail", "test": "slow"}
        assert await _receive(ws) == _tail_message(labels, [(data.at(40), "slow history")])
        assert await _receive(ws) == _tail_message(labels, [(now, "late")])


async def test_tail_delay_for_holds_entries_back(
    stack: lokistack_process.LokistackProcess, data: Data
) -> None:
    params = {"query": '{app="tail", test="delay"}', "delay_for": "2"}
    labels = {"app": "tail", "test": "delay"}
    async with (
        aiohttp.ClientSession(headers={"X-Scope-OrgID": TENANT}) as session,
        session.ws_connect(_ws_url(stack), params=params) as ws,
    ):
        assert await _receive(ws) == _tail_message(labels, [(data.at(40), "delay history")])
        now = time.time_ns()
        await asyncio.to_thread(
            _push, stack, TENANT, {'{app="tail", test="delay"}': [(now, "delayed")]}
        )
        assert await _receive(ws) == _tail_message(labels, [(now, "delayed")])
        assert time.time_ns() >= now + 2 * SECOND


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"query": '{app="tail"}', "delay_for": "6"}, "delay_for can't be greater than 5"),
        (
            {"query": '{app="tail"'},
            "parse error at line 1, col 12: syntax error: unexpected $end, expecting } or ,",
        ),
        ({"query": '{app=~".*"}'}, AT_LEAST_ONE_MATCHER),
        ({"query": '{app="tail"}', "limit": "0"}, "limit must be a positive value"),
    ],
)
async def test_tail_bad_requests_are_refused_before_the_upgrade(
    stack: lokistack_process.LokistackProcess, params: dict[str, str], message: str
) -> None:
    reply = await asyncio.to_thread(_request, stack, TAIL, params)
    assert reply == _error(400, message)
    async with aiohttp.ClientSession(headers={"X-Scope-OrgID": TENANT}) as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(_ws_url(stack), params=params)
    assert refused.value.status == 400


async def test_max_concurrent_tail_requests(stack: lokistack_process.LokistackProcess) -> None:
    params = {"query": '{app="probe"}'}
    async with aiohttp.ClientSession(headers={"X-Scope-OrgID": TAIL_LIMITED}) as session:
        tails: list[aiohttp.ClientWebSocketResponse] = []
        try:
            for n in range(2):
                tails.append(await session.ws_connect(_ws_url(stack), params=params))
                # A live entry arriving shows that the ingester counts this tail.
                line = f"probe {n}"
                await asyncio.to_thread(
                    _push, stack, TAIL_LIMITED, {'{app="probe"}': [(time.time_ns(), line)]}
                )
                while line not in await _receive(tails[-1]):
                    pass
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(_ws_url(stack), params=params)
            assert refused.value.status == 400
            reply = await asyncio.to_thread(_request, stack, TAIL, params, tenant=TAIL_LIMITED)
            assert reply == _error(
                400, "max concurrent tail requests limit exceeded, count > limit (3 > 2)"
            )
            # Other tenants are not limited by it.
            async with session.ws_connect(
                _ws_url(stack), params=params, headers={"X-Scope-OrgID": TENANT}
            ):
                pass
        finally:
            for ws in tails:
                await ws.close()

        async def accepted() -> bool:
            try:
                ws = await session.ws_connect(_ws_url(stack), params=params)
            except aiohttp.WSServerHandshakeError:
                return False
            await ws.close()
            return True

        deadline = time.monotonic() + 10
        while not await accepted():
            assert time.monotonic() < deadline, "closed tails still counted"
            await asyncio.sleep(0.2)
    polling.wait_until(
        lambda: stack.metric("loki_querier_tail_active") == 0,
        timeout=10,
        describe="tails still active after their clients closed",
    )
