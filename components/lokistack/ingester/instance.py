"""One tenant's streams in an ingester, and the limits the ingester enforces on them.

The ingester enforces what only it can see: how many active streams a tenant has (the global
limit is divided by the healthy ingesters and multiplied by the replication factor, as Loki does)
and each stream's byte rate. Entries are kept in memory per stream; chunks, the WAL and
flushing replace that storage in the ingester storage engine.
"""

from __future__ import annotations

import array
import dataclasses
import datetime
from collections.abc import Callable

import prometheus_client

from lokistack import config, limits
from lokistack.model import fingerprint as model_fingerprint
from lokistack.proto import push_pb2

MAX_RETURNED_STREAM_ERRORS = 10

MEMORY_STREAMS = prometheus_client.Gauge(
    "loki_ingester_memory_streams", "The total number of streams in memory per tenant.", ["tenant"]
)
STREAMS_CREATED = prometheus_client.Counter(
    "loki_ingester_streams_created_total",
    "The total number of streams created per tenant.",
    ["tenant"],
)
ENTRIES_APPENDED = prometheus_client.Counter(
    "lokistack_ingester_entries_appended_total",
    "Entries appended to in-memory streams per tenant.",
    ["tenant"],
)


class PushError(Exception):
    """A push the ingester refused in whole or part; ``status`` is the HTTP code Loki answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def go_time_string(ns: int) -> str:
    """Go's ``time.Time.String()`` in UTC, as Loki's per-entry error lines print timestamps."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + " +0000 UTC"


@dataclasses.dataclass
class Stream:
    """One stream's entries in arrival order (timestamps packed, lines as received)."""

    labels: str
    fingerprint: int
    rate: limits.TokenBucket
    timestamps: array.array[int] = dataclasses.field(default_factory=lambda: array.array("q"))
    lines: list[str] = dataclasses.field(default_factory=list)


class TenantInstance:
    """A tenant's streams keyed by fingerprint, with the stream-count and per-stream limits."""

    def __init__(
        self,
        tenant: str,
        overrides: limits.Overrides,
        healthy_ingesters: Callable[[], int],
        replication_factor: int,
    ) -> None:
        self.tenant = tenant
        self.overrides = overrides
        self.healthy_ingesters = healthy_ingesters
        self.replication_factor = replication_factor
        self.streams: dict[int, Stream] = {}

    def stream_limit(self, tenant_limits: config.Limits) -> int:
        """The local active-stream limit; 0 means unlimited (Loki's limiter.go rules)."""
        local = tenant_limits.max_streams_per_user
        from_global = 0
        if tenant_limits.max_global_streams_per_user > 0:
            ingesters = self.healthy_ingesters()
            if ingesters > 0:
                from_global = int(
                    tenant_limits.max_global_streams_per_user / ingesters * self.replication_factor
                )
        candidates = [limit for limit in (local, from_global) if limit > 0]
        return min(candidates) if candidates else 0

    def push(self, request: push_pb2.PushRequest) -> None:
        """Append every acceptable entry; raise PushError describing the last failed stream."""
        tenant_limits = self.overrides.limits_for(self.tenant)
        last_error: PushError | None = None
        for stream_message in request.streams:
            try:
                self._push_stream(stream_message, tenant_limits)
            except PushError as error:
                last_error = error
        MEMORY_STREAMS.labels(self.tenant).set(len(self.streams))
        if last_error is not None:
            raise last_error

    def _push_stream(self, message: push_pb2.StreamAdapter, tenant_limits: config.Limits) -> None:
        labels = message.labels
        stream_fp = model_fingerprint.fingerprint(labels)
        stream = self.streams.get(stream_fp)
        if stream is None:
            limit = self.stream_limit(tenant_limits)
            if limit and len(self.streams) >= limit:
                raise PushError(
                    429,
                    f"maximum active stream limit exceeded when trying to create stream {labels}, "
                    "reduce the number of active streams (reduce labels or reduce label values), "
                    "or contact your Loki administrator to see if the limit can be increased, "
                    f"user: '{self.tenant}'",
                )
            stream = Stream(
                labels,
                stream_fp,
                limits.TokenBucket(
                    tenant_limits.per_stream_rate_limit, tenant_limits.per_stream_rate_limit_burst
                ),
            )
            self.streams[stream_fp] = stream
            STREAMS_CREATED.labels(self.tenant).inc()

        entries = message.entries
        size = sum(len(entry.line) for entry in entries)
        stream.rate.set_limits(
            tenant_limits.per_stream_rate_limit, tenant_limits.per_stream_rate_limit_burst
        )
        if not stream.rate.allow(size):
            # Stream sharding is on by default in Loki, which makes the check all-or-nothing.
            reason = (
                f"Per stream rate limit exceeded (limit: "
                f"{limits.humanize_bytes(tenant_limits.per_stream_rate_limit)}/sec) while "
                f"attempting to ingest for stream '{labels}' totaling "
                f"{limits.humanize_bytes(size)}, consider splitting a stream via additional "
                "labels or contact your Loki administrator to see if the limit can be increased"
            )
            raise PushError(429, self._failed_entries_body(message, reason))
        timestamps = stream.timestamps
        for entry in entries:
            timestamps.append(entry.timestamp.seconds * 1_000_000_000 + entry.timestamp.nanos)
        stream.lines.extend(entry.line for entry in entries)
        ENTRIES_APPENDED.labels(self.tenant).inc(len(entries))

    def _failed_entries_body(self, message: push_pb2.StreamAdapter, reason: str) -> str:
        lines = []
        for entry in message.entries[:MAX_RETURNED_STREAM_ERRORS]:
            ns = entry.timestamp.seconds * 1_000_000_000 + entry.timestamp.nanos
            lines.append(f"entry with timestamp {go_time_string(ns)} ignored, reason: '{reason}',")
        total = len(message.entries)
        lines.append(
            f"user '{self.tenant}', total ignored: {total} out of {total} "
            f"for stream: {message.labels}"
        )
        return "\n".join(lines)

    def entry_count(self) -> int:
        return sum(len(stream.timestamps) for stream in self.streams.values())
