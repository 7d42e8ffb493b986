"""Query API parameter parsing against Loki's ``pkg/loghttp`` behaviour and messages.

The expected values and error texts were produced by running Loki's own ``ParseRangeQuery``,
``ParseInstantQuery``, ``ParseSeriesQuery`` and ``ParseTailQuery`` on the same inputs.
"""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lokistack.loghttp import params
from multidict import MultiDict

NOW = 1_700_000_000 * 10**9
STEP_ERROR = (
    "zero or negative query resolution step widths are not accepted. Try a positive integer"
)
S = 10**9


def query(**values: str) -> MultiDict[str]:
    return MultiDict(values)


def error_of(parse: object, form: MultiDict[str]) -> str:
    assert callable(parse)
    with pytest.raises(params.ParamError) as caught:
        parse(form, NOW)
    return str(caught.value)


# Timestamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1700000000", 1_700_000_000 * S),  # ten characters or fewer: seconds
        ("-1", -S),
        ("+1", S),
        ("1700000000000", 1_700_000_000_000),  # a millisecond epoch is read as nanoseconds
        ("1700000000000000001", 1_700_000_000_000_000_001),
        ("+1234567890", 1_234_567_890),  # eleven characters with the sign: nanoseconds
        ("1700000000.5", 1_700_000_000 * S + 500_000_000),  # logcli's float seconds
        ("1700000000.123456", 1_700_000_000 * S + 123_000_000),  # rounded to milliseconds
        ("1.0005", S),  # 0.0005 * 1000 is 0.49999999999999994 in float64
        ("1.0015", S + 2_000_000),
        ("-1.5", -1_500_000_000),
        ("1.", S),
        (".5", 500_000_000),
        ("1_000.5", 1000 * S + 500_000_000),  # Go's ParseFloat takes digit separators
        ("0x1.8p1", 3 * S),  # and hexadecimal floats
        ("2024-01-02T03:04:05Z", 1_704_164_645 * S),
        ("2024-01-02T03:04:05.123456789Z", 1_704_164_645 * S + 123_456_789),
        ("2024-01-02T03:04:05.1234567891234Z", 1_704_164_645 * S + 123_456_789),
        ("2024-01-02T04:04:05+01:00", 1_704_164_645 * S),
        ("2024-01-01T19:34:05-07:30", 1_704_164_645 * S),
        ("2024-01-02T03:04:05,5Z", 1_704_164_645 * S + 500_000_000),  # Go's fallback parser
        ("2024-01-02T3:04:05Z", 1_704_164_645 * S),  # one-digit hour, also the fallback
        ("2024-01-03T03:04:05+24:00", 1_704_164_645 * S),
        ("2024-02-29T00:00:00Z", 1_709_164_800 * S),
    ],
)
def test_timestamp_forms(value: str, expected: int) -> None:
    assert params.parse_timestamp("start", value, 0) == expected


@pytest.mark.parametrize("value", ["", None])
def test_timestamp_default(value: str | None) -> None:
    assert params.parse_timestamp("end", value, 42) == 42


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", 'strconv.ParseInt: parsing "abc": invalid syntax'),
        ("1.5x", 'strconv.ParseInt: parsing "1.5x": invalid syntax'),
        (
            "99999999999999999999",
            'strconv.ParseInt: parsing "99999999999999999999": value out of range',
        ),
        (
            "99999999999999999999x",
            'strconv.ParseInt: parsing "99999999999999999999x": value out of range',
        ),
        (
            "9223372036854775808",
            'strconv.ParseInt: parsing "9223372036854775808": value out of range',
        ),
        (
            "2024-02-30T00:00:00Z",
            'strconv.ParseInt: parsing "2024-02-30T00:00:00Z": invalid syntax',
        ),
        (
            "2023-02-29T00:00:00Z",
            'strconv.ParseInt: parsing "2023-02-29T00:00:00Z": invalid syntax',
        ),
        (
            "2024-01-02T03:04:05z",
            'strconv.ParseInt: parsing "2024-01-02T03:04:05z": invalid syntax',
        ),
        (
            "2024-01-02 03:04:05Z",
            'strconv.ParseInt: parsing "2024-01-02 03:04:05Z": invalid syntax',
        ),
        (
            "2024-01-02T03:04:60Z",
            'strconv.ParseInt: parsing "2024-01-02T03:04:60Z": invalid syntax',
        ),
        (
            "2024-01-02T03:04:05+25:00",
            'strconv.ParseInt: parsing "2024-01-02T03:04:05+25:00": invalid syntax',
        ),
        ("2024-01-02T03:04:05", 'strconv.ParseInt: parsing "2024-01-02T03:04:05": invalid syntax'),
        ("-", 'strconv.ParseInt: parsing "-": invalid syntax'),
        ("1e400.", 'strconv.ParseInt: parsing "1e400.": invalid syntax'),
        ("ab\n", 'strconv.ParseInt: parsing "ab\\n": invalid syntax'),
    ],
)
def test_timestamp_errors(value: str, message: str) -> None:
    with pytest.raises(params.ParamError) as caught:
        params.parse_timestamp("start", value, 0)
    assert str(caught.value) == f"could not parse 'start' parameter: {message}"


