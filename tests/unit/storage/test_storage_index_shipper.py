"""IndexShipper: sealed heads are uploaded under their documented keys, and kept on failure."""

from __future__ import annotations

import asyncio
import datetime
import pathlib

import pytest
from lokistack.model import fingerprint as model_fingerprint
from lokistack.model import labels as model_labels
from lokistack.storage import filesystem, index_format, index_shipper, objstore

DAY = index_format.DAY_NS
T0 = 19_723 * DAY
SEALED_AT = 1_704_067_200.5  # seconds


class FlakyStore(filesystem.FilesystemStore):
    """A filesystem store whose puts fail while ``down`` is set."""

    def __init__(self, root: pathlib.Path) -> None:
        super().__init__(root)
        self.down = False

    async def put(self, key: str, data: bytes) -> None:
        if self.down:
            raise objstore.StorageError("store is down")
        await super().put(key, data)


def stream(text: str) -> tuple[str, int]:
    canonical = model_labels.canonical(model_labels.parse_labels(text))
    return canonical, model_fingerprint.fingerprint(canonical)


def shipper_for(
    tmp_path: pathlib.Path, store: objstore.ObjectStore, seal_seconds: float = 900
) -> index_shipper.IndexShipper:
    return index_shipper.IndexShipper(
        store,
        tmp_path / "index",
        "ingester-0",
        datetime.timedelta(seconds=seal_seconds),
        clock=lambda: SEALED_AT,
    )


async def test_seal_and_upload_uses_documented_keys(tmp_path: pathlib.Path) -> None:
    store = filesystem.FilesystemStore(tmp_path / "objects")
    shipper = shipper_for(tmp_path, store)
    labels, fp = stream('{app="api"}')
    await shipper.head.add_chunk("fake", fp, labels, T0 - 5, T0 + 5, "k", 1, 1)
    await shipper.head.add_chunk("other", fp, labels, T0, T0, "k2", 1, 1)

    uploaded = await shipper.seal_and_upload()

    assert uploaded == [
        "index/19722/fake/ingester-0-1704067200500.sqlite",
        "index/19723/fake/ingester-0-1704067200500.sqlite",
        "index/19723/other/ingester-0-1704067200500.sqlite",
    ]
    assert [info.key for info in await store.list("index/")] == uploaded
    local = [p for p in (tmp_path / "index").rglob("*") if p.is_file()]
    assert local == []  # heads and sealed files are gone once uploaded
    assert await shipper.seal_and_upload() == []


async def test_failed_upload_keeps_the_file_for_the_next_attempt(tmp_path: pathlib.Path) -> None:
    store = FlakyStore(tmp_path / "objects")
    shipper = shipper_for(tmp_path, store)
    labels, fp = stream('{app="api"}')
    await shipper.head.add_chunk("fake", fp, labels, T0, T0, "k1", 1, 1)
    store.down = True

    with pytest.raises(objstore.StorageError, match="1 index file"):
        await shipper.seal_and_upload()
    sealed = tmp_path / "index/sealed/19723/fake/ingester-0-1704067200500.sqlite"
    assert sealed.is_file()

    # Rows added meanwhile go to a new head and a second file.
    await shipper.head.add_chunk("fake", fp, labels, T0 + 1, T0 + 1, "k2", 1, 1)
    store.down = False
    uploaded = await shipper.seal_and_upload()
    assert uploaded == [
        "index/19723/fake/ingester-0-1704067200500.sqlite",
        "index/19723/fake/ingester-0-1704067200501.sqlite",
    ]
    assert not sealed.exists()


async def test_run_ships_periodically_until_cancelled(tmp_path: pathlib.Path) -> None:
    store = filesystem.FilesystemStore(tmp_path / "objects")
    shipper = index_shipper.IndexShipper(
        store, tmp_path / "index", "ing", datetime.timedelta(milliseconds=20)
    )
    labels, fp = stream('{app="api"}')
    task = asyncio.create_task(shipper.run())
    try:
        await shipper.head.add_chunk("fake", fp, labels, T0, T0, "k1", 1, 1)
        for _ in range(200):
            if await store.list("index/19723/fake/"):
                break
            await asyncio.sleep(0.01)
        assert len(await store.list("index/19723/fake/")) == 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (19_723 * 86_400 + 3_600, 900.0),  # mid-day: the seal period
        (19_724 * 86_400 - 10, 11.0),  # 10 s before midnight: just after the period ends
        (19_724 * 86_400, 900.0),
    ],
)
def test_next_seal_is_at_period_end_when_sooner(
    tmp_path: pathlib.Path, now: float, expected: float
) -> None:
    shipper = index_shipper.IndexShipper(
        filesystem.FilesystemStore(tmp_path),
        tmp_path / "index",
        "ing",
        datetime.timedelta(minutes=15),
        clock=lambda: now,
    )
    assert shipper._seconds_to_next_seal() == pytest.approx(expected)


def test_constructor_validates(tmp_path: pathlib.Path) -> None:
    store = filesystem.FilesystemStore(tmp_path)
    with pytest.raises(ValueError, match="seal period"):
        index_shipper.IndexShipper(store, tmp_path, "ing", datetime.timedelta(0))
    with pytest.raises(ValueError, match="ingester ID"):
        index_shipper.IndexShipper(store, tmp_path, "a/b", datetime.timedelta(minutes=1))
