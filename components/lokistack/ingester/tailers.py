"""The ingester's live tails: who is tailing which tenant, and handing them what was just pushed.

Tails are pushed, not polled: :meth:`Registry.on_records` runs after a push is in the WAL and
hands each matching tailer the processed entries through a bounded queue, dropping (and
counting) what a slow tail cannot take so that a push never waits for a reader. Each tailer
remembers, per stream, whether its matchers select the stream and the stream's pipeline, so a
push costs one lookup per tailer for streams it has seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence

import prometheus_client

from lokistack.ingester import instance as tenant_instance
from lokistack.ingester import query_scan
from lokistack.ingester import stream as stream_mod
from lokistack.iter import entries
from lokistack.logql.log import pipeline as log_pipeline
from lokistack.logql.syntax import ast
from lokistack.proto import querier_pb2
from lokistack.wal import record as wal_record

log = logging.getLogger(__name__)

QUEUE_SIZE = 100  # responses (one per push) a tail may have waiting before entries drop

TAIL_DROPPED = prometheus_client.Counter(
    "lokistack_ingester_tail_dropped_entries_total",
    "Entries not sent to a tail because its queue was full.",
    ["tenant"],
)

_STREAM_CACHE = 10_000  # per tailer: stream fingerprint -> its pipeline (or no match)
_NO_MATCH = object()


@dataclasses.dataclass
class Tailer:
    """A live tail: its query, its queue of responses, and what it had to drop."""

    tenant: str
    matchers: tuple[ast.Matcher, ...]
    pipeline: log_pipeline.Pipeline
    queue: asyncio.Queue[querier_pb2.TailResponse]
    streams: dict[int, log_pipeline.StreamPipeline | None] = dataclasses.field(default_factory=dict)
    dropped: int = 0


class Registry:
    """The tailers of each tenant of ``instances`` (tenant -> instance, read live), each with a
    queue of ``queue_size`` responses; ``labels`` parses stream labels (the queries' cache)."""

    def __init__(
        self,
        instances: Mapping[str, tenant_instance.TenantInstance],
        labels: query_scan.LabelCache,
        *,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self._instances = instances
        self._labels = labels
        self._queue_size = queue_size
        self._tailers: dict[str, dict[int, Tailer]] = {}

    @property
    def by_tenant(self) -> Mapping[str, Mapping[int, Tailer]]:
        """The registered tailers of each tenant that has any, by id (live, not a copy)."""
        return self._tailers

    def count(self, tenant: str) -> int:
        """How many tails the tenant has."""
        return len(self._tailers.get(tenant, ()))

    @contextlib.contextmanager
    def tailing(
        self,
        tenant: str,
        matchers: tuple[ast.Matcher, ...],
        pipeline: log_pipeline.Pipeline,
    ) -> Iterator[Tailer]:
        """A new tailer of the tenant, registered (fed by pushes) until the block ends."""
        tailer = Tailer(tenant, matchers, pipeline, asyncio.Queue(self._queue_size))
        registered = self._tailers.setdefault(tenant, {})
        registered[id(tailer)] = tailer
        try:
            yield tailer
        finally:
            registered.pop(id(tailer), None)
            if not registered and self._tailers.get(tenant) is registered:
                del self._tailers[tenant]
            if tailer.dropped:
                log.info(
                    "tail ended after dropping entries",
                    extra={"tenant": tenant, "dropped": tailer.dropped},
                )

    def on_records(self, tenant: str, records: Iterable[wal_record.Record]) -> None:
        """Hand the entries of a push (the WAL records of what was stored) to the tenant's
        tails. Cheap when the tenant has none, so the ingester calls it on every push."""
        if not self._tailers.get(tenant):
            return
        instance = self._instances.get(tenant)
        if instance is None:
            return
        for record in records:
            if isinstance(record, wal_record.EntriesRecord):
                stream = instance.streams.get(record.fingerprint)
                if stream is not None:
                    self.on_push(
                        tenant, stream, record.timestamps, record.lines, record.raw_metadata
                    )

    def on_push(
        self,
        tenant: str,
        stream: stream_mod.Stream,
        timestamps: Sequence[int],
        lines: Sequence[str],
        metadata: Sequence[stream_mod.Metadata] | None,
    ) -> None:
        """Run each of the tenant's tails over entries just stored in ``stream``; a tail whose
        queue is full loses them (counted), the push never waits."""
        tailers = self._tailers.get(tenant)
        if not tailers:
            return
        labels: query_scan.Labels | None = None
        for tailer in list(tailers.values()):
            cached = tailer.streams.get(stream.fingerprint, _NO_MATCH)
            if cached is _NO_MATCH:
                labels = labels if labels is not None else self._labels.get(stream)
                cached = (
                    tailer.pipeline.for_stream(labels)
                    if query_scan.matches(tailer.matchers, labels)
                    else None
                )
                if len(tailer.streams) >= _STREAM_CACHE:
                    tailer.streams.clear()
                tailer.streams[stream.fingerprint] = cached
            if not isinstance(cached, log_pipeline.StreamPipeline):
                continue
            rows = _tail_rows(cached, timestamps, lines, metadata)
            if not rows:
                continue
            try:
                tailer.queue.put_nowait(
                    querier_pb2.TailResponse(batches=query_scan.entry_batches(rows))
                )
            except asyncio.QueueFull:
                tailer.dropped += len(rows)
                TAIL_DROPPED.labels(tenant).inc(len(rows))


def _tail_rows(
    stream: log_pipeline.StreamPipeline,
    timestamps: Sequence[int],
    lines: Sequence[str],
    metadata: Sequence[stream_mod.Metadata] | None,
) -> list[entries.Entry]:
    rows: list[entries.Entry] = []
    process = stream.process
    pairs = metadata if metadata is not None else [()] * len(timestamps)
    for ts, line, meta in zip(timestamps, lines, pairs, strict=True):
        result = process(ts, line, meta)
        if result is not None:
            rows.append(entries.Entry(result[1], ts, result[0]))
    return rows