def test_timestamp_beyond_int64_wraps_like_go_unixnano() -> None:
    # Year 0 is a valid RFC 3339 date for Go; UnixNano overflows and wraps.
    assert params.parse_timestamp("start", "0000-01-01T00:00:00Z", 0) == -6826986978871345152


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.integers(-24 * 60 + 1, 24 * 60 - 1))
def test_rfc3339_round_trip(ns: int, offset_minutes: int) -> None:
    seconds, nanos = divmod(ns, S)
    zone = datetime.timezone(datetime.timedelta(minutes=offset_minutes))
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC).astimezone(zone)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}"
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    text += f"{sign}{hours:02d}:{minutes:02d}" if offset_minutes else "Z"
    assert params.parse_timestamp("time", text, 0) == ns


@given(st.integers(min_value=0, max_value=9_223_372_035), st.integers(0, 999))
def test_float_seconds_round_trip(seconds: int, millis: int) -> None:
    assert (
        params.parse_timestamp("end", f"{seconds}.{millis:03d}", 0) == seconds * S + millis * 10**6
    )


@given(st.integers(min_value=-999_999_999, max_value=9_223_372_036))
def test_short_integers_are_seconds(seconds: int) -> None:
    assert params.parse_timestamp("end", str(seconds), 0) == seconds * S


@given(st.integers(min_value=10_000_000_000, max_value=2**63 - 1))
def test_long_integers_are_nanoseconds(ns: int) -> None:
    assert params.parse_timestamp("end", str(ns), 0) == ns


# Durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("15", 15 * S),
        ("0.5", S // 2),
        ("2000ms", 2 * S),  # Grafana
        ("1h30m", 5400 * S),
        ("1d", 86400 * S),
        ("1w", 7 * 86400 * S),
        ("1y", 365 * 86400 * S),
        ("0", 0),
        ("-5", -5 * S),
        ("0.0000000001", 0),
    ],
)
def test_durations(value: str, expected: int) -> None:
    assert params.parse_duration("step", value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x", 'cannot parse "x" to a valid duration'),
        ("30m1h", 'cannot parse "30m1h" to a valid duration'),
        ("1h 30m", 'cannot parse "1h 30m" to a valid duration'),
        ("300y", 'cannot parse "300y" to a valid duration'),
        ("1e300", 'cannot parse "1e300" to a valid duration. It overflows int64'),
        ("inf", 'cannot parse "inf" to a valid duration. It overflows int64'),
    ],
)
def test_duration_errors(value: str, message: str) -> None:
    with pytest.raises(params.ParamError) as caught:
        params.parse_duration("step", value)
    assert str(caught.value) == message


# Range queries ------------------------------------------------------------------------------


def test_range_defaults() -> None:
    parsed = params.parse_range_query(query(query='{a="b"}'), NOW)
    assert parsed == params.RangeQuery(
        query='{a="b"}',
        start_ns=NOW - 3600 * S,
        end_ns=NOW,
        step_ns=14 * S,  # floor(3600 / 250)
        interval_ns=0,
        limit=100,
        direction="backward",
    )


def test_range_default_start_from_end_in_the_past() -> None:
    parsed = params.parse_range_query(query(end="1000", since="10m"), NOW)
    assert (parsed.start_ns, parsed.end_ns) == (400 * S, 1000 * S)


def test_range_default_start_from_now_when_end_is_in_the_future() -> None:
    parsed = params.parse_range_query(query(end=str(NOW + 3600 * S)), NOW)
    assert parsed.start_ns == NOW - 3600 * S


