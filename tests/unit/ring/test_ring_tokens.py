"""Token generation and the tokens file."""

from __future__ import annotations

import json
import logging
import os
import pathlib
import random

import pytest
from lokistack.ring import model, tokens


class ScriptedRandom(random.Random):
    """A generator that returns the given values, to check what generate_tokens skips."""

    def __init__(self, values: list[int]) -> None:
        super().__init__(0)
        self._values = list(values)

    def getrandbits(self, k: int) -> int:
        assert k == 32
        return self._values.pop(0)


def test_generates_count_distinct_sorted_32_bit_tokens() -> None:
    drawn = tokens.generate_tokens(128, set(), random.Random(7))
    assert len(drawn) == 128
    assert drawn == sorted(set(drawn))
    assert all(0 <= token <= model.MAX_TOKEN for token in drawn)


def test_skips_taken_and_repeated_values() -> None:
    rng = ScriptedRandom([5, 9, 5, 1, 7, 3])
    assert tokens.generate_tokens(3, {9, 1}, rng) == [3, 5, 7]


def test_avoids_every_taken_token() -> None:
    taken = set(tokens.generate_tokens(1000, set(), random.Random(1)))
    drawn = tokens.generate_tokens(1000, taken, random.Random(1))  # same seed, same draws
    assert not taken & set(drawn)
    assert len(drawn) == 1000


def test_default_generators_differ_between_calls() -> None:
    assert tokens.generate_tokens(16, set()) != tokens.generate_tokens(16, set())


def test_zero_and_negative_counts() -> None:
    assert tokens.generate_tokens(0, set()) == []
    with pytest.raises(ValueError, match="negative"):
        tokens.generate_tokens(-1, set())


def test_file_round_trip_in_loki_format(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "nested" / "tokens.json"
    tokens.save_tokens(path, [30, 10, 20, 10])
    assert json.loads(path.read_text()) == {"tokens": [10, 20, 30]}
    assert tokens.load_tokens(path) == [10, 20, 30]
    tokens.save_tokens(path, [1])
    assert tokens.load_tokens(path) == [1]
    assert sorted(p.name for p in path.parent.iterdir()) == ["tokens.json"], "no temporary left"


def test_missing_file_is_none_without_warning(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert tokens.load_tokens(tmp_path / "absent.json") is None
    assert not caplog.records


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"[1, 2, 3]",
        b'{"tokens": "1,2"}',
        b'{"other": [1]}',
        b'{"tokens": [1, "2"]}',
        b'{"tokens": [1, true]}',
        b'{"tokens": [4294967296]}',
        b'{"tokens": [-1]}',
        b"\xff\xfe",
    ],
)
def test_corrupt_file_is_none_with_a_warning(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    path = tmp_path / "tokens.json"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="lokistack.ring.tokens"):
        assert tokens.load_tokens(path) is None
    assert any("tokens file" in record.getMessage() for record in caplog.records)


def test_failed_write_keeps_the_old_file(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tokens.json"
    tokens.save_tokens(path, [1, 2, 3])

    def broken_fsync(descriptor: int) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk on fire"):
        tokens.save_tokens(path, [4, 5, 6])
    assert tokens.load_tokens(path) == [1, 2, 3]
    assert [p.name for p in tmp_path.iterdir()] == ["tokens.json"]


def test_rejects_out_of_range_tokens(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="32-bit"):
        tokens.save_tokens(tmp_path / "t.json", [2**32])
