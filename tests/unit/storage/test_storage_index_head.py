"""IndexHead: rows land in per-(tenant, period) SQLite heads and seal into immutable files."""

from __future__ import annotations

import pathlib
import sqlite3

import pytest
from lokistack.model import fingerprint as model_fingerprint
from lokistack.model import labels as model_labels
from lokistack.storage import index_format, index_head

DAY = index_format.DAY_NS
T0 = 19_723 * DAY  # 2024-01-01T00:00:00Z


def stream(text: str) -> tuple[str, int]:
    canonical = model_labels.canonical(model_labels.parse_labels(text))
    return canonical, model_fingerprint.fingerprint(canonical)


def rows(path: pathlib.Path, sql: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(path)
    try:
        return list(connection.execute(sql))
    finally:
        connection.close()


async def test_add_chunk_writes_series_postings_and_chunks(tmp_path: pathlib.Path) -> None:
    head = index_head.IndexHead(tmp_path)
    labels, fp = stream('{app="api", env="prod"}')
    await head.add_chunk("fake", fp, labels, T0 + 10, T0 + 20, "k1", 100, 5)
    await head.add_chunk("fake", fp, labels, T0 + 30, T0 + 40, "k2", 200, 6)
    await head.add_chunk("fake", fp, labels, T0 + 30, T0 + 40, "k2", 200, 6)  # re-flush
    head.close()

    path = tmp_path / "heads" / "19723" / "fake.sqlite"
    stored_fp = index_format.fingerprint_to_sql(fp)
    assert rows(path, "SELECT fingerprint, labels FROM series") == [(stored_fp, labels)]
    assert rows(path, "SELECT name, value, fingerprint FROM postings ORDER BY name") == [
        ("app", "api", stored_fp),
        ("env", "prod", stored_fp),
    ]
    assert rows(path, 'SELECT key, "from", "through", size, entries FROM chunks ORDER BY key') == [
        ("k1", T0 + 10, T0 + 20, 100, 5),
        ("k2", T0 + 30, T0 + 40, 200, 6),
    ]
    assert rows(path, "SELECT name, value FROM meta ORDER BY name") == [
        ("period", "19723"),
        ("tenant", "fake"),
    ]


async def test_chunk_across_midnight_is_in_both_periods(tmp_path: pathlib.Path) -> None:
    head = index_head.IndexHead(tmp_path)
    labels, fp = stream('{app="api"}')
    await head.add_chunk("fake", fp, labels, T0 - 60, T0 + 60, "k", 1, 1)
    head.close()
    for period in (19722, 19723):
        path = tmp_path / "heads" / str(period) / "fake.sqlite"
        assert rows(path, "SELECT key FROM chunks") == [("k",)]
        assert rows(path, "SELECT count(*) FROM postings") == [(1,)]


async def test_tenants_have_separate_heads(tmp_path: pathlib.Path) -> None:
    head = index_head.IndexHead(tmp_path)
    labels, fp = stream('{app="api"}')
    await head.add_chunk("a", fp, labels, T0, T0, "ka", 1, 1)
    await head.add_chunk("b", fp, labels, T0, T0, "kb", 1, 1)
    head.close()
    assert rows(tmp_path / "heads/19723/a.sqlite", "SELECT key FROM chunks") == [("ka",)]
    assert rows(tmp_path / "heads/19723/b.sqlite", "SELECT key FROM chunks") == [("kb",)]


async def test_seal_writes_an_immutable_file_and_drops_the_head(tmp_path: pathlib.Path) -> None:
    head = index_head.IndexHead(tmp_path)
    labels, fp = stream('{app="api"}')
    await head.add_chunk("fake", fp, labels, T0, T0 + 1, "k1", 1, 1)

    sealed = head.seal("ingester-0", 1_704_067_200_123)

    expected = tmp_path / "sealed" / "19723" / "fake" / "ingester-0-1704067200123.sqlite"
    assert sealed == [expected]
    assert not list((tmp_path / "heads").rglob("*.sqlite*"))
    connection = sqlite3.connect(f"file:{expected}?mode=ro&immutable=1", uri=True)
    try:
        index_format.check_file(connection, "sealed")
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert list(connection.execute("SELECT key FROM chunks")) == [("k1",)]
    finally:
        connection.close()

    # The next chunk starts a new head, sealed into a new file.
    await head.add_chunk("fake", fp, labels, T0 + 2, T0 + 3, "k2", 1, 1)
    assert head.seal("ingester-0", 1_704_067_200_123) == [
        expected.with_name("ingester-0-1704067200124.sqlite")
    ]
    assert rows(
        expected.with_name("ingester-0-1704067200124.sqlite"), "SELECT key FROM chunks"
    ) == [("k2",)]
    assert head.seal("ingester-0") == []


async def test_heads_left_by_a_previous_process_are_sealed(tmp_path: pathlib.Path) -> None:
    first = index_head.IndexHead(tmp_path)
    labels, fp = stream('{app="api"}')
    await first.add_chunk("fake", fp, labels, T0, T0, "k1", 1, 1)
    first.close()  # or killed: WAL mode keeps committed rows

    restarted = index_head.IndexHead(tmp_path)
    await restarted.add_chunk("fake", fp, labels, T0 + 5, T0 + 6, "k2", 1, 1)
    await restarted.add_chunk("other", fp, labels, T0, T0, "k3", 1, 1)
    restarted.close()
    sealed = index_head.IndexHead(tmp_path).seal("ing", 7)

    assert sorted(p.relative_to(tmp_path).as_posix() for p in sealed) == [
        "sealed/19723/fake/ing-7.sqlite",
        "sealed/19723/other/ing-7.sqlite",
    ]
    fake = tmp_path / "sealed/19723/fake/ing-7.sqlite"
    assert rows(fake, "SELECT key FROM chunks ORDER BY key") == [("k1",), ("k2",)]
    assert rows(fake, "SELECT count(*) FROM series") == [(1,)]


async def test_head_without_chunks_is_deleted_without_a_file(tmp_path: pathlib.Path) -> None:
    empty = tmp_path / "heads" / "19723" / "fake.sqlite"
    empty.parent.mkdir(parents=True)
    connection = sqlite3.connect(empty)
    connection.executescript(index_format.SCHEMA)
    connection.close()
    assert index_head.IndexHead(tmp_path).seal("ing", 1) == []
    assert not empty.exists()


async def test_unreadable_head_is_moved_aside(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "heads" / "19723" / "fake.sqlite"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"this is not a database" * 100)
    assert index_head.IndexHead(tmp_path).seal("ing", 1) == []
    assert not bad.exists()
    assert len(list(bad.parent.glob("fake.sqlite.corrupt-*"))) == 1


async def test_unsigned_fingerprints_and_non_utf8_values(tmp_path: pathlib.Path) -> None:
    head = index_head.IndexHead(tmp_path)
    labels = model_labels.canonical(model_labels.parse_labels('{app="\\xff"}'))
    assert labels == '{app="\\xff"}'
    fp = (1 << 64) - 1
    await head.add_chunk("fake", fp, labels, T0, T0, "k", 1, 1)
    head.close()
    path = tmp_path / "heads/19723/fake.sqlite"
    assert rows(path, "SELECT fingerprint FROM series") == [(-1,)]
    assert rows(path, "SELECT value FROM postings") == [(b"\xff",)]


@pytest.mark.parametrize(
    ("labels", "error"),
    [
        ('{env="prod", app="api"}', "canonical"),  # not sorted
        ('{app="api",env="prod"}', "canonical"),  # spacing
        ("{app=", "parse error"),
    ],
)
async def test_non_canonical_labels_are_rejected(
    tmp_path: pathlib.Path, labels: str, error: str
) -> None:
    head = index_head.IndexHead(tmp_path)
    with pytest.raises(ValueError, match=error):
        await head.add_chunk("fake", 1, labels, T0, T0, "k", 1, 1)
    assert head.seal("ing", 1) == []


@pytest.mark.parametrize(
    ("tenant", "from_ns", "through_ns", "size"),
    [("", 0, 1, 1), ("a/b", 0, 1, 1), ("t", 2, 1, 1), ("t", -1, 1, 1), ("t", 0, 1, -1)],
)
async def test_invalid_arguments(
    tmp_path: pathlib.Path, tenant: str, from_ns: int, through_ns: int, size: int
) -> None:
    head = index_head.IndexHead(tmp_path)
    with pytest.raises(ValueError, match="invalid"):
        await head.add_chunk(tenant, 1, '{a="b"}', from_ns, through_ns, "k", size, 1)


def test_ingester_id_must_be_a_file_name(tmp_path: pathlib.Path) -> None:
    head = index_head.IndexHead(tmp_path)
    for bad in ("", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="ingester ID"):
            head.seal(bad)
