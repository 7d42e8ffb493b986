"""Query API request parameters, parsed and validated exactly as Loki's ``pkg/loghttp`` does.

Clients depend on the details: logcli sends float seconds, Grafana sends ``step=<N>ms`` and
millisecond epochs are (wrongly, but compatibly) read as nanoseconds. Errors are 400s whose body
is the message, so every :class:`ParamError` carries Loki's exact text, including the Go
``strconv`` and Prometheus duration errors it wraps. The order of the checks is Loki's, so a
request with several bad parameters reports the same one. LogQL is not parsed here; the caller
parses ``query`` where Loki does (after these checks, or first for tail).

Timestamps are integer Unix nanoseconds. Arithmetic is exact, results are wrapped into int64 as
Go's ``UnixNano`` does, so absurd inputs (year 0) give Loki's values rather than exceptions.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Final, Literal, Protocol

from lokistack.model import goquote

Direction = Literal["forward", "backward"]

DEFAULT_LIMIT: Final = 100
DEFAULT_SINCE_NS: Final = 3600 * 10**9
MAX_POINTS: Final = 11_000
MAX_DELAY_FOR_S: Final = 5
_MAX_UINT32: Final = 2**32 - 1
_MAX_UINT64: Final = 2**64 - 1
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_SECOND: Final = 10**9

_ERR_END_BEFORE_START: Final = "end timestamp must not be before or equal to start time"
_ERR_STEP: Final = (
    "zero or negative query resolution step widths are not accepted. Try a positive integer"
)
_ERR_POINTS: Final = (
    "exceeded maximum resolution of 11,000 points per time series. "
    "Try increasing the value of the step parameter"
)

# Go's strconv.ParseFloat syntax (decimal or hex mantissa, underscores only between digits).
_DEC: Final = r"[0-9](?:_?[0-9])*"
_HEX: Final = r"[0-9a-fA-F](?:_?[0-9a-fA-F])*"
_GO_DECIMAL: Final = re.compile(rf"[+-]?(?:{_DEC}(?:\.(?:{_DEC})?)?|\.{_DEC})(?:[eE][+-]?{_DEC})?")
_GO_HEX: Final = re.compile(rf"[+-]?0[xX](?:_?{_HEX}(?:\.(?:{_HEX})?)?|\.{_HEX})[pP][+-]?{_DEC}")
_GO_INF: Final = re.compile(r"[+-]?(?:inf|infinity)", re.IGNORECASE)
_DIGITS: Final = re.compile(r"[0-9]*")
# time.Parse(RFC3339Nano): the strict fast path or the layout fallback, which also takes a
# one-digit hour, a comma before the fraction, any number of fraction digits (beyond nine are
# dropped) and offsets up to 24:60.
_RFC3339: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{1,2}):([0-9]{2}):([0-9]{2})"
    r"(?:[.,]([0-9]+))?(?:Z|([+-])([0-9]{2}):([0-9]{2}))"
)
_DAYS_IN_MONTH: Final = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_PROM_UNITS: Final = {
    "ms": (7, 10**6),
    "s": (6, _SECOND),
    "m": (5, 60 * _SECOND),
    "h": (4, 3600 * _SECOND),
    "d": (3, 86400 * _SECOND),
    "w": (2, 7 * 86400 * _SECOND),
    "y": (1, 365 * 86400 * _SECOND),
}


class ParamError(ValueError):
    """An invalid request parameter; ``str()`` is the 400 body Loki sends."""


class Params(Protocol):
    """The form values of a request; aiohttp's ``MultiDictProxy`` fits."""

    def get(self, key: str, /) -> str | None: ...

    def getall(self, key: str, default: list[str], /) -> list[str]: ...


@dataclasses.dataclass(frozen=True, slots=True)
class RangeQuery:
    """``/loki/api/v1/query_range``: ``start`` inclusive, ``end`` exclusive for log queries."""

    query: str
    start_ns: int
    end_ns: int
    step_ns: int
    interval_ns: int
    limit: int
    direction: Direction


@dataclasses.dataclass(frozen=True, slots=True)
class InstantQuery:
    """``/loki/api/v1/query``."""

    query: str
    ts_ns: int
    limit: int
    direction: Direction


@dataclasses.dataclass(frozen=True, slots=True)
class LabelQuery:
    """``/loki/api/v1/labels`` (``name`` is None) or ``/label/<name>/values``."""

    name: str | None
    start_ns: int
    end_ns: int
    query: str


