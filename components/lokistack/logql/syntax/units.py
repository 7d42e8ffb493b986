"""Go's number, duration and byte-size syntaxes, parsed and printed as Loki's Go code does.

LogQL literals are whatever Go's ``strconv.ParseFloat``, Prometheus' ``model.ParseDuration``, Go's
``time.ParseDuration`` and go-humanize's ``ParseBytes`` accept, and Loki's ``String()`` prints
them with Go's formatting. The lexer decides token boundaries by trying these parsers, so they
must accept exactly what Go accepts. The pipeline reuses them to convert label values at query
time (``| took > 1s``, ``unwrap bytes(size)``), with Go's error texts.

Durations are integer nanoseconds, as Go's ``time.Duration``.
"""

from __future__ import annotations

import decimal
import math
import re
from typing import Final

from lokistack.model import goquote

NS_PER_MS: Final = 1_000_000
NS_PER_S: Final = 1_000_000_000
_MAX_INT64: Final = (1 << 63) - 1

_PROM_UNITS: Final = {
    "ms": (7, NS_PER_MS),
    "s": (6, NS_PER_S),
    "m": (5, 60 * NS_PER_S),
    "h": (4, 3600 * NS_PER_S),
    "d": (3, 86400 * NS_PER_S),
    "w": (2, 7 * 86400 * NS_PER_S),
    "y": (1, 365 * 86400 * NS_PER_S),
}

_GO_UNITS: Final = {
    "ns": 1,
    "us": 1000,
    "\u00b5s": 1000,  # U+00B5 micro sign
    "\u03bcs": 1000,  # U+03BC Greek small letter mu
    "ms": NS_PER_MS,
    "s": NS_PER_S,
    "m": 60 * NS_PER_S,
    "h": 3600 * NS_PER_S,
}


def parse_prometheus_duration(text: str) -> int:
    """Prometheus ``model.ParseDuration``: ``1h30m``, ``5d``, ``1w``, ``0``; no fractions, signs."""
    if text == "0":
        return 0
    if text == "":
        raise ValueError("empty duration string")
    rest, total, last_pos = text, 0, 0
    invalid = f"not a valid duration string: {goquote.go_quote(text)}"
    while rest:
        digits = re.match(r"[0-9]*", rest)
        number = digits.group() if digits else ""
        if not number:
            raise ValueError(invalid)
        rest = rest[len(number) :]
        unit_match = re.match(r"[^0-9]*", rest)
        unit = unit_match.group() if unit_match else ""
        if not unit:
            raise ValueError(invalid)
        rest = rest[len(unit) :]
        if unit not in _PROM_UNITS:
            raise ValueError(
                f"unknown unit {goquote.go_quote(unit)} in duration {goquote.go_quote(text)}"
            )
        pos, mult = _PROM_UNITS[unit]
        if pos <= last_pos:
            raise ValueError(invalid)
        last_pos = pos
        value = int(number)
        if value > (1 << 63) // mult:
            raise ValueError("duration out of range")
        total += value * mult
        if total > _MAX_INT64:
            raise ValueError("duration out of range")
    return total


def parse_go_duration(text: str) -> int:  # noqa: PLR0912, PLR0915 - Go's ParseDuration
    """Go ``time.ParseDuration``: ``1.5h``, ``300ms``, ``-1h30m``, ``2us``; no days."""
    invalid = ValueError(f"time: invalid duration {goquote.go_quote(text)}")
    rest, negative = text, False
    if rest[:1] in ("-", "+"):
        negative = rest[0] == "-"
        rest = rest[1:]
    if rest == "0":
        return 0
    if rest == "":
        raise invalid
    total = 0
    while rest:
        if not (rest[0] == "." or "0" <= rest[0] <= "9"):
            raise invalid
        int_match = re.match(r"[0-9]*", rest)
        int_digits = int_match.group() if int_match else ""
        rest = rest[len(int_digits) :]
        value = int(int_digits) if int_digits else 0
        if value > 1 << 63:
            raise invalid
        frac_digits = ""
        if rest[:1] == ".":
            frac_match = re.match(r"[0-9]*", rest[1:])
            frac_digits = frac_match.group() if frac_match else ""
            rest = rest[1 + len(frac_digits) :]
            if not int_digits and not frac_digits:
                raise invalid
        unit_match = re.match(r"[^0-9.]*", rest)
        unit = unit_match.group() if unit_match else ""
        rest = rest[len(unit) :]
        if not unit:
            raise ValueError(f"time: missing unit in duration {goquote.go_quote(text)}")
        if unit not in _GO_UNITS:
            raise ValueError(
                f"time: unknown unit {goquote.go_quote(unit)} in duration {goquote.go_quote(text)}"
            )
        mult = _GO_UNITS[unit]
        if value > (1 << 63) // mult:
            raise invalid
        value *= mult
        if frac_digits:
            # Go keeps at most the fraction digits that fit an int64 and scales in float64.
            frac, scale = 0, 1.0
            for digit in frac_digits:
                if frac > (_MAX_INT64 - 9) // 10:
                    break
                frac = frac * 10 + int(digit)
                scale *= 10
            value += int(float(frac) * (float(mult) / scale))
            if value > 1 << 63:
                raise invalid
        total += value
        if total > 1 << 63:
            raise invalid
    if negative:
        return -total
    if total > _MAX_INT64:
        raise invalid
    return total


