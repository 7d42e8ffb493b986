"""Merging replicas and stored chunks: order across streams, each distinct entry once."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st
from lokistack.iter import entries

E = entries.Entry


def _labels(name: str) -> tuple[tuple[str, str], ...]:
    return (("stream", name),)


def test_merges_streams_in_both_directions() -> None:
    a = [E(_labels('{a="1"}'), 1, "a1"), E(_labels('{a="1"}'), 3, "a3")]
    b = [E(_labels('{a="2"}'), 2, "b2"), E(_labels('{a="2"}'), 3, "b3")]
    forward = list(entries.merge([iter(a), iter(b)], "forward"))
    assert [e.line for e in forward] == ["a1", "b2", "a3", "b3"]
    backward = list(entries.merge([iter(a[::-1]), iter(b[::-1])], "backward"))
    assert [e.line for e in backward] == ["b3", "a3", "b2", "a1"]


def test_replicas_with_different_order_at_one_timestamp_are_deduplicated() -> None:
    replica_a = [E(_labels("{s}"), 5, "x"), E(_labels("{s}"), 5, "y"), E(_labels("{s}"), 6, "z")]
    replica_b = [E(_labels("{s}"), 5, "y"), E(_labels("{s}"), 5, "x"), E(_labels("{s}"), 6, "z")]
    merged = list(entries.merge([iter(replica_a), iter(replica_b)], "forward"))
    assert [(e.ts, e.line) for e in merged] == [(5, "x"), (5, "y"), (6, "z")]


def test_same_line_in_different_streams_or_metadata_is_kept() -> None:
    merged = list(
        entries.merge(
            [
                iter([E(_labels("{a}"), 1, "x"), E(_labels("{a}"), 1, "x", (("k", "v"),))]),
                iter([E(_labels("{b}"), 1, "x")]),
            ],
            "forward",
        )
    )
    assert len(merged) == 3


def test_take_cuts_at_the_limit() -> None:
    stream = (E(_labels("{a}"), ts, str(ts)) for ts in range(10))
    assert [e.ts for e in entries.take(stream, 3)] == [0, 1, 2]
    assert len(entries.take(iter([E(_labels("{a}"), 1, "x")]), 0)) == 1


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["{a}", "{b}", "{c}"]),
            st.integers(0, 20),
            st.sampled_from(["p", "q", "r"]),
        ),
        max_size=60,
    ),
    st.integers(1, 3),
    st.sampled_from(["forward", "backward"]),
)
def test_merge_equals_the_sorted_distinct_set(
    raw: list[tuple[str, int, str]], replicas: int, direction: entries.Direction
) -> None:
    distinct = {E(_labels(labels), ts, line) for labels, ts, line in raw}
    rng = random.Random(len(raw))
    sources = []
    for _ in range(replicas):
        for labels in ("{a}", "{b}", "{c}"):
            mine = [e for e in distinct if e.labels == _labels(labels)]
            rng.shuffle(mine)  # arrival order within a timestamp differs per replica
            mine.sort(key=lambda e: e.ts, reverse=direction == "backward")
            sources.append(iter(mine))
    merged = list(entries.merge(sources, direction))
    assert sorted(merged) == sorted(distinct)
    timestamps = [e.ts for e in merged]
    assert timestamps == sorted(timestamps, reverse=direction == "backward")