@dataclasses.dataclass(frozen=True, slots=True)
class SeriesQuery:
    """``/loki/api/v1/series``; no matchers means every series in the range."""

    matchers: tuple[str, ...]
    start_ns: int
    end_ns: int


@dataclasses.dataclass(frozen=True, slots=True)
class TailQuery:
    """``/loki/api/v1/tail``."""

    query: str
    start_ns: int
    limit: int
    delay_for_s: int


@dataclasses.dataclass(frozen=True, slots=True)
class IndexStatsQuery:
    """``/loki/api/v1/index/stats``."""

    query: str
    start_ns: int
    end_ns: int


def parse_timestamp(name: str, value: str | None, default_ns: int) -> int:
    """Loki's ``parseTimestamp`` for the parameter ``name``; errors name the parameter."""
    try:
        return _wrap64(_timestamp(value, default_ns))
    except ParamError as err:
        raise ParamError(f"could not parse '{name}' parameter: {err}") from None


def parse_duration(name: str, value: str) -> int:
    """``step``/``interval`` in nanoseconds: float seconds, else a Prometheus duration.

    ``name`` is not part of Loki's message; it is accepted so call sites read like
    :func:`parse_timestamp`.
    """
    del name
    number = _go_parse_float(value)
    if number is not None:
        scaled = number * 1e9
        if scaled > 2.0**63 or scaled < -(2.0**63):
            raise ParamError(
                f"cannot parse {goquote.go_quote(value)} to a valid duration. It overflows int64"
            )
        return _go_float_to_int64(scaled)
    try:
        return _prom_duration(value)
    except ParamError:
        raise ParamError(f"cannot parse {goquote.go_quote(value)} to a valid duration") from None


def parse_range_query(params: Params, now_ns: int) -> RangeQuery:
    """``ParseRangeQuery``: bounds, limit, direction, step, resolution, interval, in that order."""
    start, end = _bounds(params, now_ns)
    if end < start:
        raise ParamError(_ERR_END_BEFORE_START)
    limit = _limit(params)
    direction = _direction(params)
    step_text = _get(params, "step")
    default_step = _default_step_s(start, end) * _SECOND
    step = parse_duration("step", step_text) if step_text else default_step
    if step <= 0:
        raise ParamError(_ERR_STEP)
    if _sub(end, start) // step > MAX_POINTS:
        raise ParamError(_ERR_POINTS)
    interval_text = _get(params, "interval")
    interval = parse_duration("interval", interval_text) if interval_text else 0
    if interval < 0:
        raise ParamError("interval must be >= 0")
    return RangeQuery(
        query=_get(params, "query"),
        start_ns=_wrap64(start),
        end_ns=_wrap64(end),
        step_ns=step,
        interval_ns=interval,
        limit=limit,
        direction=direction,
    )


def parse_instant_query(params: Params, now_ns: int) -> InstantQuery:
    """``ParseInstantQuery``: limit, time, direction. A bad ``time`` is not wrapped by Loki."""
    limit = _limit(params)
    ts = _wrap64(_timestamp(_get(params, "time"), now_ns))
    direction = _direction(params)
    return InstantQuery(query=_get(params, "query"), ts_ns=ts, limit=limit, direction=direction)


def parse_label_query(params: Params, now_ns: int, name: str | None = None) -> LabelQuery:
    """``ParseLabelQuery``: only the bounds are checked (``end < start`` is accepted)."""
    start, end = _bounds(params, now_ns)
    return LabelQuery(
        name=name, start_ns=_wrap64(start), end_ns=_wrap64(end), query=_get(params, "query")
    )


def parse_series_query(params: Params, now_ns: int) -> SeriesQuery:
    """``ParseSeriesQuery``: ``match`` and ``match[]`` merged, deduplicated and sorted.

    A lone ``{}`` (spaces ignored) means every series, like no matcher at all. Validating the
    selectors is the caller's next step, as in ``ParseAndValidateSeriesQuery``.
    """
    start, end = _bounds(params, now_ns)
    matchers = sorted(set(params.getall("match", [])) | set(params.getall("match[]", [])))
    if len(matchers) == 1 and matchers[0].replace(" ", "") == "{}":
        matchers = []
    return SeriesQuery(matchers=tuple(matchers), start_ns=_wrap64(start), end_ns=_wrap64(end))


