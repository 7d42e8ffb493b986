"""Go's ``time.Time`` as templates see it: layouts by example, ``String()``, parsing.

``line_format`` templates format timestamps with Go layouts (``{{ date "2006-01-02" … }}``),
print times with Go's ``String()`` and parse them with ``toDate``; Python's ``strftime`` uses a
different language, so the layout chunks of Go's ``time/format.go`` are recognised here in the
same order Go does and mapped to fields. Times are integer nanoseconds since the epoch plus a
zone, so nothing is lost to float rounding. Go's ``Local`` zone is taken to be UTC, which is what
a Loki container runs with.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import zoneinfo
from typing import Final

NS_PER_S: Final = 1_000_000_000
ZERO_NS: Final = -62_135_596_800 * NS_PER_S  # 0001-01-01T00:00:00Z, Go's zero time
_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)

_MONTHS: Final = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS: Final = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# Layout chunks in the order Go's nextStdChunk tries them at one position.
_CHUNK: Final = re.compile(
    r"January|Jan|Monday|Mon|MST|002|01|02|03|04|05|06|15|1|2006|2|__2|_2(?!006)"
    r"|3|4|5|PM|pm|-070000|-07:00:00|-0700|-07:00|-07"
    r"|Z070000|Z07:00:00|Z0700|Z07:00|Z07|[.,](?:0+|9+)(?![0-9])"
)


@dataclasses.dataclass(frozen=True, slots=True)
class GoTime:
    """A Go ``time.Time``: nanoseconds since the Unix epoch and a zone."""

    ns: int
    zone: datetime.tzinfo = datetime.UTC

    @classmethod
    def zero(cls) -> GoTime:
        return cls(ZERO_NS)

    @property
    def unix(self) -> int:
        """Go's ``Unix()``: whole seconds, rounded towards minus infinity."""
        return self.ns // NS_PER_S

    def local(self) -> tuple[datetime.datetime, int]:
        """The wall-clock datetime in the zone (microseconds dropped) and the nanosecond."""
        seconds, nanos = divmod(self.ns, NS_PER_S)
        wall = (_EPOCH + datetime.timedelta(seconds=seconds)).astimezone(self.zone)
        return wall, nanos

    def format(self, layout: str) -> str:
        """Go's ``Format(layout)``."""
        wall, nanos = self.local()
        out: list[str] = []
        pos = 0
        for chunk in _CHUNK.finditer(layout):
            out.append(layout[pos : chunk.start()])
            out.append(_format_chunk(chunk.group(), wall, nanos))
            pos = chunk.end()
        out.append(layout[pos:])
        return "".join(out)

    def __str__(self) -> str:
        return self.format("2006-01-02 15:04:05.999999999 -0700 MST")


def _zone_name(wall: datetime.datetime) -> str:
    name = wall.tzname() or ""
    if name and (name[0].isalpha() or name == "UTC"):
        return name
    return _offset(wall, "-0700")


def _offset(wall: datetime.datetime, chunk: str) -> str:
    delta = wall.utcoffset() or datetime.timedelta()
    if chunk.startswith("Z") and not delta:
        return "Z"
    total = int(delta.total_seconds())
    sign = "-" if total < 0 else "+"
    hours, rest = divmod(abs(total), 3600)
    minutes, seconds = divmod(rest, 60)
    body = chunk.lstrip("Z-")
    if body == "07":
        return f"{sign}{hours:02d}"
    if body == "0700":
        return f"{sign}{hours:02d}{minutes:02d}"
    if body == "07:00":
        return f"{sign}{hours:02d}:{minutes:02d}"
    if body == "070000":
        return f"{sign}{hours:02d}{minutes:02d}{seconds:02d}"
    return f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"


def _format_chunk(  # noqa: PLR0911 - one branch per layout chunk
    chunk: str, wall: datetime.datetime, nanos: int
) -> str:
    if chunk in ("January", "Jan"):
        name = _MONTHS[wall.month - 1]
        return name if chunk == "January" else name[:3]
    if chunk in ("Monday", "Mon"):
        name = _DAYS[wall.weekday()]
        return name if chunk == "Monday" else name[:3]
    if chunk == "MST":
        return _zone_name(wall)
    hour12 = wall.hour % 12 or 12
    simple = {
        "01": f"{wall.month:02d}",
        "1": str(wall.month),
        "02": f"{wall.day:02d}",
        "2": str(wall.day),
        "_2": f"{wall.day:2d}",
        "002": f"{wall.timetuple().tm_yday:03d}",
        "__2": f"{wall.timetuple().tm_yday:3d}",
        "15": f"{wall.hour:02d}",
        "03": f"{hour12:02d}",
        "3": str(hour12),
        "04": f"{wall.minute:02d}",
        "4": str(wall.minute),
        "05": f"{wall.second:02d}",
        "5": str(wall.second),
        "2006": f"{wall.year:04d}",
        "06": f"{wall.year % 100:02d}",
        "PM": "PM" if wall.hour >= 12 else "AM",
        "pm": "pm" if wall.hour >= 12 else "am",
    }
    if chunk in simple:
        return simple[chunk]
    if chunk[0] in ".,":
        digits = f"{nanos:09d}"[: len(chunk) - 1]
        if chunk[1] == "9":
            digits = digits.rstrip("0")
            return chunk[0] + digits if digits else ""
        return chunk[0] + digits
    return _offset(wall, chunk)


