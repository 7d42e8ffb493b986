"""Chunks in the object store, by key: what flush writes and the querier reads.

A thin layer over :class:`~lokistack.storage.objstore.ObjectStore` that owns the key format (so
flush cannot write a chunk under a key the index or retention would not recognise) and fetches
many chunks at once with bounded parallelism, because a query touches tens to thousands of chunks
and their latency, not bandwidth, dominates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from lokistack.storage import chunk_keys, objstore


class ChunkStore:
    """Put and get encoded chunks."""

    def __init__(self, store: objstore.ObjectStore) -> None:
        self.store = store

    async def put_chunk(  # noqa: PLR0917 - the positional signature flush calls
        self,
        tenant: str,
        fingerprint: int,
        from_ns: int,
        through_ns: int,
        checksum: int,
        data: bytes,
    ) -> str:
        """Write one chunk object and return its key (docs/format/storage.md)."""
        key = chunk_keys.chunk_key(tenant, fingerprint, from_ns, through_ns, checksum)
        await self.store.put(key, data)
        return key

    async def get_chunks(self, keys: Iterable[str], parallelism: int = 16) -> dict[str, bytes]:
        """Fetch every key, at most ``parallelism`` at a time.

        Fails with the first error (typically
        :class:`~lokistack.storage.objstore.ObjectNotFoundError`) and cancels the fetches still
        running: a query must not silently miss a chunk its index promised.
        """
        if parallelism < 1:
            raise ValueError(f"parallelism must be at least 1, got {parallelism}")
        unique = list(dict.fromkeys(keys))
        semaphore = asyncio.Semaphore(parallelism)
        results: dict[str, bytes] = {}

        async def fetch(key: str) -> None:
            async with semaphore:
                results[key] = await self.store.get(key)

        try:
            async with asyncio.TaskGroup() as group:
                for key in unique:
                    group.create_task(fetch(key))
        except ExceptionGroup as errors:
            # TaskGroup wraps failures in a group; callers expect the store's own exception.
            raise errors.exceptions[0] from None
        return {key: results[key] for key in unique}