def parse_duration(text: str) -> int:
    """Loki's ``parseDuration``: the Prometheus syntax first, then Go's."""
    try:
        return parse_prometheus_duration(text)
    except ValueError:
        return parse_go_duration(text)


def _fraction(value: int, digits: int) -> str:
    """``value`` scaled down by ``10**digits`` with trailing zeros (and a bare dot) dropped."""
    whole, frac = divmod(value, 10**digits)
    if frac == 0:
        return str(whole)
    return f"{whole}." + f"{frac:0{digits}d}".rstrip("0")


def format_go_duration(ns: int) -> str:
    """Go ``time.Duration.String()``: ``1h0m0s``, ``1.5s``, ``250ms``, ``1µs``, ``0s``."""
    if ns == 0:
        return "0s"
    sign, value = ("-" if ns < 0 else ""), abs(ns)
    if value < NS_PER_S:
        if value < 1000:
            return f"{sign}{value}ns"
        if value < NS_PER_MS:
            return f"{sign}{_fraction(value, 3)}\u00b5s"
        return f"{sign}{_fraction(value, 6)}ms"
    seconds, nanos = divmod(value, NS_PER_S)
    out = _fraction((seconds % 60) * NS_PER_S + nanos, 9) + "s"
    minutes = seconds // 60
    if minutes:
        out = f"{minutes % 60}m" + out
        hours = minutes // 60
        if hours:
            out = f"{hours}h" + out
    return sign + out


def format_prometheus_duration(ns: int) -> str:
    """Prometheus ``model.Duration.String()`` (milliseconds resolution): ``5m``, ``1h30m``."""
    ms = ns // NS_PER_MS if ns >= 0 else -((-ns) // NS_PER_MS)
    if ms == 0:
        return "0s"
    sign, ms = ("-", -ms) if ms < 0 else ("", ms)
    out = []
    for unit, mult, exact in (
        ("y", 365 * 86400_000, True),
        ("w", 7 * 86400_000, True),
        ("d", 86400_000, False),
        ("h", 3600_000, False),
        ("m", 60_000, False),
        ("s", 1000, False),
        ("ms", 1, False),
    ):
        if exact and ms % mult != 0:
            continue
        count, ms = divmod(ms, mult)
        if count:
            out.append(f"{count}{unit}")
    return sign + "".join(out)


_BYTES_UNITS: Final = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "ki": 1024,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mi": 1024**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gi": 1024**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ti": 1024**4,
    "tib": 1024**4,
    "p": 1000**5,
    "pb": 1000**5,
    "pi": 1024**5,
    "pib": 1024**5,
    "e": 1000**6,
    "eb": 1000**6,
    "ei": 1024**6,
    "eib": 1024**6,
}


def parse_bytes(text: str) -> int:
    """go-humanize ``ParseBytes``: ``1.5MB``, ``10KiB``, ``42``, units case-insensitive."""
    match = re.match(r"[0-9.,]*", text)
    number = match.group() if match else ""
    unit = text[len(number) :].strip(" \t\n\r\v\f").lower()
    value = parse_go_float(number.replace(",", ""))
    if unit not in _BYTES_UNITS:
        raise ValueError(f"unhandled size name: {unit}")
    scaled = value * _BYTES_UNITS[unit]
    if scaled >= 2.0**64:
        raise ValueError(f"too large: {text}")
    return int(scaled)


