"""The querier's side of the ingesters' Querier service: fan-out, quorum, replica merging.

Recent data lives in the ingesters, each stream on up to replication-factor of them, so every
read goes to the ring's read set: all healthy ingesters in ACTIVE or LEAVING state (Loki's read
path). Like dskit's ``GetReplicationSetForOperation`` + ``DoUntilQuorum``, a call needs
``max(#members, RF) - RF // 2`` answers: it fails at once when fewer members are healthy
("too many unhealthy instances in the ring"), returns as soon as that many ingesters answered
(cancelling the slower ones), and fails when more than the rest failed. With RF=3 and three
ingesters, one may be down. A stream's entries reach at least a quorum of its replicas, so any
quorum of answers sees each of them.

Replicas answer with the same data, so results are merged without double counting:

- entries with :func:`lokistack.iter.entries.merge`, which drops an entry equal to one already
  taken (same labels, timestamp, line); each ingester's stream is ordered by ``(ts, labels)``;
- samples per label set by multiplicity: a ``(ts, value)`` appears as many times as in the
  ingester that holds it most often. Two genuinely different lines of one stream at the same
  time give two samples on every replica, so they stay two; a replica's copy adds nothing.
  (Different streams that a pipeline turns into the same label set, with equal samples, on
  disjoint ingesters would be undercounted; the protocol carries no stream identity.)
- labels and series as sorted unions; stats as the sum over ingesters divided by the number of
  copies (the replication factor, at most the number of ingesters), scaled up for ingesters
  that did not answer; the tailer count as the maximum.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import itertools
import logging
import math
import time
import typing
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import TypeVar

import grpc

from lokistack.iter import entries
from lokistack.loghttp import encoding
from lokistack.model import labels as model_labels
from lokistack.model import tenant as model_tenant
from lokistack.proto import querier_pb2, querier_pb2_grpc
from lokistack.ring import client, model
from lokistack.ring import ring as ring_mod

log = logging.getLogger(__name__)

READ_STATES = frozenset({model.InstanceState.ACTIVE, model.InstanceState.LEAVING})
TAIL_RECONNECT_PERIOD = 5.0  # seconds between attempts to reach ingesters a tail lost or lacks
TAIL_DEDUPE_WINDOW = 50_000  # recent (labels, ts, line) keys a tail remembers to drop replicas

Labels = model_labels.Labels
SampleSeries = tuple[Labels, list[int], list[float]]
_T = TypeVar("_T")
_NAN = float("nan")  # one object, so NaN sample values are equal as dictionary keys


def _nan_key(value: float) -> float:
    return _NAN if math.isnan(value) else value


class IngesterQueryError(Exception):
    """The ingesters could not answer: too many failed (``status`` 500), or they refused the
    query (400, with the ingester's message, e.g. a LogQL parse error)."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclasses.dataclass(frozen=True)
class IndexStats:
    """Streams, chunks, uncompressed bytes and entries in the ingesters matching a selector."""

    streams: int = 0
    chunks: int = 0
    bytes: int = 0
    entries: int = 0


def _labels(pairs: Sequence[object]) -> Labels:
    return tuple((pair.name, pair.value) for pair in pairs)  # type: ignore[attr-defined]


def _response_entries(batches: Sequence[querier_pb2.EntryBatch]) -> list[entries.Entry]:
    """A response's entries in the ingester's order: its batches in sequence."""
    found: list[entries.Entry] = []
    for batch in batches:
        labels = _labels(batch.labels)
        found.extend(map(entries.Entry, itertools.repeat(labels), batch.timestamps, batch.lines))
    return found


def merge_replica_samples(
    answers: Sequence[dict[Labels, tuple[list[int], list[float]]]],
) -> list[SampleSeries]:
    """Series of several ingesters merged per label set, replica copies counted once (module
    doc); sorted by labels, each series by timestamp."""
    copies: dict[Labels, list[tuple[list[int], list[float]]]] = {}
    for answer in answers:
        for labels, series in answer.items():
            copies.setdefault(labels, []).append(series)
    merged: list[SampleSeries] = []
    for labels in sorted(copies):
        found = copies[labels]
        first = found[0]
        if all(other == first for other in found[1:]):
            merged.append((labels, first[0], first[1]))
            continue
        counts: dict[tuple[int, float], int] = {}
        for ts_list, values in found:
            keys = zip(ts_list, map(_nan_key, values), strict=True)
            for key, count in collections.Counter(keys).items():
                if count > counts.get(key, 0):
                    counts[key] = count
        ordered = sorted(counts, key=lambda key: key[0])
        merged.append(
            (
                labels,
                [key[0] for key in ordered for _ in range(counts[key])],
                [key[1] for key in ordered for _ in range(counts[key])],
            )
        )
    return merged


def _series_of(
    batches: list[querier_pb2.SampleBatch],
) -> dict[Labels, tuple[list[int], list[float]]]:
    """One ingester's samples per label set, in time order (a label set may come in several
    batches, one per stream that produced it)."""
    series: dict[Labels, tuple[list[int], list[float]]] = {}
    unsorted: set[Labels] = set()
    for batch in batches:
        labels = _labels(batch.labels)
        found = series.get(labels)
        if found is None:
            series[labels] = (list(batch.timestamps), list(batch.values))
            continue
        found[0].extend(batch.timestamps)
        found[1].extend(batch.values)
        unsorted.add(labels)
    for labels in unsorted:
        ts_list, values = series[labels]
        order = sorted(range(len(ts_list)), key=ts_list.__getitem__)
        series[labels] = ([ts_list[i] for i in order], [values[i] for i in order])
    return series


class _RecentKeys:
    """A bounded set of the most recently added keys."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._order: collections.deque[object] = collections.deque()
        self._keys: set[object] = set()

    def add(self, key: object) -> bool:
        """Remember ``key``; False if it was already remembered."""
        if key in self._keys:
            return False
        self._keys.add(key)
        self._order.append(key)
        if len(self._order) > self._capacity:
            self._keys.discard(self._order.popleft())
        return True


class _RefusedError(Exception):
    """An ingester refused the request itself (INVALID_ARGUMENT): no other answer can help."""


def _failure(addr: str, error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        code = error.code()
        return (
            f"{addr}: rpc error: code = {code.name.title().replace('_', '')} "
            f"desc = {error.details()}"
        )
    return f"{addr}: {error}"


class IngesterQuerier:
    """Queries the ingesters of ``ring`` over gRPC; one channel per address, reused."""

    def __init__(
        self,
        ring: ring_mod.Ring,
        timeout: datetime.timedelta,
        *,
        tail_reconnect_period: float = TAIL_RECONNECT_PERIOD,
        tail_dedupe_window: int = TAIL_DEDUPE_WINDOW,
    ) -> None:
        self.ring = ring
        self.timeout = timeout.total_seconds()
        self.tail_reconnect_period = tail_reconnect_period
        self.tail_dedupe_window = tail_dedupe_window
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, querier_pb2_grpc.QuerierAsyncStub] = {}

    def _stub(self, addr: str) -> querier_pb2_grpc.QuerierAsyncStub:
        stub = self._stubs.get(addr)
        if stub is None:
            channel = client.ingester_channel(addr)
            self._channels[addr] = channel
            created = typing.cast(
                "querier_pb2_grpc.QuerierAsyncStub", querier_pb2_grpc.QuerierStub(channel)
            )
            self._stubs[addr] = stub = created
        return stub

    def read_set(self, now: float | None = None) -> tuple[list[model.InstanceDesc], int]:
        """The healthy ACTIVE or LEAVING ingesters, and how many of them may fail (module doc)."""
        moment = time.time() if now is None else now
        members = self.ring.instances()
        if not members:
            raise IngesterQueryError("empty ring")
        timeout = self.ring.heartbeat_timeout.total_seconds()
        healthy = [
            m for m in members if m.state in READ_STATES and m.heartbeat_healthy(timeout, moment)
        ]
        factor = self.ring.replication_factor
        required = max(len(members), factor) - factor // 2
        if len(healthy) < required:
            raise IngesterQueryError("too many unhealthy instances in the ring")
        return healthy, len(healthy) - required

    async def _until_quorum(self, call: Callable[[str], Awaitable[_T]]) -> list[_T]:
        """``call(addr)`` on the read set, concurrently; the answers once enough arrived."""
        instances, max_errors = self.read_set()
        tasks = {asyncio.ensure_future(call(i.addr)): i.addr for i in instances}
        needed = len(tasks) - max_errors
        answers: list[_T] = []
        failures: list[str] = []
        pending = set(tasks)
        try:
            while pending and len(answers) < needed:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    error = task.exception()
                    if error is None:
                        answers.append(task.result())
                    elif isinstance(error, _RefusedError):
                        raise IngesterQueryError(str(error), 400)
                    else:
                        failures.append(_failure(tasks[task], error))
                if len(failures) > max_errors:
                    raise IngesterQueryError(
                        f"{len(failures)} of {len(tasks)} ingesters failed (at most "
                        f"{max_errors} may): {'; '.join(sorted(failures))}"
                    )
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        return answers

    def _metadata(self, tenant: str) -> tuple[tuple[str, str], ...]:
        return ((model_tenant.GRPC_METADATA_KEY, tenant),)

    @staticmethod
    def _raise_refusal(error: grpc.aio.AioRpcError) -> None:
        """An ingester's INVALID_ARGUMENT becomes :class:`_RefusedError`."""
        if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
            raise _RefusedError(error.details() or "") from error

    # Queries ------------------------------------------------------------------------------

    async def select_logs(  # noqa: PLR0917 (the querier's IngesterSource protocol)
        self,
        tenant: str,
        selector: str,
        from_ns: int,
        through_ns: int,
        direction: entries.Direction,
        limit: int,
    ) -> tuple[list[entries.Entry], encoding.Stats]:
        """The first ``limit`` (0: all) entries of a log query in ``[from_ns, through_ns)``,
        and the ingester side of the query's statistics (Loki's ``stats.ingester``)."""
        backward = direction == "backward"
        request = querier_pb2.QueryRequest(
            selector=selector,
            limit=limit,
            start=from_ns,
            end=through_ns,
            direction=querier_pb2.BACKWARD if backward else querier_pb2.FORWARD,
        )
        stats = encoding.Stats()
        side = stats.ingester_store

        async def one(addr: str) -> list[entries.Entry]:
            call = self._stub(addr).Query(
                request, metadata=self._metadata(tenant), timeout=self.timeout
            )
            found: list[entries.Entry] = []
            try:
                async for response in call:
                    found.extend(_response_entries(response.batches))
                    stats.ingester_total_batches += len(response.batches)
                    stats.ingester_total_chunks_matched += response.stats.chunks_matched
                    side.decompressed_lines += response.stats.lines_processed
                    side.decompressed_bytes += response.stats.bytes_processed
                    side.post_filter_lines += response.stats.post_filter_lines
            except grpc.aio.AioRpcError as error:
                self._raise_refusal(error)
                raise
            finally:
                call.cancel()
            return found

        answers = await self._until_quorum(one)
        stats.ingester_total_reached = len(answers)
        stats.ingester_total_lines_sent = sum(map(len, answers))
        merged = entries.take(entries.merge((iter(found) for found in answers), direction), limit)
        if not limit or len(merged) < limit:  # everything was merged: the rest were copies
            side.total_duplicates += stats.ingester_total_lines_sent - len(merged)
        return merged, stats

    async def select_samples(
        self, tenant: str, selector: str, from_ns: int, through_ns: int
    ) -> list[SampleSeries]:
        """The per-line samples of a range aggregation's log query in ``[from_ns, through_ns)``,
        one series per label set (sorted), each in time order."""
        request = querier_pb2.SampleQueryRequest(selector=selector, start=from_ns, end=through_ns)

        async def one(addr: str) -> dict[Labels, tuple[list[int], list[float]]]:
            call = self._stub(addr).QuerySample(
                request, metadata=self._metadata(tenant), timeout=self.timeout
            )
            batches: list[querier_pb2.SampleBatch] = []
            try:
                async for response in call:
                    batches.extend(response.batches)
            except grpc.aio.AioRpcError as error:
                self._raise_refusal(error)
                raise
            finally:
                call.cancel()
            return _series_of(batches)

        return merge_replica_samples(await self._until_quorum(one))

    async def _unary(self, method: str, tenant: str, request: object) -> list[object]:
        async def one(addr: str) -> object:
            try:
                return await getattr(self._stub(addr), method)(
                    request, metadata=self._metadata(tenant), timeout=self.timeout
                )
            except grpc.aio.AioRpcError as error:
                self._raise_refusal(error)
                raise

        return await self._until_quorum(one)

    async def label(
        self, tenant: str, name: str | None, from_ns: int, through_ns: int, query: str = ""
    ) -> list[str]:
        """Label names (``name`` None) or one label's values of the ingesters' streams that
        have data in ``[from_ns, through_ns)``, optionally only streams matching ``query``."""
        request = querier_pb2.LabelRequest(
            name=name or "", start=from_ns, end=through_ns, query=query
        )
        answers = await self._unary("Label", tenant, request)
        found: set[str] = set()
        for answer in answers:
            assert isinstance(answer, querier_pb2.LabelResponse)
            found.update(answer.values)
        return sorted(found)

    async def series(
        self, tenant: str, selectors: Sequence[str], from_ns: int, through_ns: int
    ) -> list[Labels]:
        """Label sets of streams matching any selector (every stream when none) with data in
        ``[from_ns, through_ns)``, sorted."""
        request = querier_pb2.SeriesRequest(start=from_ns, end=through_ns, selectors=selectors)
        found: set[Labels] = set()
        for answer in await self._unary("Series", tenant, request):
            assert isinstance(answer, querier_pb2.SeriesResponse)
            found.update(_labels(series.labels) for series in answer.series)
        return sorted(found)

    async def stats(self, tenant: str, selector: str, from_ns: int, through_ns: int) -> IndexStats:
        """Streams, chunks, bytes and entries in the ingesters for a selector, one copy's
        worth (module doc)."""
        request = querier_pb2.IndexStatsRequest(selector=selector, start=from_ns, end=through_ns)
        asked = len(self.read_set()[0])
        answers = await self._unary("GetStats", tenant, request)
        copies = max(1, min(self.ring.replication_factor, asked))
        scale = asked / (len(answers) * copies) if answers else 0.0
        totals = [0, 0, 0, 0]
        for answer in answers:
            assert isinstance(answer, querier_pb2.IndexStatsResponse)
            for index, value in enumerate(
                (answer.streams, answer.chunks, answer.bytes, answer.entries)
            ):
                totals[index] += value
        streams, chunks, size, count = (round(total * scale) for total in totals)
        return IndexStats(streams, chunks, size, count)

    async def tailers_count(self, tenant: str) -> int:
        """The most tails any ingester serves for the tenant (for the concurrent tail limit)."""
        answers = await self._unary("TailersCount", tenant, querier_pb2.TailersCountRequest())
        counts = [a.count for a in answers if isinstance(a, querier_pb2.TailersCountResponse)]
        return max(counts, default=0)

    # Tails --------------------------------------------------------------------------------

    async def tail(self, tenant: str, query: str) -> AsyncGenerator[list[entries.Entry], None]:
        """Entries pushed from now on that match ``query``, from every ingester, each
        entry once (replica copies are recognised among the last ``tail_dedupe_window``).

        Yields one list per ingester message (in time order within it) until the caller
        closes the generator (use ``contextlib.aclosing``), or until no healthy ingester is
        left to tail. Ingesters that fail or join are (re)connected every
        ``tail_reconnect_period`` seconds. Raises
        :class:`IngesterQueryError` when too few ingesters are healthy at the start, or (400)
        when they refuse the query.
        """
        request = querier_pb2.TailRequest(query=query)
        queue: asyncio.Queue[list[entries.Entry] | IngesterQueryError] = asyncio.Queue(100)
        streams: dict[str, asyncio.Task[None]] = {}
        recent = _RecentKeys(self.tail_dedupe_window)
        loop = asyncio.get_running_loop()

        def connect(instances: Sequence[model.InstanceDesc]) -> None:
            for instance in instances:
                task = streams.get(instance.addr)
                if task is None or task.done():
                    streams[instance.addr] = asyncio.create_task(
                        self._tail_one(instance.addr, tenant, request, queue)
                    )
            for addr in [addr for addr, task in streams.items() if task.done()]:
                del streams[addr]

        connect(self.read_set()[0])
        connected_at = loop.time()
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), self.tail_reconnect_period)
                except TimeoutError:
                    item = []
                if isinstance(item, IngesterQueryError):
                    raise item
                fresh = [e for e in item if recent.add((e.labels, e.ts, e.line))]
                if fresh:
                    fresh.sort(key=lambda entry: entry.ts)
                    yield fresh
                if loop.time() - connected_at >= self.tail_reconnect_period:
                    connected_at = loop.time()
                    now = time.time()
                    timeout = self.ring.heartbeat_timeout.total_seconds()
                    connect(
                        [
                            m
                            for m in self.ring.instances()
                            if m.state in READ_STATES and m.heartbeat_healthy(timeout, now)
                        ]
                    )
                    if not streams and queue.empty():
                        return  # no ingester to tail any more ("all ingesters closed")
        finally:
            for task in streams.values():
                task.cancel()
            await asyncio.gather(*streams.values(), return_exceptions=True)

    async def _tail_one(
        self,
        addr: str,
        tenant: str,
        request: querier_pb2.TailRequest,
        queue: asyncio.Queue[list[entries.Entry] | IngesterQueryError],
    ) -> None:
        call = self._stub(addr).Tail(request, metadata=self._metadata(tenant))
        try:
            async for response in call:
                await queue.put(_response_entries(response.batches))
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                await queue.put(IngesterQueryError(error.details() or "", 400))
            elif error.code() != grpc.StatusCode.CANCELLED:
                log.warning("tail stream from ingester ended", extra={"err": _failure(addr, error)})
        finally:
            call.cancel()

    async def close(self) -> None:
        channels = list(self._channels.values())
        self._channels.clear()
        self._stubs.clear()
        await asyncio.gather(*(channel.close() for channel in channels), return_exceptions=True)
