"""IndexReader: matchers with Prometheus semantics, time overlap, merging, and the file cache."""

from __future__ import annotations

import asyncio
import datetime
import pathlib
import tempfile
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lokistack.model import fingerprint as model_fingerprint
from lokistack.model import labels as model_labels
from lokistack.storage import filesystem, index_format, index_reader, index_shipper, objstore

DAY = index_format.DAY_NS
T0 = 19_723 * DAY
M = index_reader.Matcher

SERIES = {
    "api-prod": '{app="api", env="prod"}',
    "api-dev": '{app="api", env="dev", team="x"}',
    "web": '{app="web"}',
    "batch": '{job="batch"}',
    "multi": '{app="a\\nb"}',
}


class CountingStore(filesystem.FilesystemStore):
    def __init__(self, root: pathlib.Path) -> None:
        super().__init__(root)
        self.gets = 0

    async def get(self, key: str) -> bytes:
        self.gets += 1
        return await super().get(key)


def stream(text: str) -> tuple[str, int]:
    canonical = model_labels.canonical(model_labels.parse_labels(text))
    return canonical, model_fingerprint.fingerprint(canonical)


async def ship(
    store: objstore.ObjectStore,
    index_dir: pathlib.Path,
    chunks: list[tuple[str, str, int, int, str]],
    ingester: str = "ing-0",
) -> list[str]:
    """Record (tenant, labels, from, through, key) chunks in a head and upload them."""
    shipper = index_shipper.IndexShipper(store, index_dir, ingester, datetime.timedelta(minutes=15))
    for tenant, text, from_ns, through_ns, key in chunks:
        labels, fp = stream(text)
        await shipper.head.add_chunk(tenant, fp, labels, from_ns, through_ns, key, 10, 2)
    return await shipper.seal_and_upload()


@pytest.fixture
def store(tmp_path: pathlib.Path) -> CountingStore:
    return CountingStore(tmp_path / "objects")


@pytest.fixture
async def reader(tmp_path: pathlib.Path, store: CountingStore) -> index_reader.IndexReader:
    await ship(
        store,
        tmp_path / "index",
        [("fake", text, T0 + 100, T0 + 200, f"k-{name}") for name, text in SERIES.items()],
    )
    return index_reader.IndexReader(store, tmp_path / "cache")


async def names(reader: index_reader.IndexReader, *matchers: index_reader.Matcher) -> set[str]:
    by_labels = {stream(text)[0]: name for name, text in SERIES.items()}
    found = await reader.series("fake", T0, T0 + DAY - 1, list(matchers))
    return {by_labels[series.labels] for series in found}


@pytest.mark.parametrize(
    ("matchers", "expected"),
    [
        ([M("app", "=", "api")], {"api-prod", "api-dev"}),
        ([M("app", "=", "api"), M("env", "=", "prod")], {"api-prod"}),
        ([M("app", "!=", "api")], {"web", "batch", "multi"}),
        ([M("app", "=~", "api|web")], {"api-prod", "api-dev", "web"}),
        ([M("app", "=~", "ap")], set()),  # fully anchored
        ([M("app", "=~", "a.*")], {"api-prod", "api-dev", "multi"}),
        ([M("app", "=~", "a.b")], {"multi"}),  # . matches a newline
        ([M("app", "!~", "a.*")], {"web", "batch"}),
        ([M("team", "=", "")], {"api-prod", "web", "batch", "multi"}),  # absent label
        ([M("team", "!=", "")], {"api-dev"}),  # label required
        ([M("env", "=~", "prod|")], {"api-prod", "web", "batch", "multi"}),
        ([M("env", "=~", ".+")], {"api-prod", "api-dev"}),
        ([M("env", "!~", ".+")], {"web", "batch", "multi"}),
        ([M("env", "!~", "")], {"api-prod", "api-dev"}),
        ([M("missing", "=", "x")], set()),
        ([M("missing", "!=", "x")], set(SERIES)),
        ([M("job", "=", "batch"), M("app", "=", "")], {"batch"}),
        ([], set(SERIES)),
    ],
)
async def test_matcher_semantics(
    reader: index_reader.IndexReader, matchers: list[index_reader.Matcher], expected: set[str]
) -> None:
    assert await names(reader, *matchers) == expected


async def test_result_shape(reader: index_reader.IndexReader) -> None:
    found = await reader.series("fake", T0, T0 + 1000, [M("app", "=", "web")])
    labels, fp = stream(SERIES["web"])
    assert found == [
        index_reader.SeriesRef(
            fp, labels, [index_reader.ChunkRef("k-web", T0 + 100, T0 + 200, 10, 2)]
        )
    ]


@pytest.mark.parametrize(
    ("from_ns", "through_ns", "hit"),
    [
        (T0 + 200, T0 + 300, True),  # touches the chunk's last entry
        (T0, T0 + 100, True),  # touches its first entry
        (T0 + 150, T0 + 160, True),  # inside
        (T0 + 201, T0 + 300, False),
        (T0, T0 + 99, False),
        (T0 - DAY, T0 - 1, False),  # another period
        (T0 + 300, T0 + 100, False),  # empty range
    ],
)
async def test_time_range_overlap_is_inclusive(
    reader: index_reader.IndexReader, from_ns: int, through_ns: int, hit: bool
) -> None:
    found = await reader.series("fake", from_ns, through_ns, [M("app", "=", "web")])
    assert bool(found) is hit