_IEC_UNITS: Final = (("PiB", 1024**5), ("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2))
_SI_UNITS: Final = (("PB", 1000**5), ("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2))


def format_bytes(value: int) -> str:
    """A byte count in the largest unit that divides it exactly, so that it parses back equal.

    Loki prints ``humanize.Bytes`` (``1.5 kB``), which rounds; an exact form keeps printing and
    parsing a fixed point.
    """
    if value > 0:
        for unit, size in (*_IEC_UNITS, ("KiB", 1024)):
            if value % size == 0:
                return f"{value // size}{unit}"
        for unit, size in (*_SI_UNITS, ("kB", 1000)):
            if value % size == 0:
                return f"{value // size}{unit}"
    return f"{value}B"


_DECIMAL_FLOAT: Final = re.compile(r"(?:[0-9_]+\.?[0-9_]*|\.[0-9_]+)(?:[eE][+-]?[0-9_]+)?")
_HEX_FLOAT: Final = re.compile(
    r"0[xX](?:[0-9a-fA-F_]+\.?[0-9a-fA-F_]*|\.[0-9a-fA-F_]+)[pP][+-]?[0-9_]+"
)


def parse_go_float(text: str) -> float:
    """Go ``strconv.ParseFloat(text, 64)``, with its error texts."""
    body = text[1:] if text[:1] in ("+", "-") else text
    negative = text[:1] == "-"
    special = body.lower()
    if special in ("inf", "infinity"):
        return -math.inf if negative else math.inf
    if special == "nan":
        return math.nan
    result: float | None = None
    try:
        if _HEX_FLOAT.fullmatch(body):
            result = float.fromhex(body.replace("_", ""))
        elif _DECIMAL_FLOAT.fullmatch(body) and "__" not in body:
            result = float(body)
    except (ValueError, OverflowError):
        if _HEX_FLOAT.fullmatch(body):
            raise ValueError(
                f"strconv.ParseFloat: parsing {goquote.go_quote(text)}: value out of range"
            ) from None
        result = None
    quoted = goquote.go_quote(text)
    if result is None:
        raise ValueError(f"strconv.ParseFloat: parsing {quoted}: invalid syntax")
    if math.isinf(result):
        raise ValueError(f"strconv.ParseFloat: parsing {quoted}: value out of range")
    return -result if negative else result


def parse_go_int(text: str) -> int | None:
    """Go ``strconv.Atoi``: a decimal int64, or ``None`` where Go returns an error."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    value = int(text)
    return value if -(1 << 63) <= value <= _MAX_INT64 else None


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest round-tripping digits of ``abs(value)`` and the decimal point position."""
    sign_digits_exp = decimal.Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, sign_digits_exp.digits)).lstrip("0") or "0"
    exponent = int(sign_digits_exp.exponent)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    if not stripped:
        return "0", 1
    return stripped, len(stripped) + exponent


def _special(value: float) -> str | None:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return None


def _fixed(value: float) -> str:
    digits, point = _shortest_digits(value)
    if digits == "0":
        body = "0"
    elif point <= 0:
        body = "0." + "0" * -point + digits
    elif point >= len(digits):
        body = digits + "0" * (point - len(digits))
    else:
        body = digits[:point] + "." + digits[point:]
    return ("-" if math.copysign(1.0, value) < 0 else "") + body


def format_go_float(value: float) -> str:
    """Go ``fmt.Sprint(float64)`` (``%v``): ``5``, ``0.25``, ``1e+06``, ``1.5e-07``."""
    special = _special(value)
    if special is not None:
        return special
    digits, point = _shortest_digits(value)
    exponent = point - 1
    if digits != "0" and (exponent < -4 or exponent >= 6):
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        sign = "-" if value < 0 else ""
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return _fixed(value)


def format_go_float_fixed(value: float) -> str:
    """Go ``strconv.FormatFloat(v, 'f', -1, 64)``: shortest digits, never an exponent."""
    special = _special(value)
    return special if special is not None else _fixed(value)


def format_go_float_six(value: float) -> str:
    """Go ``fmt.Sprintf("%f", v)``, used in Loki's error texts (``1.000000``)."""
    special = _special(value)
    return special if special is not None else f"{value:.6f}"
