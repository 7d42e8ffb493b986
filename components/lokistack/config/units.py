"""Durations and byte sizes as Loki users write them in YAML and flags.

Loki's configuration takes Go/Prometheus durations (``30s``, ``1h30m``, ``168h``, ``500ms``) and
byte sizes with binary units (``256KB`` is 262144 bytes, as in Loki's ``flagext.ByteSize``).
Users copy values between Loki's documentation and ours, so we accept the same spellings, plus
decimals (``1.5MB``, ``1.5h``) and the explicit IEC units (``100MiB``).

The formatters give one canonical spelling, so that rendering a config and loading it back yields
an equal value (the operator renders configs into ConfigMaps and hashes them).  These helpers are
pure: they raise :class:`ValueError`, and the loader turns that into an error naming the key.
"""

from __future__ import annotations

import datetime
import decimal
import re

_NS_PER_US = 1_000

# Longest units first so that "ms" is not read as "m" followed by "s".
_DURATION_UNITS_NS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # Go accepts the micro sign
    "μs": 1_000,  # and the Greek letter mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3_600 * 1_000_000_000,
    "d": 86_400 * 1_000_000_000,
    "w": 7 * 86_400 * 1_000_000_000,
    "y": 365 * 86_400 * 1_000_000_000,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|w|y)")

# Components used when formatting, largest first.  Days and weeks are left out on purpose: Loki's
# documentation writes 168h and 721h, and hours never hide a daylight-saving ambiguity.
_FORMAT_UNITS_US: tuple[tuple[str, int], ...] = (
    ("h", 3_600_000_000),
    ("m", 60_000_000),
    ("s", 1_000_000),
    ("ms", 1_000),
    ("us", 1),
)

_KIB = 1024
_BYTE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": _KIB,
    "kb": _KIB,
    "kib": _KIB,
    "m": _KIB**2,
    "mb": _KIB**2,
    "mib": _KIB**2,
    "g": _KIB**3,
    "gb": _KIB**3,
    "gib": _KIB**3,
    "t": _KIB**4,
    "tb": _KIB**4,
    "tib": _KIB**4,
    "p": _KIB**5,
    "pb": _KIB**5,
    "pib": _KIB**5,
    "e": _KIB**6,
    "eb": _KIB**6,
    "eib": _KIB**6,
}
# Lower-case "b" after a prefix means bits in the usual notation; Loki's parser refuses these too.
_BIT_UNITS = frozenset({"Kb", "Mb", "Gb", "Tb", "Pb", "Eb"})
_BYTES_PATTERN = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)")
_FORMAT_BYTE_UNITS: tuple[tuple[str, int], ...] = (
    ("EB", _KIB**6),
    ("PB", _KIB**5),
    ("TB", _KIB**4),
    ("GB", _KIB**3),
    ("MB", _KIB**2),
    ("KB", _KIB),
)


def parse_duration(text: str) -> datetime.timedelta:
    """Parse a Go/Prometheus duration such as ``1h30m`` or ``500ms`` into a timedelta.

    ``0`` alone is allowed without a unit, as in Go.  Negative durations are refused: no setting
    in this schema means anything with them.  Values finer than a microsecond (timedelta's
    resolution) are refused rather than silently rounded.
    """
    s = text.strip()
    if s == "0":
        return datetime.timedelta(0)
    if not s:
        raise ValueError("empty duration")
    if s.startswith("-"):
        raise ValueError("durations cannot be negative")
    s = s.removeprefix("+")
    total_ns = decimal.Decimal(0)
    pos = 0
    while pos < len(s):
        match = _DURATION_PART.match(s, pos)
        if match is None:
            raise ValueError("expected a number followed by a unit (ns, us, ms, s, m, h, d, w, y)")
        total_ns += decimal.Decimal(match.group(1)) * _DURATION_UNITS_NS[match.group(2)]
        pos = match.end()
    if total_ns % _NS_PER_US:
        raise ValueError("durations finer than a microsecond are not supported")
    try:
        return datetime.timedelta(microseconds=int(total_ns) // _NS_PER_US)
    except OverflowError:
        raise ValueError("duration is too long") from None


def format_duration(value: datetime.timedelta) -> str:
    """Render a timedelta canonically: ``168h``, ``1h30m``, ``1s500ms``, ``0s``."""
    total_us = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    if total_us < 0:
        raise ValueError("durations cannot be negative")
    if total_us == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in _FORMAT_UNITS_US:
        count, total_us = divmod(total_us, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_bytes(text: str) -> int:
    """Parse a byte size such as ``262144``, ``256KB``, ``1.5MB`` or ``100MiB`` into bytes.

    Units are binary whatever their spelling (KB = KiB = 1024 bytes), as in Loki.  Units are
    case-insensitive except the bit spellings (``Mb``), which are refused.  A decimal must come to
    a whole number of bytes.
    """
    match = _BYTES_PATTERN.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            "expected a whole number of bytes or a number with a unit (KB, MB, GB, TB)"
        )
    number, unit = match.groups()
    if unit in _BIT_UNITS:
        raise ValueError(f"'{unit}' means bits; write {unit[0]}B for bytes")
    multiplier = _BYTE_UNITS.get(unit.lower())
    if multiplier is None:
        raise ValueError(f"unknown size unit '{unit}' (use B, KB, MB, GB, TB, PB, EB)")
    amount = decimal.Decimal(number) * multiplier
    if amount != amount.to_integral_value():
        raise ValueError("size is not a whole number of bytes")
    return int(amount)


def format_bytes(value: int) -> str:
    """Render a byte count with the largest exact binary unit: ``256KB``, ``1536KB``, ``100B``."""
    if value < 0:
        raise ValueError("sizes cannot be negative")
    if value == 0:
        return "0B"
    for unit, size in _FORMAT_BYTE_UNITS:
        if value % size == 0:
            return f"{value // size}{unit}"
    return f"{value}B"