def test_range_explicit_values() -> None:
    form = query(start="1", end="2", limit="5000", direction="Forward", step="0.5", interval="1s")
    parsed = params.parse_range_query(form, NOW)
    assert (parsed.start_ns, parsed.end_ns, parsed.step_ns) == (S, 2 * S, S // 2)
    assert (parsed.interval_ns, parsed.limit, parsed.direction) == (S, 5000, "forward")


def test_range_minimum_default_step_is_one_second() -> None:
    assert params.parse_range_query(query(start="0", end="10"), NOW).step_ns == S
    assert params.parse_range_query(query(start="0", end="100000"), NOW).step_ns == 400 * S


def test_range_equal_bounds_are_accepted() -> None:
    assert params.parse_range_query(query(start="5", end="5"), NOW).start_ns == 5 * S


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (
            {"start": "abc"},
            "could not parse 'start' parameter: strconv.ParseInt: parsing \"abc\": invalid syntax",
        ),
        (
            {"end": "abc"},
            "could not parse 'end' parameter: strconv.ParseInt: parsing \"abc\": invalid syntax",
        ),
        ({"since": "x"}, "could not parse 'since' parameter: not a valid duration string: \"x\""),
        ({"since": "1x"}, 'could not parse \'since\' parameter: unknown unit "x" in duration "1x"'),
        ({"since": "300y"}, "could not parse 'since' parameter: duration out of range"),
        ({"start": "2", "end": "1"}, "end timestamp must not be before or equal to start time"),
        ({"limit": "0"}, "limit must be a positive value"),
        ({"limit": "-1"}, "limit must be a positive value"),
        ({"limit": "4294967296"}, "limit value 4294967296 is out of range [0, 4294967295]"),
        ({"limit": "x"}, 'strconv.Atoi: parsing "x": invalid syntax'),
        ({"limit": "1.5"}, 'strconv.Atoi: parsing "1.5": invalid syntax'),
        (
            {"limit": "99999999999999999999"},
            'strconv.Atoi: parsing "99999999999999999999": value out of range',
        ),
        ({"direction": "up"}, "invalid direction 'up'"),
        (
            {"step": "0"},
            STEP_ERROR,
        ),
        (
            {"step": "-1"},
            STEP_ERROR,
        ),
        (
            {"step": "nan"},
            STEP_ERROR,
        ),
        ({"step": "x"}, 'cannot parse "x" to a valid duration'),
        ({"interval": "-1"}, "interval must be >= 0"),
        ({"interval": "y"}, 'cannot parse "y" to a valid duration'),
    ],
)
def test_range_errors(form: dict[str, str], message: str) -> None:
    full = {"start": "1", "end": "100", **form}
    assert error_of(params.parse_range_query, query(**full)) == message


def test_range_checks_run_in_loki_order() -> None:
    bad = query(start="2", end="1", limit="0", direction="up", step="0", interval="-1")
    assert error_of(params.parse_range_query, bad) == params._ERR_END_BEFORE_START
    bad = query(start="1", end="2", limit="0", direction="up", step="0", interval="-1")
    assert error_of(params.parse_range_query, bad) == "limit must be a positive value"
    bad = query(start="1", end="2", direction="up", step="0", interval="-1")
    assert error_of(params.parse_range_query, bad) == "invalid direction 'up'"
    bad = query(start="1", end="2", step="0", interval="-1")
    assert error_of(params.parse_range_query, bad) == params._ERR_STEP


def test_range_limit_bounds() -> None:
    assert params.parse_range_query(query(limit="4294967295"), NOW).limit == 2**32 - 1
    assert params.parse_range_query(query(limit="+7"), NOW).limit == 7


def test_eleven_thousand_points() -> None:
    ok = params.parse_range_query(query(start="0", end="11000", step="1"), NOW)
    assert ok.step_ns == S
    # The check also applies to log queries, and counts whole steps: 11000.999 passes.
    assert params.parse_range_query(query(start="0", end="11000.999", step="1"), NOW)
    message = error_of(params.parse_range_query, query(start="0", end="11001", step="1"))
    assert message == (
        "exceeded maximum resolution of 11,000 points per time series. "
        "Try increasing the value of the step parameter"
    )


def test_grafana_style_request() -> None:
    form = query(
        query='sum by (level) (count_over_time({app="x"}[1m]))',
        start="1700000000000000000",
        end="1700003600000000000",
        step="60000ms",
        limit="1000",
        direction="backward",
    )
    parsed = params.parse_range_query(form, NOW)
    assert (parsed.end_ns - parsed.start_ns, parsed.step_ns, parsed.limit) == (
        3600 * S,
        60 * S,
        1000,
    )


