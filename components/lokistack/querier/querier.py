"""Queries over ingesters (recent data) and the object store (everything flushed), merged.

Loki's rules (reference §3.2): ingesters are asked only when the query reaches into the last
``query_ingesters_within`` (3h; 0 means always); the store is asked for the whole range, because
what ingesters hold may already be flushed and what is flushed may no longer be in memory. The
two overlap, and with replication every ingester entry arrives up to RF times, so results are
merged with :func:`lokistack.iter.entries.merge`, which drops exact duplicates.

Metric queries need per-line samples (:class:`SampleSource`). Samples carry no line, so the
overlap between ingesters and store is resolved by multiplicity: for one series, timestamp and
value, the count kept is the larger of the two sides' counts (each side has already removed its
own replica copies). Only samples inside the ingesters' window need this; older store samples
stream straight through.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from lokistack import config, limits
from lokistack.iter import entries
from lokistack.loghttp import encoding
from lokistack.logql.engine import samples
from lokistack.logql.syntax import ast, printer, units

T = TypeVar("T")
SeriesSamples = tuple[samples.Labels, list[int], list[float]]
SampleRow = tuple[samples.Labels, int, float]


class LimitError(ValueError):
    """A query over a per-tenant read limit; the API answers 400 with the message."""


class IngesterSource(Protocol):
    """The ingesters, as :class:`lokistack.querier.ingesters.IngesterQuerier` reaches them."""

    async def select_logs(  # noqa: PLR0917 - mirrors the gRPC request
        self,
        tenant: str,
        selector: str,
        from_ns: int,
        through_ns: int,
        direction: entries.Direction,
        limit: int,
    ) -> tuple[list[entries.Entry], encoding.Stats]: ...

    async def select_samples(
        self, tenant: str, selector: str, from_ns: int, through_ns: int
    ) -> list[SeriesSamples]: ...

    async def label(
        self, tenant: str, name: str | None, from_ns: int, through_ns: int, query: str
    ) -> list[str]: ...

    async def series(
        self, tenant: str, selectors: Sequence[str], from_ns: int, through_ns: int
    ) -> list[samples.Labels]: ...

    async def stats(
        self, tenant: str, selector: str, from_ns: int, through_ns: int
    ) -> IndexStatsLike: ...


class IndexStatsLike(Protocol):
    """Counts of matching data; an ingester's or the store's."""

    @property
    def streams(self) -> int: ...
    @property
    def chunks(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def entries(self) -> int: ...


class StoreSource(Protocol):
    """The object store, as :class:`lokistack.querier.store.StoreQuerier` reads it."""

    async def select_logs(  # noqa: PLR0917
        self,
        tenant: str,
        query: ast.LogQueryExpr,
        from_ns: int,
        through_ns: int,
        direction: entries.Direction,
        limit: int,
        stats: encoding.Stats,
    ) -> list[entries.Entry]: ...

    def select_samples(  # noqa: PLR0917
        self,
        tenant: str,
        query: ast.LogQueryExpr,
        unwrap: ast.Unwrap | None,
        from_ns: int,
        through_ns: int,
        stats: encoding.Stats,
    ) -> AsyncIterator[list[SampleRow]]: ...

    async def label_names(
        self, tenant: str, from_ns: int, through_ns: int, matchers: Sequence[ast.Matcher]
    ) -> list[str]: ...

    async def label_values(
        self,
        tenant: str,
        name: str,
        from_ns: int,
        through_ns: int,
        matchers: Sequence[ast.Matcher],
    ) -> list[str]: ...

    async def series(
        self,
        tenant: str,
        from_ns: int,
        through_ns: int,
        matcher_sets: Sequence[Sequence[ast.Matcher]],
    ) -> list[samples.Labels]: ...

    async def index_stats(
        self, tenant: str, from_ns: int, through_ns: int, matchers: Sequence[ast.Matcher]
    ) -> tuple[int, int, int, int]: ...


@dataclasses.dataclass(frozen=True)
class Window:
    """Which sources a query over ``[from_ns, through_ns)`` asks."""

    ingesters: bool
    store: bool
    ingester_from_ns: int
    """Samples at or after this time may be in both; older ones come only from the store."""


class Querier:
    """Runs log and sample selections for the query API, within a tenant's read limits."""

    def __init__(
        self,
        cfg: config.Querier,
        overrides: limits.Overrides,
        ingesters: IngesterSource | None,
        store: StoreSource | None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.cfg = cfg
        self.overrides = overrides
        self.ingesters = ingesters
        self.store = store
        self.clock = clock

    def window(self, from_ns: int, through_ns: int) -> Window:
        within = int(self.cfg.query_ingesters_within.total_seconds() * 1e9)
        boundary = self.clock() - within if within > 0 else -(1 << 63)
        ask_ingesters = self.ingesters is not None and (within == 0 or through_ns > boundary)
        return Window(ask_ingesters, self.store is not None, max(boundary, from_ns))

    # Limits -----------------------------------------------------------------------------------

    def limits_for(self, tenant: str) -> config.Limits:
        return self.overrides.limits_for(tenant)

    def check_range(self, tenant: str, from_ns: int, through_ns: int) -> int:
        """Clamp ``from_ns`` to ``max_query_lookback``, then validate the query length of the
        clamped range (Loki's order); returns the clamped ``from_ns``."""
        tenant_limits = self.limits_for(tenant)
        lookback = int(tenant_limits.max_query_lookback.total_seconds() * 1e9)
        if lookback > 0:
            from_ns = max(from_ns, self.clock() - lookback)
        max_length = int(tenant_limits.max_query_length.total_seconds() * 1e9)
        if max_length > 0 and through_ns - from_ns > max_length:
            raise LimitError(
                "the query time range exceeds the limit (query length: "
                f"{units.format_go_duration(through_ns - from_ns)}, limit: "
                f"{units.format_prometheus_duration(max_length)})"
            )
        return from_ns

    def check_entries_limit(self, tenant: str, limit: int) -> None:
        allowed = self.limits_for(tenant).max_entries_limit_per_query
        if 0 < allowed < limit:
            raise LimitError(
                "max entries limit per query exceeded, limit > max_entries_limit_per_query "
                f"({limit} > {allowed})"
            )

    # Log queries ------------------------------------------------------------------------------

    async def select_logs(  # noqa: PLR0917 - the query's own parameters
        self,
        tenant: str,
        query: ast.LogQueryExpr,
        from_ns: int,
        through_ns: int,
        direction: entries.Direction,
        limit: int,
        stats: encoding.Stats,
    ) -> list[entries.Entry]:
        """The first ``limit`` entries of ``query`` in ``[from_ns, through_ns)``, in
        ``direction`` order, each distinct entry once."""
        from_ns = self.check_range(tenant, from_ns, through_ns)
        if through_ns <= from_ns:
            return []
        window = self.window(from_ns, through_ns)
        calls: list[Coroutine[Any, Any, list[entries.Entry]]] = []
        if window.ingesters and self.ingesters is not None:
            calls.append(
                self._ingester_logs(
                    self.ingesters, tenant, query, from_ns, through_ns, direction, limit, stats
                )
            )
        if window.store and self.store is not None:
            calls.append(
                self.store.select_logs(tenant, query, from_ns, through_ns, direction, limit, stats)
            )
        lists = await _all(calls)
        if len(lists) == 1:
            return lists[0]
        return entries.take(entries.merge((iter(found) for found in lists), direction), limit)

    @staticmethod
    async def _ingester_logs(  # noqa: PLR0917
        source: IngesterSource,
        tenant: str,
        query: ast.LogQueryExpr,
        from_ns: int,
        through_ns: int,
        direction: entries.Direction,
        limit: int,
        stats: encoding.Stats,
    ) -> list[entries.Entry]:
        found, ingester_stats = await source.select_logs(
            tenant, printer.format(query), from_ns, through_ns, direction, limit
        )
        stats.merge(ingester_stats)
        return found

    # Metric queries ---------------------------------------------------------------------------

    def sample_source(self, tenant: str, stats: encoding.Stats) -> TenantSamples:
        return TenantSamples(self, tenant, stats)

    # Metadata ---------------------------------------------------------------------------------

    async def label(
        self,
        tenant: str,
        name: str | None,
        from_ns: int,
        through_ns: int,
        query: ast.LogQueryExpr | None,
    ) -> list[str]:
        """Label names (``name is None``) or one label's values, sorted and unique."""
        from_ns = self.check_range(tenant, from_ns, through_ns)
        window = self.window(from_ns, through_ns)
        matchers = query.matchers if query is not None else ()
        calls: list[Coroutine[Any, Any, list[str]]] = []
        if window.ingesters and self.ingesters is not None:
            text = printer.format(query) if query is not None else ""
            calls.append(self.ingesters.label(tenant, name, from_ns, through_ns, text))
        if window.store and self.store is not None:
            if name is None:
                calls.append(self.store.label_names(tenant, from_ns, through_ns, matchers))
            else:
                calls.append(self.store.label_values(tenant, name, from_ns, through_ns, matchers))
        results = await _all(calls)
        return sorted({value for found in results for value in found})

    async def series(
        self,
        tenant: str,
        selectors: Sequence[ast.LogQueryExpr],
        from_ns: int,
        through_ns: int,
    ) -> list[samples.Labels]:
        """Label sets of the streams matching any selector (none: every stream), sorted."""
        from_ns = self.check_range(tenant, from_ns, through_ns)
        window = self.window(from_ns, through_ns)
        calls: list[Coroutine[Any, Any, list[samples.Labels]]] = []
        if window.ingesters and self.ingesters is not None:
            texts = [printer.format(selector) for selector in selectors]
            calls.append(self.ingesters.series(tenant, texts, from_ns, through_ns))
        if window.store and self.store is not None:
            matcher_sets = [selector.matchers for selector in selectors]
            calls.append(self.store.series(tenant, from_ns, through_ns, matcher_sets))
        results = await _all(calls)
        return sorted({labels for found in results for labels in found})

    async def index_stats(
        self, tenant: str, query: ast.LogQueryExpr, from_ns: int, through_ns: int
    ) -> tuple[int, int, int, int]:
        """``(streams, chunks, bytes, entries)`` of the ingesters plus the store's index, summed
        as Loki does: approximate, since flushed data still in memory is counted twice."""
        from_ns = self.check_range(tenant, from_ns, through_ns)
        window = self.window(from_ns, through_ns)
        counts: list[tuple[int, int, int, int]] = []
        if window.ingesters and self.ingesters is not None:
            found = await self.ingesters.stats(tenant, printer.format(query), from_ns, through_ns)
            counts.append((found.streams, found.chunks, found.bytes, found.entries))
        if window.store and self.store is not None:
            counts.append(await self.store.index_stats(tenant, from_ns, through_ns, query.matchers))
        if not counts:
            return (0, 0, 0, 0)
        streams, chunks, size, count = (sum(column) for column in zip(*counts, strict=True))
        return streams, chunks, size, count


class TenantSamples:
    """One query's :class:`~lokistack.logql.engine.evaluator.SampleSource` for one tenant."""

    def __init__(self, querier: Querier, tenant: str, stats: encoding.Stats) -> None:
        self.querier = querier
        self.tenant = tenant
        self.stats = stats

    async def sample_batches(
        self,
        query: ast.LogQueryExpr,
        unwrap: ast.Unwrap | None,
        from_ns: int,
        through_ns: int,
    ) -> AsyncIterator[list[SampleRow]]:
        querier = self.querier
        from_ns = querier.check_range(self.tenant, from_ns, through_ns)
        if through_ns <= from_ns:
            return
        window = querier.window(from_ns, through_ns)
        ingester_task: asyncio.Task[list[SeriesSamples]] | None = None
        if window.ingesters and querier.ingesters is not None:
            ingester_task = asyncio.create_task(
                querier.ingesters.select_samples(
                    self.tenant, _sample_selector(query, unwrap), from_ns, through_ns
                )
            )
        overlap = _Overlap()
        try:
            async for batch in self._store_batches(window, query, unwrap, from_ns, through_ns):
                if ingester_task is None:
                    yield batch
                    continue
                # Store rows from the time ingesters also cover wait for the ingesters' rows.
                boundary = window.ingester_from_ns
                older = [row for row in batch if row[1] < boundary]
                if len(older) < len(batch):
                    for row in batch:
                        if row[1] >= boundary:
                            overlap.add(row)
                if older:
                    yield older
            if ingester_task is None:
                return
            from_ingesters = await ingester_task
        finally:
            if ingester_task is not None and not ingester_task.done():
                ingester_task.cancel()
        merged = list(overlap.merge(from_ingesters))
        if merged:
            yield merged

    async def _store_batches(
        self,
        window: Window,
        query: ast.LogQueryExpr,
        unwrap: ast.Unwrap | None,
        from_ns: int,
        through_ns: int,
    ) -> AsyncIterator[list[SampleRow]]:
        store = self.querier.store
        if not window.store or store is None:
            return
        async for batch in store.select_samples(
            self.tenant, query, unwrap, from_ns, through_ns, self.stats
        ):
            yield batch


class _Overlap:
    """Store samples from the time ingesters also cover, merged with the ingesters' samples by
    multiplicity: each ``(labels, ts, value)`` is kept as often as the larger side has it."""

    def __init__(self) -> None:
        self.counts: dict[samples.Labels, collections.Counter[tuple[int, float]]] = {}

    def add(self, row: SampleRow) -> None:
        labels, ts, value = row
        counts = self.counts.get(labels)
        if counts is None:
            counts = self.counts[labels] = collections.Counter()
        counts[(ts, value)] += 1

    def merge(self, from_ingesters: list[SeriesSamples]) -> Iterator[SampleRow]:
        for labels, timestamps, values in from_ingesters:
            counts = self.counts.pop(labels, None) or collections.Counter()
            for ts, value in zip(timestamps, values, strict=True):
                key = (ts, value)
                if counts[key] > 0:
                    counts[key] -= 1  # the store has this sample too: emit it once
                yield labels, ts, value
            yield from _expand(labels, counts)
        for labels, counts in self.counts.items():
            yield from _expand(labels, counts)


def _expand(
    labels: samples.Labels, counts: collections.Counter[tuple[int, float]]
) -> Iterator[SampleRow]:
    for (ts, value), count in counts.items():
        for _ in range(count):
            yield labels, ts, value


async def _all(calls: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Run ``calls`` concurrently; the first failure cancels the others and is raised as
    itself (not wrapped in an ``ExceptionGroup``), so the API can map it to a status."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call) for call in calls]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


def _sample_selector(query: ast.LogQueryExpr, unwrap: ast.Unwrap | None) -> str:
    """The range aggregation text the ingester rebuilds ``query`` and ``unwrap`` from."""
    op = ast.RangeOp.SUM_OVER_TIME if unwrap is not None else ast.RangeOp.COUNT_OVER_TIME
    node = ast.RangeAggregation(op, query, 60_000_000_000, unwrap=unwrap)
    return printer.format(node)