# -- parsing -------------------------------------------------------------------------------------

_PARSE_PATTERNS: Final = {
    "January": "(?P<month_name>" + "|".join(_MONTHS) + ")",
    "Jan": "(?P<month_abbr>" + "|".join(m[:3] for m in _MONTHS) + ")",
    "Monday": "(?:" + "|".join(_DAYS) + ")",
    "Mon": "(?:" + "|".join(d[:3] for d in _DAYS) + ")",
    "MST": "(?P<zone_name>[A-Z]{3,5}|[+-][0-9]{2,4})",
    "01": "(?P<month>[0-9]{2})",
    "1": "(?P<month>[0-9]{1,2})",
    "02": "(?P<day>[0-9]{2})",
    "2": "(?P<day>[0-9]{1,2})",
    "_2": "(?P<day> ?[0-9]{1,2})",
    "002": "(?P<yday>[0-9]{3})",
    "__2": "(?P<yday> {0,2}[0-9]{1,3})",
    "15": "(?P<hour>[0-9]{1,2})",
    "03": "(?P<hour12>[0-9]{2})",
    "3": "(?P<hour12>[0-9]{1,2})",
    "04": "(?P<minute>[0-9]{2})",
    "4": "(?P<minute>[0-9]{1,2})",
    "05": "(?P<second>[0-9]{2})",
    "5": "(?P<second>[0-9]{1,2})",
    "2006": "(?P<year>[0-9]{4})",
    "06": "(?P<year2>[0-9]{2})",
    "PM": "(?P<ampm>AM|PM)",
    "pm": "(?P<ampm>am|pm)",
}


def _layout_regex(layout: str) -> re.Pattern[str]:
    parts: list[str] = []
    pos = 0
    for chunk in _CHUNK.finditer(layout):
        parts.append(re.escape(layout[pos : chunk.start()]))
        text = chunk.group()
        if text in _PARSE_PATTERNS:
            pattern = _PARSE_PATTERNS[text]
        elif text[0] in ".,":
            pattern = r"(?:[.,](?P<frac>[0-9]+))?" if text[1] == "9" else r"[.,](?P<frac>[0-9]+)"
        else:
            pattern = r"(?P<offset>Z|[+-][0-9]{2}(?::?[0-9]{2}(?::?[0-9]{2})?)?)"
        if "(?P<" in pattern and any(
            f"(?P<{name}>" in "".join(parts) for name in re.findall(r"\(\?P<(\w+)>", pattern)
        ):
            pattern = re.sub(r"\(\?P<\w+>", "(?:", pattern)  # Go checks repeats; we keep the first
        parts.append(pattern)
        pos = chunk.end()
    parts.append(re.escape(layout[pos:]))
    return re.compile("".join(parts))


def parse(layout: str, text: str, zone: datetime.tzinfo = datetime.UTC) -> GoTime:
    """Go's ``ParseInLocation``; raises ``ValueError`` when ``text`` does not fit ``layout``."""
    match = _layout_regex(layout).fullmatch(text)
    if match is None:
        raise ValueError(f'parsing time "{text}" as "{layout}": cannot parse')
    fields = {name: value for name, value in match.groupdict().items() if value is not None}
    year = int(fields.get("year", "0"))
    if "year2" in fields:
        short = int(fields["year2"])
        year = short + (1900 if short >= 69 else 2000)
    month = int(fields.get("month", "1"))
    if "month_name" in fields:
        month = _MONTHS.index(fields["month_name"]) + 1
    if "month_abbr" in fields:
        month = [m[:3] for m in _MONTHS].index(fields["month_abbr"]) + 1
    day = int(fields.get("day", "1").strip())
    hour = int(fields.get("hour", "0"))
    if "hour12" in fields:
        hour = int(fields["hour12"]) % 12
        if fields.get("ampm", "").lower() == "pm":
            hour += 12
    frac = fields.get("frac", "")
    nanos = int((frac + "000000000")[:9]) if frac else 0
    tz: datetime.tzinfo = zone
    if "offset" in fields and fields["offset"] != "Z":
        raw = fields["offset"].replace(":", "")
        sign = -1 if raw[0] == "-" else 1
        digits = raw[1:].ljust(6, "0")
        seconds = int(digits[:2]) * 3600 + int(digits[2:4]) * 60 + int(digits[4:6])
        tz = datetime.timezone(sign * datetime.timedelta(seconds=seconds))
    elif "offset" in fields:
        tz = datetime.UTC
    year = max(year, 1)
    try:
        wall = datetime.datetime(
            year,
            month,
            day,
            hour,
            int(fields.get("minute", "0")),
            int(fields.get("second", "0")),
            tzinfo=tz,
        )
    except ValueError as error:
        raise ValueError(f'parsing time "{text}": {error}') from None
    if "yday" in fields and not ("month" in fields or "day" in fields):
        wall += datetime.timedelta(days=int(fields["yday"].strip()) - 1)
    seconds = int((wall - _EPOCH).total_seconds())
    return GoTime(seconds * NS_PER_S + nanos, zone)


def load_zone(name: str) -> datetime.tzinfo | None:
    """Go's ``LoadLocation``: ``""`` and ``"UTC"`` are UTC, ``"Local"`` is UTC here."""
    if name in ("", "UTC", "Local"):
        return datetime.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
