"""The ObjectStore behaviour every store must share (docs/format/storage.md).

The filesystem store's unit tests and the S3 store's integration tests both run these checks,
so the two implementations cannot drift apart on the semantics the rest of Lokistack relies on;
each test file adds only what is particular to its store.
"""

from __future__ import annotations

import pytest
from lokistack.storage import objstore


async def put_get_overwrite(store: objstore.ObjectStore) -> None:
    await store.put("fake/chunks/00ff/1-2-0000abcd", b"first")
    assert await store.get("fake/chunks/00ff/1-2-0000abcd") == b"first"
    await store.put("fake/chunks/00ff/1-2-0000abcd", b"second, longer")
    assert await store.get("fake/chunks/00ff/1-2-0000abcd") == b"second, longer"


async def get_range(store: objstore.ObjectStore) -> None:
    data = bytes(range(256)) * 4
    await store.put("k/r", data)
    assert await store.get_range("k/r", 10, 20) == data[10:30]
    assert await store.get_range("k/r", 1000, 100) == data[1000:]  # short at the end
    assert await store.get_range("k/r", 5000, 10) == b""  # past the end
    assert await store.get_range("k/r", 3, 0) == b""
    await store.put("k/empty", b"")
    assert await store.get("k/empty") == b""
    assert await store.get_range("k/empty", 0, 10) == b""


async def missing_keys(store: objstore.ObjectStore) -> None:
    with pytest.raises(objstore.ObjectNotFoundError) as missing:
        await store.get("no/such/key")
    assert missing.value.key == "no/such/key"
    with pytest.raises(objstore.ObjectNotFoundError):
        await store.get_range("no/such/key", 0, 10)
    with pytest.raises(objstore.ObjectNotFoundError):
        await store.get_range("no/such/key", 0, 0)
    assert not await store.exists("no/such/key")
    await store.delete("no/such/key")  # deleting what is absent is not an error, as in S3


async def list_exists_delete(store: objstore.ObjectStore) -> None:
    for key, size in [
        ("index/19001/a/x.sqlite", 3),
        ("index/19000/b/y.sqlite", 2),
        ("index/19000/a/z.sqlite", 1),
        ("index/190/a/w.sqlite", 4),
        ("fake/chunks/1/2", 5),
    ]:
        await store.put(key, b"x" * size)
    assert await store.list("index/19000/") == [
        objstore.ObjectInfo("index/19000/a/z.sqlite", 1),
        objstore.ObjectInfo("index/19000/b/y.sqlite", 2),
    ]
    # A prefix need not end at a segment boundary.
    assert [info.key for info in await store.list("index/1900")] == [
        "index/19000/a/z.sqlite",
        "index/19000/b/y.sqlite",
        "index/19001/a/x.sqlite",
    ]
    assert len(await store.list("")) == 5
    assert await store.list("index/20000/") == []
    assert await store.list("nothing") == []

    assert await store.exists("fake/chunks/1/2")
    assert not await store.exists("fake/chunks/1")  # a prefix is not an object
    await store.delete("fake/chunks/1/2")
    assert not await store.exists("fake/chunks/1/2")