def parse_tail_query(params: Params, now_ns: int) -> TailQuery:
    """``ParseTailQuery`` after the query itself: limit, start, ``delay_for`` (0 to 5 s)."""
    limit = _limit(params)
    start, _ = _bounds(params, now_ns)
    delay = _go_atoi_default(_get(params, "delay_for"), 0)
    if delay < 0 or delay > _MAX_UINT32:
        raise ParamError(f"delay_for value {delay} is out of range [0, {_MAX_UINT32}]")
    if delay > MAX_DELAY_FOR_S:
        raise ParamError(f"delay_for can't be greater than {MAX_DELAY_FOR_S}")
    return TailQuery(
        query=_get(params, "query"), start_ns=_wrap64(start), limit=limit, delay_for_s=delay
    )


def parse_index_stats_query(params: Params, now_ns: int) -> IndexStatsQuery:
    """``ParseIndexStatsQuery`` is ``ParseRangeQuery``, so every range check applies."""
    parsed = parse_range_query(params, now_ns)
    return IndexStatsQuery(query=parsed.query, start_ns=parsed.start_ns, end_ns=parsed.end_ns)


def _get(params: Params, key: str) -> str:
    """Go's ``r.Form.Get``: the first value, ``""`` when absent."""
    return params.get(key) or ""


def _bounds(params: Params, now_ns: int) -> tuple[int, int]:
    """``determineBounds``: since, end (default now), start (default min(end, now) - since)."""
    since_text = _get(params, "since")
    since = DEFAULT_SINCE_NS
    if since_text:
        try:
            since = _prom_duration(since_text)
        except ParamError as err:
            raise ParamError(f"could not parse 'since' parameter: {err}") from None
    end = _timestamp_param("end", _get(params, "end"), now_ns)
    end_or_now = min(end, now_ns)
    start = _timestamp_param("start", _get(params, "start"), end_or_now - since)
    return start, end


def _timestamp_param(name: str, value: str, default_ns: int) -> int:
    try:
        return _timestamp(value, default_ns)
    except ParamError as err:
        raise ParamError(f"could not parse '{name}' parameter: {err}") from None


def _timestamp(value: str | None, default_ns: int) -> int:
    """``parseTimestamp`` without the wrapping; exact nanoseconds (not yet wrapped to int64)."""
    if not value:
        return default_ns
    if "." in value:
        number = _go_parse_float(value)
        if number is not None:
            frac, whole = math.modf(number)
            frac = _go_round(frac * 1000) / 1000
            return _go_float_to_int64(whole) * _SECOND + _go_float_to_int64(frac * 1e9)
    try:
        nanos = _go_parse_int("ParseInt", value)
    except ParamError:
        parsed = _rfc3339(value)
        if parsed is None:
            raise
        return parsed
    return nanos * _SECOND if len(value) <= 10 else nanos


def _limit(params: Params) -> int:
    limit = _go_atoi_default(_get(params, "limit"), DEFAULT_LIMIT)
    if limit <= 0:
        raise ParamError("limit must be a positive value")
    if limit > _MAX_UINT32:
        raise ParamError(f"limit value {limit} is out of range [0, {_MAX_UINT32}]")
    return limit


def _direction(params: Params) -> Direction:
    value = _get(params, "direction")
    if not value:
        return "backward"
    upper = value.upper()
    if upper == "FORWARD":
        return "forward"
    if upper == "BACKWARD":
        return "backward"
    raise ParamError(f"invalid direction '{value}'")


def _default_step_s(start: int, end: int) -> int:
    """``defaultQueryRangeStep``, with Go's float arithmetic: max(floor(seconds / 250), 1)."""
    delta = _sub(end, start)
    whole = abs(delta) // _SECOND * (1 if delta >= 0 else -1)
    seconds = float(whole) + float(delta - whole * _SECOND) / 1e9
    return int(max(math.floor(seconds / 250), 1.0))


def _go_atoi_default(value: str, default: int) -> int:
    return _go_parse_int("Atoi", value) if value else default


