"""The frontend results cache: LRU bounded by bytes, expiry, what may be cached, metrics."""

from __future__ import annotations

from typing import Final

import prometheus_client
import pytest
from lokistack.frontend import results_cache

MINUTE: Final = 60 * 10**9
HOUR: Final = 60 * MINUTE


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _metric(name: str) -> float:
    sample = f"lokistack_frontend_results_cache_{name}"
    return prometheus_client.REGISTRY.get_sample_value(sample) or 0.0


def test_cache_key_layout() -> None:
    key = results_cache.cache_key("t1", 'rate({a="b:c"}[1m])', 15, -5, 10)
    assert key == 't1:rate({a="b:c"}[1m]):15:-5:10'


def test_get_put_and_counters() -> None:
    cache = results_cache.ResultsCache(max_bytes=1000, ttl_s=60)
    hits, misses = _metric("hits_total"), _metric("misses_total")
    assert cache.get("k") is None
    cache.put("k", b"value")
    assert cache.get("k") == b"value"
    assert (_metric("hits_total") - hits, _metric("misses_total") - misses) == (1, 1)
    assert cache.size_bytes == len(b"value") + len("k")


def test_lru_eviction_by_bytes() -> None:
    cache = results_cache.ResultsCache(max_bytes=30, ttl_s=60)
    evictions = _metric("evictions_total")
    cache.put("a", b"x" * 9)  # 10 bytes with its key
    cache.put("b", b"x" * 9)
    cache.put("c", b"x" * 9)
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("d", b"x" * 9)  # evicts b, the least recently used
    assert "b" not in cache
    assert all(key in cache for key in "acd")
    cache.put("e", b"x" * 19)  # 20 bytes: evicts c and a
    assert set("de") == {key for key in "abcde" if key in cache}
    assert cache.size_bytes == 30
    assert _metric("evictions_total") - evictions == 3


def test_replacing_a_key_and_oversized_values() -> None:
    cache = results_cache.ResultsCache(max_bytes=20, ttl_s=60)
    cache.put("a", b"12345")
    cache.put("a", b"1234567")
    assert cache.get("a") == b"1234567"
    assert cache.size_bytes == 8
    cache.put("big", b"x" * 20)
    assert "big" not in cache
    assert "a" in cache
    assert len(cache) == 1
    disabled = results_cache.ResultsCache(max_bytes=0, ttl_s=60)
    disabled.put("a", b"")
    assert len(disabled) == 0


def test_entries_expire_after_ttl() -> None:
    clock = FakeClock()
    cache = results_cache.ResultsCache(max_bytes=100, ttl_s=10, clock=clock)
    cache.put("a", b"v")
    clock.now += 9.9
    assert cache.get("a") == b"v"
    clock.now += 0.1
    assert cache.get("a") is None
    assert "a" not in cache
    assert cache.size_bytes == 0


def test_bytes_gauge_follows_the_contents() -> None:
    before = _metric("bytes")
    cache = results_cache.ResultsCache(max_bytes=100, ttl_s=10)
    cache.put("a", b"12")
    cache.put("b", b"34")
    assert _metric("bytes") - before == 6
    cache.clear()
    assert _metric("bytes") == before
    assert len(cache) == 0


def test_invalid_settings() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        results_cache.ResultsCache(max_bytes=-1, ttl_s=10)
    with pytest.raises(ValueError, match="ttl_s"):
        results_cache.ResultsCache(max_bytes=1, ttl_s=0)


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        (-4 * HOUR, True),
        (-3 * HOUR - 1, True),
        (-3 * HOUR, False),  # touches the window the ingesters may still add to
        (-MINUTE, False),
        (0, False),
    ],
)
def test_cacheable_only_entirely_older_than_the_ingester_window(end: int, expected: bool) -> None:
    now = 1_700_000_000 * 10**9
    assert results_cache.cacheable(now + end, now, 10 * MINUTE, 3 * HOUR) is expected


def test_cacheable_uses_the_larger_window() -> None:
    now = 10 * HOUR
    assert not results_cache.cacheable(now - 20 * MINUTE, now, 30 * MINUTE, 10 * MINUTE)
    assert results_cache.cacheable(now - 31 * MINUTE, now, 30 * MINUTE, 10 * MINUTE)
    assert results_cache.cacheable(now - 1, now, 0, 0)
