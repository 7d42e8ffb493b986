"""FilesystemStore: the ObjectStore semantics of docs/format/storage.md on a local directory."""

from __future__ import annotations

import asyncio
import os
import pathlib

import prometheus_client
import pytest
from lokistack.storage import filesystem, objstore

from tests.support import objstore_contract


@pytest.fixture
def store(tmp_path: pathlib.Path) -> filesystem.FilesystemStore:
    return filesystem.FilesystemStore(tmp_path / "objects")


async def test_put_get_round_trip_and_overwrite(store: filesystem.FilesystemStore) -> None:
    await objstore_contract.put_get_overwrite(store)
    assert (store.root / "fake" / "chunks" / "00ff" / "1-2-0000abcd").read_bytes() == (
        b"second, longer"
    )


async def test_put_leaves_no_temporary_files(store: filesystem.FilesystemStore) -> None:
    for index in range(5):
        await store.put(f"a/b/{index}", os.urandom(1000))
    names = [path.name for path in store.root.rglob("*")]
    assert not [name for name in names if name.startswith(objstore.TMP_PREFIX)]


async def test_get_missing_raises_not_found(store: filesystem.FilesystemStore) -> None:
    await objstore_contract.missing_keys(store)
    await store.put("dir/file", b"x")
    with pytest.raises(objstore.ObjectNotFoundError):
        await store.get("dir")  # a prefix is not an object
    with pytest.raises(objstore.ObjectNotFoundError):
        await store.get("dir/file/below")


async def test_get_range(store: filesystem.FilesystemStore) -> None:
    await objstore_contract.get_range(store)
    with pytest.raises(ValueError, match="invalid range"):
        await store.get_range("k/r", -1, 10)


async def test_list_by_prefix_sorted_with_sizes(store: filesystem.FilesystemStore) -> None:
    await objstore_contract.list_exists_delete(store)


async def test_list_skips_files_being_written(store: filesystem.FilesystemStore) -> None:
    await store.put("a/b", b"x")
    (store.root / "a" / (objstore.TMP_PREFIX + "123")).write_bytes(b"partial")
    assert [info.key for info in await store.list("a/")] == ["a/b"]


async def test_delete_and_exists(store: filesystem.FilesystemStore) -> None:
    await store.put("t/k", b"x")
    await store.delete("t/k")
    assert not await store.exists("t")  # a directory is not an object


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/abs/key",
        "../escape",
        "a/../../escape",
        "a/./b",
        "a//b",
        "a/",
        "nul\x00byte",
        "a/" + objstore.TMP_PREFIX + "x",
        "x" * 1025,
    ],
)
async def test_unsafe_keys_are_rejected(store: filesystem.FilesystemStore, key: str) -> None:
    with pytest.raises(ValueError, match="object key"):
        await store.put(key, b"x")
    with pytest.raises(ValueError, match="object key"):
        await store.get(key)
    with pytest.raises(ValueError, match="object key"):
        await store.delete(key)
    assert not list(store.root.parent.glob("escape"))


async def test_list_rejects_prefix_that_escapes(store: filesystem.FilesystemStore) -> None:
    with pytest.raises(ValueError, match="object key"):
        await store.list("../")


async def test_write_failure_is_a_storage_error(store: filesystem.FilesystemStore) -> None:
    await store.put("a/file", b"x")
    with pytest.raises(objstore.StorageError, match="cannot write"):
        await store.put("a/file/below", b"y")  # a parent is a file
    assert await store.get("a/file") == b"x"
    assert not [p for p in store.root.rglob("*") if p.name.startswith(objstore.TMP_PREFIX)]


async def test_requests_are_timed_by_status(store: filesystem.FilesystemStore) -> None:
    def count(operation: str, status: str) -> float:
        value = prometheus_client.REGISTRY.get_sample_value(
            "lokistack_object_store_request_duration_seconds_count",
            {"store": "filesystem", "operation": operation, "status": status},
        )
        return value or 0.0

    ok_before, missing_before = count("get", "ok"), count("get", "not_found")
    await store.put("m/k", b"x")
    await store.get("m/k")
    with pytest.raises(objstore.ObjectNotFoundError):
        await store.get("m/missing")
    assert count("get", "ok") == ok_before + 1
    assert count("get", "not_found") == missing_before + 1


def test_root_is_created_on_first_put(tmp_path: pathlib.Path) -> None:
    store = filesystem.FilesystemStore(tmp_path / "deep" / "root")
    assert not store.root.exists()
    asyncio.run(store.put("k", b"v"))
    assert (tmp_path / "deep" / "root" / "k").read_bytes() == b"v"