def _go_parse_int(fn: str, value: str) -> int:
    """``strconv.ParseInt(value, 10, 64)`` / ``Atoi``, with their error texts."""
    body = value[1:] if value[:1] in ("+", "-") else value
    digits = _DIGITS.match(body)
    prefix = digits.group() if digits else ""
    significant = prefix.lstrip("0")
    # ParseUint stops with a range error as soon as the digits overflow, before it meets a
    # character that is not a digit.
    if len(significant) > 20 or (significant and int(significant) > _MAX_UINT64):
        raise ParamError(_num_error(fn, value, "value out of range"))
    if not body or len(prefix) != len(body):
        raise ParamError(_num_error(fn, value, "invalid syntax"))
    number = -int(prefix) if value[0] == "-" else int(prefix)
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise ParamError(_num_error(fn, value, "value out of range"))
    return number


def _num_error(fn: str, value: str, reason: str) -> str:
    return f"strconv.{fn}: parsing {goquote.go_quote(value)}: {reason}"


def _go_parse_float(value: str) -> float | None:
    """``strconv.ParseFloat(value, 64)``, or None where Go returns an error (incl. overflow)."""
    if _GO_DECIMAL.fullmatch(value):
        number = float(value.replace("_", ""))
        return None if math.isinf(number) else number
    if _GO_HEX.fullmatch(value):
        try:
            return float.fromhex(value.replace("_", ""))
        except OverflowError:
            return None
    if _GO_INF.fullmatch(value):
        return -math.inf if value[0] == "-" else math.inf
    if value.lower() == "nan":
        return math.nan
    return None


def _go_round(value: float) -> float:
    """``math.Round``: half away from zero (Python's ``round`` is half to even)."""
    whole = math.trunc(value)
    if abs(value - whole) >= 0.5:
        whole += 1 if value > 0 else -1
    return float(whole)


def _go_float_to_int64(value: float) -> int:
    """Go's float64 to int64 conversion on amd64: truncation, out of range or NaN gives MinInt64."""
    if math.isnan(value) or value >= 2.0**63 or value < -(2.0**63):
        return _INT64_MIN
    return int(value)


def _wrap64(value: int) -> int:
    return (value - _INT64_MIN) % 2**64 + _INT64_MIN


def _sub(end: int, start: int) -> int:
    """``time.Time.Sub``: saturates at the int64 range."""
    return max(_INT64_MIN, min(_INT64_MAX, end - start))


def _rfc3339(value: str) -> int | None:
    """``time.Parse(time.RFC3339Nano, value)`` as Unix nanoseconds, None if Go rejects it."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    if not 1 <= month <= 12 or not 1 <= day <= _days_in(month, year):
        return None
    if hour >= 24 or minute >= 60 or second >= 60:
        return None
    offset = 0
    if match.group(8):
        off_h, off_m = int(match.group(9)), int(match.group(10))
        if off_h > 24 or off_m > 60:
            return None
        offset = (off_h * 60 + off_m) * 60 * (-1 if match.group(8) == "-" else 1)
    fraction = int((match.group(7) or "")[:9].ljust(9, "0"))
    days = _days_from_civil(year, month, day)
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
    return seconds * _SECOND + fraction


def _days_in(month: int, year: int) -> int:
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 29 if month == 2 and leap else _DAYS_IN_MONTH[month - 1]


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (year 0 included, as in Go)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _prom_duration(value: str) -> int:
    """Prometheus ``model.ParseDuration``: units from largest to smallest, no sign."""
    if value == "0":
        return 0
    if not value:
        raise ParamError("empty duration string")
    invalid = ParamError(f"not a valid duration string: {goquote.go_quote(value)}")
    total, last_pos, i, size = 0, 0, 0, len(value)
    while i < size:
        j = i
        while j < size and "0" <= value[j] <= "9":
            j += 1
        digits = value[i:j].lstrip("0")
        if j == i or len(digits) > 20 or (digits and int(digits) > _MAX_UINT64):
            raise invalid
        number = int(digits or "0")
        k = j
        while k < size and not "0" <= value[k] <= "9":
            k += 1
        unit = value[j:k]
        if not unit:
            raise invalid
        if unit not in _PROM_UNITS:
            raise ParamError(
                f"unknown unit {goquote.go_quote(unit)} in duration {goquote.go_quote(value)}"
            )
        pos, mult = _PROM_UNITS[unit]
        if pos <= last_pos:
            raise invalid
        last_pos = pos
        if number > 2**63 // mult:
            raise ParamError("duration out of range")
        total += number * mult
        if total > _INT64_MAX:
            raise ParamError("duration out of range")
        i = k
    return total
