"""Go's number, duration and byte-size syntaxes, and the embedded-language checks."""

from __future__ import annotations

import ipaddress
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lokistack.logql.syntax import checks, units

S = units.NS_PER_S


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("5m", 300 * S),
        ("1h30m", 5400 * S),
        ("1y2w3d", (365 + 17) * 86400 * S),
        ("1s500ms", 1500 * S // 1000),
    ],
)
def test_prometheus_durations(text: str, ns: int) -> None:
    assert units.parse_prometheus_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration string"),
        ("1.5h", 'unknown unit "." in duration "1.5h"'),
        ("5minutes", 'unknown unit "minutes" in duration "5minutes"'),
        ("1m1h", 'not a valid duration string: "1m1h"'),
        ("-1m", 'not a valid duration string: "-1m"'),
        ("300y", "duration out of range"),
    ],
)
def test_prometheus_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$".replace("(", "\\(").replace(".", "\\.")):
        units.parse_prometheus_duration(text)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1.5h", 5400 * S),
        ("-1h30m", -5400 * S),
        ("300us", 300_000),
        ("2µs", 2000),
        ("+0", 0),
        ("1h0.0m0s", 3600 * S),
        (".5s", S // 2),
        ("1.000000001s", S + 1),
    ],
)
def test_go_durations(text: str, ns: int) -> None:
    assert units.parse_go_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1", 'time: missing unit in duration "1"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("", 'time: invalid duration ""'),
        (".s", 'time: invalid duration ".s"'),
    ],
)
def test_go_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        units.parse_go_duration(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1500, "1.5µs"),
        (250_000_000, "250ms"),
        (90 * S, "1m30s"),
        (3600 * S, "1h0m0s"),
        (-S // 2, "-500ms"),
        (100 * 3600 * S + 1, "100h0m0.000000001s"),
    ],
)
def test_go_duration_text(ns: int, text: str) -> None:
    assert units.format_go_duration(ns) == text


@given(st.integers(-(2**63) + 1, 2**63 - 1))
def test_go_duration_text_parses_back(ns: int) -> None:
    assert units.parse_go_duration(units.format_go_duration(ns)) == ns


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (90 * S, "1m30s"),
        (86400 * S * 14, "2w"),
        (86400 * S * 15, "15d"),
        (365 * 86400 * S, "1y"),
        (S // 1000, "1ms"),
    ],
)
def test_prometheus_duration_text(ns: int, text: str) -> None:
    assert units.format_prometheus_duration(ns) == text


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("42", 42),
        ("1KB", 1000),
        ("1kb", 1000),
        ("1KiB", 1024),
        ("1.5MB", 1_500_000),
        ("2 GiB", 2 * 1024**3),
        ("1,000B", 1000),
        ("1Ki", 1024),
        ("1k", 1000),
    ],
)
def test_bytes(text: str, size: int) -> None:
    assert units.parse_bytes(text) == size


def test_bytes_errors_use_go_wording() -> None:
    with pytest.raises(ValueError, match=r'strconv\.ParseFloat: parsing "": invalid syntax'):
        units.parse_bytes("")
    with pytest.raises(ValueError, match="unhandled size name: zb"):
        units.parse_bytes("1ZB")


@given(st.integers(0, 2**53))
def test_bytes_text_is_exact(size: int) -> None:
    assert units.parse_bytes(units.format_bytes(size)) == size


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1.0),
        ("1.5e3", 1500.0),
        (".5", 0.5),
        ("0x1p3", 8.0),
        ("1_000", 1000.0),
        ("-Inf", -math.inf),
        ("017", 17.0),
    ],
)
def test_go_floats(text: str, value: float) -> None:
    assert units.parse_go_float(text) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0x10", "invalid syntax"),
        ("0o17", "invalid syntax"),
        ("1e400", "value out of range"),
        ("", "invalid syntax"),
        ("1__0", "invalid syntax"),
    ],
)
def test_go_float_errors(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        units.parse_go_float(text)
    assert str(info.value) == f'strconv.ParseFloat: parsing "{text}": {reason}'


@pytest.mark.parametrize(
    ("value", "v", "f"),
    [
        (5.0, "5", "5"),
        (1e6, "1e+06", "1000000"),
        (123456.0, "123456", "123456"),
        (1.5e-7, "1.5e-07", "0.00000015"),
        (0.0001, "0.0001", "0.0001"),
        (-2.5, "-2.5", "-2.5"),
        (math.inf, "+Inf", "+Inf"),
        (math.nan, "NaN", "NaN"),
    ],
)
def test_go_float_text(value: float, v: str, f: str) -> None:
    assert units.format_go_float(value) == v
    assert units.format_go_float_fixed(value) == f


def test_capture_names_read_the_pattern() -> None:
    assert checks.capture_names(r"(?P<a>x)(y)(?:z)(?<b>[(])\((?i)[[:alpha:](]\Q(\E(c)") == [
        "a",
        None,
        "b",
        None,
    ]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("1.2.3.4", ipaddress.ip_address("1.2.3.4")),
        ("10.1.2.3/8", ipaddress.ip_network("10.0.0.0/8")),
        ("::1-::9", (ipaddress.ip_address("::1"), ipaddress.ip_address("::9"))),
    ],
)
def test_ip_patterns(pattern: str, expected: checks.IPPattern) -> None:
    assert checks.parse_ip_pattern(pattern) == expected


@pytest.mark.parametrize(
    "pattern",
    ["", "bogus", "1.2.3.4/33", "1.2.3.9-1.2.3.4", "1.2.3.4-::1", " 1.2.3.4", "1.2.3.4/255.0.0.0"],
)
def test_bad_ip_patterns(pattern: str) -> None:
    with pytest.raises(ValueError, match="ip: invalid pattern"):
        checks.parse_ip_pattern(pattern)


def test_pattern_nodes() -> None:
    nodes = checks.parse_pattern("<ip> - <_> <3x> end")
    assert [(n.text, n.capture) for n in nodes] == [
        ("ip", True),
        (" - ", False),
        ("_", True),
        (" <3x> end", False),
    ]
