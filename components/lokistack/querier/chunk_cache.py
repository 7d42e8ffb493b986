"""An in-memory LRU of compressed chunk bytes, shared by every query of a querier.

Dashboards re-run the same queries every few seconds over mostly the same chunks, and a log
query's time windows touch a chunk more than once, so the querier keeps recently read chunks in
memory instead of asking the object store again. A chunk object never changes once written (its
key names its stream, bounds and checksum), so an entry is valid until it is evicted: there is no
invalidation. The cache holds the bytes as stored (compressed, about a tenth of the decoded
size) and is bounded by their total length.

Two queries that miss the same keys at the same time share one load, so a burst of identical
dashboard panels downloads each chunk once. The metrics follow Loki's instrumented cache
(``loki_cache_fetched_keys``, ``loki_cache_hits``, ``loki_cache_value_size_bytes``) with
``name="chunks"``; ``prometheus_client`` exposes the two counters with a ``_total`` suffix.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

import prometheus_client

CACHE_NAME: Final = "chunks"

Loader = Callable[[list[str]], Awaitable[dict[str, bytes]]]
"""Loads keys the cache lacks, e.g. :meth:`lokistack.storage.chunk_store.ChunkStore.get_chunks`."""

FETCHED_KEYS: Final = prometheus_client.Counter(
    "loki_cache_fetched_keys", "Total count of keys requested from cache.", ["name"]
)
HITS: Final = prometheus_client.Counter(
    "loki_cache_hits", "Total count of keys found in cache.", ["name"]
)
VALUE_SIZE: Final = prometheus_client.Histogram(
    "loki_cache_value_size_bytes",
    "Size of values in the cache.",
    ["name", "method"],
    buckets=[1024 * 4**exponent for exponent in range(8)],  # 1 KiB .. 16 MiB
)
MEMORY_BYTES: Final = prometheus_client.Gauge(
    "lokistack_cache_memory_bytes", "Bytes of values held in the in-memory cache.", ["name"]
)
ENTRIES: Final = prometheus_client.Gauge(
    "lokistack_cache_entries", "Values held in the in-memory cache.", ["name"]
)
EVICTED: Final = prometheus_client.Counter(
    "lokistack_cache_evicted_total", "Values evicted from the in-memory cache.", ["name"]
)


class ChunkCache:
    """Compressed chunk bytes by key, least recently used evicted first.

    ``max_bytes`` bounds the total length of the cached values; 0 disables the cache (every
    fetch goes to the loader). A value larger than the whole cache is returned but not kept.
    Use from one event loop: the cache is not thread-safe and needs no lock there.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
        self.max_bytes = max_bytes
        self._values: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self._size = 0
        # Keys being loaded by some fetch: its future resolves to the loaded values, or to
        # None when that load failed (each waiter then loads for itself).
        self._loading: dict[str, asyncio.Future[dict[str, bytes] | None]] = {}

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @property
    def size_bytes(self) -> int:
        """Total length of the cached values."""
        return self._size

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def get(self, key: str) -> bytes | None:
        """The cached value (now most recently used), or ``None``."""
        data = self._values.get(key)
        if data is not None:
            self._values.move_to_end(key)
        return data

    def put(self, key: str, data: bytes) -> None:
        """Keep ``data`` under ``key``, evicting the least recently used values to fit."""
        if len(data) > self.max_bytes:
            return
        previous = self._values.pop(key, None)
        if previous is not None:
            self._size -= len(previous)
            ENTRIES.labels(CACHE_NAME).dec()
            MEMORY_BYTES.labels(CACHE_NAME).dec(len(previous))
        evicted = 0
        evicted_bytes = 0
        while self._values and self._size + len(data) > self.max_bytes:
            _, old = self._values.popitem(last=False)
            self._size -= len(old)
            evicted += 1
            evicted_bytes += len(old)
        self._values[key] = data
        self._size += len(data)
        ENTRIES.labels(CACHE_NAME).inc(1 - evicted)
        MEMORY_BYTES.labels(CACHE_NAME).inc(len(data) - evicted_bytes)
        if evicted:
            EVICTED.labels(CACHE_NAME).inc(evicted)
        VALUE_SIZE.labels(CACHE_NAME, "store").observe(len(data))

    def clear(self) -> None:
        """Drop every value (the metrics follow)."""
        ENTRIES.labels(CACHE_NAME).dec(len(self._values))
        MEMORY_BYTES.labels(CACHE_NAME).dec(self._size)
        self._values.clear()
        self._size = 0

    async def fetch(self, keys: Iterable[str], loader: Loader) -> dict[str, bytes]:
        """Every key's bytes, from the cache where present and through ``loader`` otherwise.

        Loaded values are cached. The loader's error (a missing object) propagates.
        """
        found, _ = await self.fetch_with_hits(keys, loader)
        return found

    async def fetch_with_hits(
        self, keys: Iterable[str], loader: Loader
    ) -> tuple[dict[str, bytes], int]:
        """:meth:`fetch`, also returning how many keys were cache hits (for query stats)."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}, 0
        if not self.enabled:
            return await loader(wanted), 0
        found: dict[str, bytes] = {}
        missing: list[str] = []
        waiting: dict[str, asyncio.Future[dict[str, bytes] | None]] = {}
        for key in wanted:
            data = self.get(key)
            if data is not None:
                found[key] = data
                VALUE_SIZE.labels(CACHE_NAME, "fetch").observe(len(data))
            elif key in self._loading:
                waiting[key] = self._loading[key]
            else:
                missing.append(key)
        hits = len(found)
        FETCHED_KEYS.labels(CACHE_NAME).inc(len(wanted))
        HITS.labels(CACHE_NAME).inc(hits)
        if missing:
            found.update(await self._load(missing, loader))
        retry: list[str] = []
        for key, future in waiting.items():
            # shield: our cancellation must not cancel the future other fetches wait on.
            shared = await asyncio.shield(future)
            if shared is None or key not in shared:
                retry.append(key)
            else:
                found[key] = shared[key]
        if retry:
            found.update(await self._load(retry, loader))
        return {key: found[key] for key in wanted}, hits

    async def _load(self, keys: list[str], loader: Loader) -> dict[str, bytes]:
        future: asyncio.Future[dict[str, bytes] | None] = asyncio.get_running_loop().create_future()
        for key in keys:
            self._loading[key] = future
        loaded: dict[str, bytes] | None = None
        try:
            loaded = await loader(keys)
            for key in keys:
                self.put(key, loaded[key])
            return loaded
        finally:
            future.set_result(loaded)
            for key in keys:
                if self._loading.get(key) is future:
                    del self._loading[key]