async def test_refs_are_merged_across_files_and_periods(
    tmp_path: pathlib.Path, store: CountingStore
) -> None:
    crossing = ("fake", '{app="api"}', T0 - 50, T0 + 50, "k-cross")
    # Two replicas record the same chunk; one of them also a later chunk.
    await ship(store, tmp_path / "i0", [crossing], ingester="ing-0")
    await ship(store, tmp_path / "i1", [crossing, ("fake", '{app="api"}', T0 + 60, T0 + 70, "k2")])
    assert len(await store.list("index/")) == 4

    reader = index_reader.IndexReader(store, tmp_path / "cache")
    found = await reader.series("fake", T0 - DAY, T0 + DAY, [M("app", "=", "api")])

    assert len(found) == 1
    assert [chunk.key for chunk in found[0].chunks] == ["k-cross", "k2"]


async def test_tenants_are_isolated(tmp_path: pathlib.Path, store: CountingStore) -> None:
    await ship(
        store, tmp_path / "i", [("a", '{app="x"}', T0, T0, "ka"), ("b", '{app="x"}', T0, T0, "kb")]
    )
    reader = index_reader.IndexReader(store, tmp_path / "cache")
    found = await reader.series("a", T0, T0, [M("app", "=", "x")])
    assert [chunk.key for series in found for chunk in series.chunks] == ["ka"]
    assert await reader.series("c", T0, T0, []) == []


async def test_files_are_downloaded_once_and_evicted_when_gone(
    tmp_path: pathlib.Path, store: CountingStore, reader: index_reader.IndexReader
) -> None:
    await reader.series("fake", T0, T0 + DAY - 1, [])
    await reader.series("fake", T0, T0 + DAY - 1, [])
    assert store.gets == 1
    (key,) = [info.key for info in await store.list("index/")]
    cached = tmp_path / "cache" / key
    assert cached.is_file()

    # A second reader on the same cache directory reuses the file.
    again = index_reader.IndexReader(store, tmp_path / "cache")
    assert len(await again.series("fake", T0, T0 + DAY - 1, [])) == len(SERIES)
    assert store.gets == 1

    # The compactor replaced the file: the cached copy goes too.
    await store.delete(key)
    assert await reader.series("fake", T0, T0 + DAY - 1, []) == []
    assert not cached.exists()


async def test_unsigned_fingerprint_round_trip(
    tmp_path: pathlib.Path, store: CountingStore
) -> None:
    shipper = index_shipper.IndexShipper(
        store, tmp_path / "i", "ing", datetime.timedelta(minutes=1)
    )
    await shipper.head.add_chunk("fake", (1 << 64) - 2, '{app="\\xff"}', T0, T0, "k", 1, 1)
    await shipper.seal_and_upload()
    reader = index_reader.IndexReader(store, tmp_path / "cache")
    (found,) = await reader.series("fake", T0, T0, [M("app", "=", "\udcff")])
    assert found.fingerprint == (1 << 64) - 2
    assert await reader.series("fake", T0, T0, [M("app", "=~", "\ufffd")]) == [found]


async def test_foreign_file_is_refused(tmp_path: pathlib.Path, store: CountingStore) -> None:
    await store.put("index/19723/fake/x-1.sqlite", b"not sqlite" * 200)
    reader = index_reader.IndexReader(store, tmp_path / "cache")
    with pytest.raises(Exception, match=r"not a database|not a Lokistack index"):
        await reader.series("fake", T0, T0, [])


def test_matcher_validation() -> None:
    with pytest.raises(ValueError, match="invalid regular expression"):
        M("a", "=~", "(")
    with pytest.raises(ValueError, match="operator"):
        M("a", "==", "b")  # type: ignore[arg-type]
    assert M("a", "=~", "x") == M("a", "=~", "x")


label_values = st.sampled_from(["", "a", "b", "ab", "a\nb", "é"])
label_sets = st.fixed_dictionaries({"x": label_values, "y": label_values})
matchers = st.builds(
    M,
    st.sampled_from(["x", "y", "z"]),
    st.sampled_from(index_reader.MATCH_OPS),
    st.sampled_from(["", "a", "b", "a.*", ".+", "a|", "é|b"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(label_sets, min_size=1, max_size=6), st.lists(matchers, max_size=3))
def test_sql_agrees_with_the_matcher_definition(
    sets: list[dict[str, str]], query: list[index_reader.Matcher]
) -> None:
    """The SQL translation selects exactly the series a direct evaluation selects."""
    texts = sorted(
        {
            model_labels.canonical(model_labels.normalize([*labels.items(), ("i", "1")]))
            for labels in sets
        }
    )
    expected = {
        text
        for text in texts
        if all(m.matches(model_labels.get(model_labels.parse_labels(text), m.name)) for m in query)
    }

    async def run(root: pathlib.Path) -> set[str]:
        store = filesystem.FilesystemStore(root / "objects")
        chunks = [("t", text, T0, T0, f"k{n}") for n, text in enumerate(texts)]
        await ship(store, root / "index", chunks)
        reader = index_reader.IndexReader(store, root / "cache")
        return {series.labels for series in await reader.series("t", T0, T0, query)}

    with tempfile.TemporaryDirectory() as root:
        assert asyncio.run(run(pathlib.Path(root))) == expected


async def test_open_ended_range_lists_only_up_to_tomorrow(
    tmp_path: pathlib.Path, store: CountingStore
) -> None:
    listed: list[str] = []

    class ListingStore(CountingStore):
        async def list(self, prefix: str) -> list[objstore.ObjectInfo]:
            listed.append(prefix)
            return await super().list(prefix)

    reader = index_reader.IndexReader(ListingStore(tmp_path / "objects"), tmp_path / "cache")
    now = time.time_ns()
    assert await reader.series("fake", now - DAY, (1 << 63) - 1, []) == []
    assert len(listed) in (3, 4)  # yesterday..tomorrow
