"""ChunkCache: byte-bounded LRU, loads only what is missing, shares concurrent loads."""

from __future__ import annotations

import asyncio

import prometheus_client
import pytest
from lokistack.querier import chunk_cache


class Loader:
    """Serves ``key -> key.encode() * size`` and records what it was asked for."""

    def __init__(self, size: int = 10) -> None:
        self.size = size
        self.calls: list[list[str]] = []
        self.gate: asyncio.Event | None = None
        self.fail: Exception | None = None

    async def __call__(self, keys: list[str]) -> dict[str, bytes]:
        self.calls.append(list(keys))
        error, self.fail = self.fail, None  # fails one call
        if self.gate is not None:
            await self.gate.wait()
        if error is not None:
            raise error
        return {key: self.value(key) for key in keys}

    def value(self, key: str) -> bytes:
        return (key.encode() * self.size)[: self.size]


def metric(name: str) -> float:
    value = prometheus_client.REGISTRY.get_sample_value(name, {"name": "chunks"})
    return value or 0.0


async def test_fetch_loads_only_missing_keys_and_counts_hits() -> None:
    cache = chunk_cache.ChunkCache(1000)
    loader = Loader()
    fetched, hits = metric("loki_cache_fetched_keys_total"), metric("loki_cache_hits_total")
    assert await cache.fetch(["a", "b"], loader) == {"a": loader.value("a"), "b": loader.value("b")}
    found, hit_count = await cache.fetch_with_hits(["b", "c", "b", "a"], loader)
    assert list(found) == ["b", "c", "a"]  # in request order, each key once
    assert hit_count == 2
    assert loader.calls == [["a", "b"], ["c"]]
    assert metric("loki_cache_fetched_keys_total") - fetched == 5
    assert metric("loki_cache_hits_total") - hits == 2
    assert len(cache) == 3
    assert cache.size_bytes == 30
    assert await cache.fetch([], loader) == {}


def test_lru_evicts_least_recently_used_to_fit_max_bytes() -> None:
    cache = chunk_cache.ChunkCache(25)
    cache.put("a", b"x" * 10)
    cache.put("b", b"y" * 10)
    assert cache.get("a") == b"x" * 10  # a is now more recent than b
    cache.put("c", b"z" * 10)
    assert "b" not in cache
    assert "a" in cache and "c" in cache
    assert cache.size_bytes == 20
    cache.put("a", b"w" * 5)  # replacing a value updates the size
    assert cache.size_bytes == 15
    cache.put("huge", b"h" * 26)  # bigger than the whole cache: not kept, nothing evicted
    assert "huge" not in cache
    assert len(cache) == 2
    cache.put("d", b"d" * 20)
    assert [key for key in ("a", "c", "d") if key in cache] == ["a", "d"]  # c was older
    cache.clear()
    assert len(cache) == 0
    assert cache.size_bytes == 0


async def test_disabled_cache_always_loads() -> None:
    cache = chunk_cache.ChunkCache(0)
    assert not cache.enabled
    loader = Loader()
    await cache.fetch(["a"], loader)
    found, hits = await cache.fetch_with_hits(["a"], loader)
    assert found == {"a": loader.value("a")}
    assert hits == 0
    assert loader.calls == [["a"], ["a"]]
    assert len(cache) == 0
    with pytest.raises(ValueError, match="negative"):
        chunk_cache.ChunkCache(-1)


async def test_concurrent_fetches_share_one_load() -> None:
    cache = chunk_cache.ChunkCache(1000)
    loader = Loader()
    loader.gate = asyncio.Event()
    first = asyncio.create_task(cache.fetch(["a", "b"], loader))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.fetch(["b", "c"], loader))
    await asyncio.sleep(0)
    loader.gate.set()
    assert set(await first) == {"a", "b"}
    assert await second == {"b": loader.value("b"), "c": loader.value("c")}
    assert loader.calls == [["a", "b"], ["c"]]


async def test_a_failed_load_raises_and_waiters_load_for_themselves() -> None:
    cache = chunk_cache.ChunkCache(1000)
    loader = Loader()
    loader.gate = asyncio.Event()
    loader.fail = KeyError("a")
    first = asyncio.create_task(cache.fetch(["a"], loader))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.fetch(["a"], loader))
    await asyncio.sleep(0)
    loader.gate.set()
    with pytest.raises(KeyError):
        await first
    assert await second == {"a": loader.value("a")}
    assert loader.calls == [["a"], ["a"]]
    assert "a" in cache


async def test_cancelled_load_does_not_strand_waiters() -> None:
    cache = chunk_cache.ChunkCache(1000)
    loader = Loader()
    loader.gate = asyncio.Event()
    first = asyncio.create_task(cache.fetch(["a"], loader))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.fetch(["a"], loader))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    loader.gate.set()
    assert await second == {"a": loader.value("a")}
    assert first.cancelled()
    assert loader.calls == [["a"], ["a"]]
