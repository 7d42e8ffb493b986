"""ChunkStore: chunks written under their documented keys, fetched in bounded parallel."""

from __future__ import annotations

import asyncio
import pathlib

import pytest
from lokistack.storage import chunk_store, filesystem, objstore


class CountingStore(filesystem.FilesystemStore):
    """Records how many gets run at once."""

    def __init__(self, root: pathlib.Path) -> None:
        super().__init__(root)
        self.running = 0
        self.peak = 0
        self.gets = 0

    async def get(self, key: str) -> bytes:
        self.running += 1
        self.gets += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(0.01)
            return await super().get(key)
        finally:
            self.running -= 1


async def test_put_chunk_uses_the_chunk_key(tmp_path: pathlib.Path) -> None:
    store = filesystem.FilesystemStore(tmp_path)
    chunks = chunk_store.ChunkStore(store)
    key = await chunks.put_chunk("fake", 0xABC, 1_000, 2_000, 0xDEADBEEF, b"chunk bytes")
    assert key == "fake/chunks/0000000000000abc/3e8-7d0-deadbeef"
    assert await store.get(key) == b"chunk bytes"


async def test_get_chunks_bounded_parallel_and_deduplicated(tmp_path: pathlib.Path) -> None:
    store = CountingStore(tmp_path)
    chunks = chunk_store.ChunkStore(store)
    keys = [await chunks.put_chunk("t", n, n, n + 1, n, f"data {n}".encode()) for n in range(40)]

    fetched = await chunks.get_chunks([*keys, *keys[:5]], parallelism=4)

    assert list(fetched) == keys
    assert fetched[keys[7]] == b"data 7"
    assert store.gets == 40
    assert 1 < store.peak <= 4


async def test_get_chunks_missing_key_fails_the_whole_fetch(tmp_path: pathlib.Path) -> None:
    store = CountingStore(tmp_path)
    chunks = chunk_store.ChunkStore(store)
    present = await chunks.put_chunk("t", 1, 1, 2, 3, b"x")
    with pytest.raises(objstore.ObjectNotFoundError) as missing:
        await chunks.get_chunks([present, "t/chunks/0000000000000001/5-6-00000007"])
    assert missing.value.key == "t/chunks/0000000000000001/5-6-00000007"


async def test_get_chunks_empty_and_bad_parallelism(tmp_path: pathlib.Path) -> None:
    chunks = chunk_store.ChunkStore(filesystem.FilesystemStore(tmp_path))
    assert await chunks.get_chunks([]) == {}
    with pytest.raises(ValueError, match="parallelism"):
        await chunks.get_chunks(["a"], parallelism=0)