def test_logcli_style_request() -> None:
    form = query(start="1699996400.000", end="1700000000.000", limit="30", direction="FORWARD")
    parsed = params.parse_range_query(form, NOW)
    assert (parsed.start_ns, parsed.end_ns, parsed.direction) == (NOW - 3600 * S, NOW, "forward")


# Instant queries ----------------------------------------------------------------------------


def test_instant_defaults_and_values() -> None:
    assert params.parse_instant_query(query(query="vector(1)"), NOW) == params.InstantQuery(
        query="vector(1)", ts_ns=NOW, limit=100, direction="backward"
    )
    parsed = params.parse_instant_query(query(time="1.5", limit="10", direction="forward"), NOW)
    assert (parsed.ts_ns, parsed.limit, parsed.direction) == (1_500_000_000, 10, "forward")


def test_instant_errors() -> None:
    # Loki does not wrap a bad 'time' in "could not parse ..."; limit comes first.
    assert error_of(params.parse_instant_query, query(time="abc")) == (
        'strconv.ParseInt: parsing "abc": invalid syntax'
    )
    bad = query(time="abc", limit="0")
    assert error_of(params.parse_instant_query, bad) == "limit must be a positive value"
    assert error_of(params.parse_instant_query, query(direction="x")) == "invalid direction 'x'"


# Labels, series, tail, index stats ----------------------------------------------------------


def test_label_query() -> None:
    parsed = params.parse_label_query(query(query='{a="b"}'), NOW, "app")
    assert parsed == params.LabelQuery(
        name="app", start_ns=NOW - 3600 * S, end_ns=NOW, query='{a="b"}'
    )
    # Unlike query_range, labels accept end before start.
    inverted = params.parse_label_query(query(start="2", end="1"), NOW)
    assert (inverted.start_ns, inverted.end_ns, inverted.name) == (2 * S, S, None)
    assert error_of(params.parse_label_query, query(since="1")) == (
        "could not parse 'since' parameter: not a valid duration string: \"1\""
    )


def test_series_matchers_merged_sorted_deduplicated() -> None:
    form = MultiDict(
        [("match[]", '{b="2"}'), ("match", '{a="1"}'), ("match[]", '{a="1"}'), ("start", "1")]
    )
    parsed = params.parse_series_query(form, NOW)
    assert parsed == params.SeriesQuery(matchers=('{a="1"}', '{b="2"}'), start_ns=S, end_ns=NOW)


@pytest.mark.parametrize(
    "pairs", [[], [("match[]", "{}")], [("match", " { } ")], [("match", "{}"), ("match[]", "{}")]]
)
def test_series_all(pairs: list[tuple[str, str]]) -> None:
    assert params.parse_series_query(MultiDict(pairs), NOW).matchers == ()


def test_series_empty_selector_among_others_is_kept() -> None:
    form = MultiDict([("match", "{}"), ("match", '{a="1"}')])
    assert params.parse_series_query(form, NOW).matchers == ('{a="1"}', "{}")


def test_tail_query() -> None:
    assert params.parse_tail_query(query(query='{a="b"}'), NOW) == params.TailQuery(
        query='{a="b"}', start_ns=NOW - 3600 * S, limit=100, delay_for_s=0
    )
    parsed = params.parse_tail_query(query(start="1", delay_for="5", limit="10"), NOW)
    assert (parsed.start_ns, parsed.delay_for_s, parsed.limit) == (S, 5, 10)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"delay_for": "6"}, "delay_for can't be greater than 5"),
        ({"delay_for": "-1"}, "delay_for value -1 is out of range [0, 4294967295]"),
        ({"delay_for": "1.5"}, 'strconv.Atoi: parsing "1.5": invalid syntax'),
        ({"delay_for": "6", "limit": "0"}, "limit must be a positive value"),
        (
            {"delay_for": "6", "start": "x"},
            "could not parse 'start' parameter: strconv.ParseInt: parsing \"x\": invalid syntax",
        ),
    ],
)
def test_tail_errors(form: dict[str, str], message: str) -> None:
    assert error_of(params.parse_tail_query, query(**form)) == message


def test_index_stats_query_uses_range_rules() -> None:
    parsed = params.parse_index_stats_query(query(query='{a="b"}', start="1", end="2"), NOW)
    assert parsed == params.IndexStatsQuery(query='{a="b"}', start_ns=S, end_ns=2 * S)
    bad = query(start="0", end="100000", step="1")
    assert "11,000 points" in error_of(params.parse_index_stats_query, bad)
    assert error_of(params.parse_index_stats_query, query(limit="0")) == (
        "limit must be a positive value"
    )
