"""One tenant's streams in an ingester, and the limits the ingester enforces on them.

The ingester enforces what only it can see: how many active streams a tenant has (the global
limit is divided by the healthy ingesters and multiplied by the replication factor, as Loki does)
and each stream's byte rate. A push appends to the streams' chunks and returns the WAL records
that describe exactly what was stored; the caller acknowledges the push only after logging them.
Streams are indexed by fingerprint and by label pair, for queries.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator, Sequence

import prometheus_client

from lokistack import config, limits
from lokistack.ingester import checkpoint
from lokistack.ingester import stream as stream_mod
from lokistack.model import fingerprint as model_fingerprint
from lokistack.model import labels as model_labels
from lokistack.proto import push_pb2
from lokistack.wal import record as wal_record

MAX_RETURNED_STREAM_ERRORS = 10

MEMORY_STREAMS = prometheus_client.Gauge(
    "loki_ingester_memory_streams", "The total number of streams in memory per tenant.", ["tenant"]
)
STREAMS_CREATED = prometheus_client.Counter(
    "loki_ingester_streams_created_total",
    "The total number of streams created per tenant.",
    ["tenant"],
)
STREAMS_REMOVED = prometheus_client.Counter(
    "loki_ingester_streams_removed_total",
    "The total number of streams removed per tenant.",
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


def _unpack_entries(
    entries: Sequence[push_pb2.EntryAdapter],
) -> tuple[list[int], list[str], list[stream_mod.Metadata] | None]:
    """Timestamps, lines and (only if any entry has some) structured metadata, in one pass.

    Every pass over a protobuf repeated field creates a Python object per entry, so the three
    are read together; metadata tuples are built only from the first entry that carries any.
    """
    timestamps: list[int] = []
    lines: list[str] = []
    metadata: list[stream_mod.Metadata] | None = None
    add_ts, add_line = timestamps.append, lines.append
    for index, entry in enumerate(entries):
        timestamp = entry.timestamp
        add_ts(timestamp.seconds * 1_000_000_000 + timestamp.nanos)
        add_line(entry.line)
        pairs = entry.structuredMetadata
        if pairs:
            if metadata is None:
                metadata = [()] * index
            metadata.append(tuple((p.name, p.value) for p in pairs))
        elif metadata is not None:
            metadata.append(())
    return timestamps, lines, metadata


class TenantInstance:
    """A tenant's streams keyed by fingerprint, with the stream-count and per-stream limits."""

    def __init__(
        self,
        tenant: str,
        overrides: limits.Overrides,
        healthy_ingesters: Callable[[], int],
        replication_factor: int,
        shape: stream_mod.ChunkShape,
    ) -> None:
        self.tenant = tenant
        self.overrides = overrides
        self.healthy_ingesters = healthy_ingesters
        self.replication_factor = replication_factor
        self.shape = shape
        self.streams: dict[int, stream_mod.Stream] = {}
        self.postings: dict[str, dict[str, set[int]]] = {}
        """Inverted index: label name -> value -> fingerprints, for queries and tails."""

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

    # Streams ---------------------------------------------------------------------------------

    def create_stream(self, labels: str, stream_fp: int | None = None) -> stream_mod.Stream:
        tenant_limits = self.overrides.limits_for(self.tenant)
        stream_fp = model_fingerprint.fingerprint(labels) if stream_fp is None else stream_fp
        created = stream_mod.Stream(
            labels,
            stream_fp,
            self.shape,
            limits.TokenBucket(
                tenant_limits.per_stream_rate_limit, tenant_limits.per_stream_rate_limit_burst
            ),
        )
        self.streams[stream_fp] = created
        for name, value in model_labels.parse_labels(labels):
            self.postings.setdefault(name, {}).setdefault(value, set()).add(stream_fp)
        STREAMS_CREATED.labels(self.tenant).inc()
        MEMORY_STREAMS.labels(self.tenant).set(len(self.streams))
        return created

    def remove_stream(self, stream_fp: int) -> None:
        removed = self.streams.pop(stream_fp, None)
        if removed is None:
            return
        for name, value in model_labels.parse_labels(removed.labels):
            values = self.postings.get(name, {})
            fingerprints = values.get(value)
            if fingerprints is not None:
                fingerprints.discard(stream_fp)
                if not fingerprints:
                    del values[value]
            if not values:
                self.postings.pop(name, None)
        STREAMS_REMOVED.labels(self.tenant).inc()
        MEMORY_STREAMS.labels(self.tenant).set(len(self.streams))

    def fingerprints_with(self, name: str, value: str) -> set[int]:
        return set(self.postings.get(name, {}).get(value, ()))

    # Push ------------------------------------------------------------------------------------

    def push(
        self, request: push_pb2.PushRequest
    ) -> tuple[list[wal_record.Record], PushError | None]:
        """Append every acceptable entry; return the WAL records of what was stored, and the
        error describing the last stream that had refusals (Loki returns only the last one)."""
        tenant_limits = self.overrides.limits_for(self.tenant)
        records: list[wal_record.Record] = []
        last_error: PushError | None = None
        for message in request.streams:
            try:
                self._push_stream(message, tenant_limits, records)
            except PushError as error:
                last_error = error
        return records, last_error

    def _push_stream(
        self,
        message: push_pb2.StreamAdapter,
        tenant_limits: config.Limits,
        records: list[wal_record.Record],
    ) -> None:
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
            stream = self.create_stream(labels, stream_fp)
            records.append(wal_record.SeriesRecord(self.tenant, stream_fp, labels))

        entries = message.entries
        timestamps, lines, metadata = _unpack_entries(entries)
        size = sum(map(len, lines))
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
            refused = [stream_mod.EntryRefusal(ts, reason) for ts in timestamps]
            raise PushError(429, self._failed_entries_body(labels, refused, len(timestamps)))

        stored, refusals = stream.append(timestamps, lines, metadata)
        if stored:
            if len(stored) != len(timestamps):
                timestamps = [timestamps[i] for i in stored]
                lines = [lines[i] for i in stored]
                metadata = [metadata[i] for i in stored] if metadata is not None else None
            records.append(
                wal_record.EntriesRecord.from_entries(
                    self.tenant,
                    stream_fp,
                    timestamps,
                    lines,
                    metadata=metadata,
                    counter=stream.entry_count,
                )
            )
            ENTRIES_APPENDED.labels(self.tenant).inc(len(stored))
        if refusals:
            raise PushError(400, self._failed_entries_body(labels, refusals, len(entries)))

    def _failed_entries_body(
        self, labels: str, refusals: Sequence[stream_mod.EntryRefusal], total: int
    ) -> str:
        lines = [
            f"entry with timestamp {go_time_string(r.ts)} ignored, reason: '{r.reason}',"
            for r in refusals[:MAX_RETURNED_STREAM_ERRORS]
        ]
        lines.append(
            f"user '{self.tenant}', total ignored: {len(refusals)} out of {total} "
            f"for stream: {labels}"
        )
        return "\n".join(lines)

    # Replay ----------------------------------------------------------------------------------

    def replay_series(self, record: wal_record.SeriesRecord) -> None:
        if record.fingerprint not in self.streams:
            self.create_stream(record.labels, record.fingerprint)

    def replay_entries(self, record: wal_record.EntriesRecord) -> None:
        stream = self.streams.get(record.fingerprint)
        if stream is None:
            return  # its series record was lost with a corrupted segment; nothing to key it by
        stored, _ = stream.append(
            record.timestamps, record.lines, record.metadata, check_window=False
        )
        stream.entry_count = max(stream.entry_count, record.counter)
        ENTRIES_APPENDED.labels(self.tenant).inc(len(stored))

    def replay_checkpoint(self, record: wal_record.CheckpointStreamRecord) -> None:
        stream = self.streams.get(record.fingerprint) or self.create_stream(
            record.labels, record.fingerprint
        )
        stream.chunks.clear()
        checkpoint.restore(stream, record.payload)
        stream.entry_count = max(stream.entry_count, record.entry_count)

    def checkpoint_records(self) -> Iterator[wal_record.CheckpointStreamRecord]:
        for stream in list(self.streams.values()):
            yield wal_record.CheckpointStreamRecord(
                self.tenant,
                stream.fingerprint,
                stream.labels,
                checkpoint.encode(stream),
                entry_count=stream.entry_count,
            )

    def entry_count(self) -> int:
        return sum(
            desc.chunk.num_entries for stream in self.streams.values() for desc in stream.chunks
        )
