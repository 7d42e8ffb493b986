"""An in-memory results cache for metric sub-queries, bounded by bytes, least recently used out.

Dashboards re-run the same metric queries every few seconds over a sliding range; after
splitting (:mod:`.split`) all but the newest pieces are the same epoch-aligned windows as last
time, so their answers can be served from memory instead of from the queriers (reference §4.6).

A piece's answer is final only once no more data can arrive for its window. Data newer than
``query_ingesters_within`` may still be in ingesters (and out-of-order pushes may still land
there), and Loki never caches anything newer than ``max_cache_freshness_per_query``, so only
pieces that end before ``now - max(both)`` are cached (:func:`cacheable`). Entries also expire
after ``ttl_s``, which bounds how long a deletion or a retention change can go unseen.

Keys are ``f"{tenant}:{query}:{step_ns}:{start_ns}:{end_ns}"`` (:func:`cache_key`). Tenant IDs
cannot contain ``:`` and the last three fields are integers, so the key is unambiguous even
though the query may contain colons. Unlike Loki, which caches extents of
``floor(start/split)`` buckets and stitches partial hits, a key here is one whole piece: the
splitter already cuts every query at the same boundaries, so pieces repeat exactly.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable
from typing import Final

import prometheus_client

HITS: Final = prometheus_client.Counter(
    "lokistack_frontend_results_cache_hits", "Metric sub-query results served from the cache."
)
MISSES: Final = prometheus_client.Counter(
    "lokistack_frontend_results_cache_misses",
    "Metric sub-query results looked up and not found (or expired) in the cache.",
)
BYTES: Final = prometheus_client.Gauge(
    "lokistack_frontend_results_cache_bytes", "Bytes held by the frontend results cache."
)
EVICTIONS: Final = prometheus_client.Counter(
    "lokistack_frontend_results_cache_evictions",
    "Results removed from the cache to stay within its size (expired ones not counted).",
)


def cache_key(tenant: str, query: str, step_ns: int, start_ns: int, end_ns: int) -> str:
    """The key of one metric piece's answer; ``query`` is best the printed (canonical) AST."""
    return f"{tenant}:{query}:{step_ns}:{start_ns}:{end_ns}"


def cacheable(end_ns: int, now_ns: int, freshness_ns: int, query_ingesters_within_ns: int) -> bool:
    """Whether a piece ending at ``end_ns`` (inclusive) is old enough that its answer is final.

    True when the whole piece is older than ``now - max(query_ingesters_within,
    max_cache_freshness_per_query)``.
    """
    return end_ns < now_ns - max(freshness_ns, query_ingesters_within_ns)


@dataclasses.dataclass(slots=True)
class _Entry:
    value: bytes
    expires_at: float


class ResultsCache:
    """Sub-query answers by key, in memory, least recently used evicted first.

    ``max_bytes`` bounds the total length of keys and values (``0`` disables the cache); a value
    too large for the whole cache is not kept. ``ttl_s`` is how long an entry may be served,
    measured with ``clock`` (seconds; injectable for tests). Not thread-safe: use it from the
    frontend's event loop.
    """

    def __init__(
        self, max_bytes: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_bytes < 0 or ttl_s <= 0:
            raise ValueError("max_bytes must be >= 0 and ttl_s > 0")
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self._bytes = 0

    @property
    def size_bytes(self) -> int:
        """The bytes held now (keys and values)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is held (expired or not); does not count as a use."""
        return key in self._entries

    def get(self, key: str) -> bytes | None:
        """The value of ``key`` if held and not expired; a hit makes it most recently used."""
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at <= self._clock():
            self._remove(key)
            entry = None
        if entry is None:
            MISSES.inc()
            return None
        self._entries.move_to_end(key)
        HITS.inc()
        return entry.value

    def put(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key`` (replacing it), evicting least recently used entries."""
        if key in self._entries:
            self._remove(key)
        size = _size(key, value)
        if size > self.max_bytes:
            return
        while self._bytes + size > self.max_bytes:
            oldest = next(iter(self._entries))
            self._remove(oldest)
            EVICTIONS.inc()
        self._entries[key] = _Entry(value, self._clock() + self.ttl_s)
        self._add_bytes(size)

    def clear(self) -> None:
        """Drop every entry."""
        self._add_bytes(-self._bytes)
        self._entries.clear()

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key)
        self._add_bytes(-_size(key, entry.value))

    def _add_bytes(self, delta: int) -> None:
        self._bytes += delta
        BYTES.inc(delta)


def _size(key: str, value: bytes) -> int:
    """What an entry costs: its value plus its key (which holds the whole query text)."""
    return len(value) + len(key.encode(errors="surrogatepass"))
