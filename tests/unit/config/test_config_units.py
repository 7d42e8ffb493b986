"""Durations and byte sizes: Loki's spellings parse, and rendering round-trips."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lokistack import config

td = datetime.timedelta

# timedelta's range, kept well inside what format/parse can represent exactly.
durations = st.timedeltas(min_value=td(0), max_value=td(days=100_000))
sizes = st.integers(min_value=0, max_value=2**63 - 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", td(0)),
        ("0s", td(0)),
        ("30s", td(seconds=30)),
        ("500ms", td(milliseconds=500)),
        ("1h30m", td(hours=1, minutes=30)),
        ("168h", td(hours=168)),
        ("721h", td(hours=721)),
        ("1.5h", td(minutes=90)),
        ("2d", td(days=2)),
        ("1w", td(weeks=1)),
        ("1y", td(days=365)),
        ("10us", td(microseconds=10)),
        ("10µs", td(microseconds=10)),
        ("1000ns", td(microseconds=1)),
        ("1m30s250ms", td(minutes=1, seconds=30, milliseconds=250)),
        (" 5m ", td(minutes=5)),
        ("+5s", td(seconds=5)),
    ],
)
def test_parse_duration(text: str, expected: datetime.timedelta) -> None:
    assert config.parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("5", "unit"),
        ("fast", "unit"),
        ("1x", "unit"),
        ("1h 30m", "unit"),
        ("-1s", "negative"),
        ("1ns", "microsecond"),
    ],
)
def test_parse_duration_rejects(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        config.parse_duration(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (td(0), "0s"),
        (td(hours=168), "168h"),
        (td(minutes=90), "1h30m"),
        (td(seconds=1.5), "1s500ms"),
        (td(microseconds=1), "1us"),
        (td(days=30), "720h"),
        (td(minutes=2), "2m"),
    ],
)
def test_format_duration(value: datetime.timedelta, expected: str) -> None:
    assert config.format_duration(value) == expected


def test_format_duration_rejects_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        config.format_duration(td(seconds=-1))


@given(durations)
def test_duration_round_trip(value: datetime.timedelta) -> None:
    text = config.format_duration(value)
    assert config.parse_duration(text) == value
    assert config.format_duration(config.parse_duration(text)) == text


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["h", "m", "s", "ms", "us"]))))
def test_duration_parts_add_up(parts: list[tuple[int, str]]) -> None:
    unit_us = {"h": 3_600_000_000, "m": 60_000_000, "s": 1_000_000, "ms": 1_000, "us": 1}
    text = "".join(f"{count}{unit}" for count, unit in parts) or "0"
    expected = td(microseconds=sum(count * unit_us[unit] for count, unit in parts))
    assert config.parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("262144", 262144),
        ("1B", 1),
        ("256KB", 262144),
        ("64kb", 65536),
        ("256KiB", 262144),
        ("1.5MB", 1572864),
        ("3 MB", 3 * 2**20),
        ("100MiB", 100 * 2**20),
        ("4GB", 4 * 2**30),
        ("1TB", 2**40),
        ("2M", 2 * 2**20),
    ],
)
def test_parse_bytes(text: str, expected: int) -> None:
    assert config.parse_bytes(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "expected"),
        ("fast", "expected"),
        ("-1KB", "expected"),
        ("10Mb", "bits"),
        ("10XB", "unknown size unit"),
        ("1.1B", "whole number"),
    ],
)
def test_parse_bytes_rejects(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        config.parse_bytes(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0B"),
        (100, "100B"),
        (1025, "1025B"),
        (262144, "256KB"),
        (1572864, "1536KB"),
        (3 * 2**20, "3MB"),
        (4 * 2**30, "4GB"),
    ],
)
def test_format_bytes(value: int, expected: str) -> None:
    assert config.format_bytes(value) == expected


@given(sizes)
def test_bytes_round_trip(value: int) -> None:
    text = config.format_bytes(value)
    assert config.parse_bytes(text) == value
    assert config.format_bytes(config.parse_bytes(text)) == text
