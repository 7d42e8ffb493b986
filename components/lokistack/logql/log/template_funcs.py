"""Values and functions of ``line_format``/``label_format`` templates, with Go's behaviour.

Loki registers Go's template builtins, a list of Sprig functions and its own (``fmt.go``); the
names, argument order and conversions here are theirs (``trimPrefix "a" .x`` trims ``"a"`` from
``.x``; ``add`` converts its arguments like Sprig's ``toInt64``; ``div`` by zero is an error).
Values are Python objects standing for Go's: ``str``, ``int`` (Go ``int``/``int64``), ``float``
(``float64``), ``bool``, ``None`` (``nil``), :class:`~.gotime.GoTime`, ``dict`` and ``list``
(from ``fromJson``). :func:`go_print` prints them as ``fmt.Sprint`` does.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import decimal
import math
import re
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any, Final

from lokistack.logql.log import gotime, printf
from lokistack.logql.syntax import checks, units

MISSING: Final = object()
"""No piped value (the first command of a pipeline)."""


class CallError(Exception):
    """A function call failed; ``str()`` is Go's message without the location prefix."""


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    """What ``__line__`` and ``__timestamp__`` return for the entry being formatted."""

    line: str
    ts: int


go_type = printf.go_type
go_print = printf.go_print


def truth(value: Any) -> bool:
    """Go template truthiness: false, 0, nil and empty strings or collections are false."""
    if value is None or value is MISSING:
        return False
    if isinstance(value, bool | int | float | str | list | dict):
        return bool(value)
    return True


def parse_constant(kind: str, text: str) -> Any:
    """A template literal: strings (Go escapes), raw strings, characters and numbers."""
    if kind == "raw":
        return text[1:-1]
    if kind in ("string", "char"):
        value = printf.unquote_go(text)
        return ord(value) if kind == "char" else value
    clean = text.replace("_", "")
    if re.fullmatch(r"[+-]?(?:0[xX][0-9a-fA-F]+|[0-9]+)", clean):
        return int(clean, 0) if not re.fullmatch(r"[+-]?0[0-7]+", clean) else int(clean, 8)
    return units.parse_go_float(clean)


# -- Sprig's conversions (spf13/cast, errors swallowed) -------------------------------------------


def to_int(value: Any) -> int:  # noqa: PLR0911 - one case per Go type
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return 0 if math.isnan(value) or math.isinf(value) else int(value)
    if isinstance(value, str):
        text = re.sub(r"\.0*$", "", value) if re.fullmatch(r"[+-]?[0-9]+\.0*", value) else value
        try:
            if re.fullmatch(r"[+-]?0[0-7_]+", text):
                return int(text, 8)
            return int(text, 0)
        except ValueError:
            return 0
    return 0


def to_float(value: Any) -> float:
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return units.parse_go_float(value)
        except ValueError:
            return 0.0
    return 0.0


def _decimal(value: Any) -> decimal.Decimal:
    return decimal.Decimal(repr(to_float(value)))


def _empty(value: Any) -> bool:
    """Sprig's ``empty``: zero values are empty, structs (times) never are."""
    return value is None or value is MISSING or (not isinstance(value, gotime.GoTime) and not value)


# -- functions -------------------------------------------------------------------------------------


def _regex(pattern: str) -> Any:
    try:
        return checks.compile_regex(pattern)
    except ValueError as error:
        raise CallError(str(error)) from None


def _expand(template: str, match: Any) -> str:
    """Go's ``Regexp.Expand``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``."""

    def group(found: re.Match[str]) -> str:
        if found.group() == "$$":
            return "$"
        name = found.group(1) or found.group(2)
        if name is None:
            return found.group()
        try:
            value = match.group(int(name)) if name.isdigit() else match.group(name)
        except (IndexError, KeyError, ValueError):
            return ""
        return value or ""

    return re.sub(r"\$\$|\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z0-9_]+)", group, template)


def _replace_all(pattern: str, text: str, replacement: str, literal: bool) -> str:
    """Go's ``ReplaceAllString``: empty matches right after a match are skipped."""
    regex = _regex(pattern)
    out: list[str] = []
    pos, last_end = 0, -1
    for match in regex.finditer(text):
        start, end = match.span()
        if start == end and start == last_end:
            continue
        out.append(text[pos:start])
        out.append(replacement if literal else _expand(replacement, match))
        pos = last_end = end
    out.append(text[pos:])
    return "".join(out)


def _count(pattern: str, text: str) -> int:
    regex = _regex(pattern)
    count, last_end = 0, -1
    for match in regex.finditer(text):
        start, end = match.span()
        if not (start == end and start == last_end):
            count += 1
            last_end = end
    return count


def _url_decode(text: str) -> str:
    bad = re.search(r"%(?![0-9a-fA-F]{2})(.{0,2})", text)
    if bad:
        raise CallError(f'invalid URL escape "{bad.group()}"')
    return urllib.parse.unquote_plus(text, errors="surrogateescape")


def _b64dec(text: str) -> str:
    """Loki's ``b64dec``: pads, and returns the error text instead of failing."""
    if len(text) % 4 not in (0, 1):
        text += "=" * (4 - len(text) % 4)
    try:
        return base64.b64decode(text, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        position = next(
            (i for i, ch in enumerate(text) if not re.match(r"[A-Za-z0-9+/=]", ch)),
            len(text) - len(text) % 4,
        )
        return f"illegal base64 data at input byte {position}"


def _unix_to_time(epoch: str) -> gotime.GoTime:
    value = units.parse_go_int(epoch)
    scale = {5: 86400 * 10**9, 10: 10**9, 13: 10**6, 16: 10**3, 19: 1}.get(len(epoch))
    if value is None or scale is None:
        raise CallError(f"unable to parse time '{epoch}'")
    return gotime.GoTime(value * scale)


def _date(layout: str, when: Any) -> str:
    if isinstance(when, gotime.GoTime):
        return when.format(layout)
    if isinstance(when, int) and not isinstance(when, bool):
        return gotime.GoTime(when * gotime.NS_PER_S).format(layout)
    return gotime.GoTime(time.time_ns()).format(layout)


def _to_date_in_zone(layout: str, zone: str, text: str) -> gotime.GoTime:
    location = gotime.load_zone(zone) or gotime.load_zone("UTC")
    assert location is not None
    try:
        return gotime.parse(layout, text, location)
    except ValueError:
        return gotime.GoTime.zero()


def _to_date(layout: str, text: str) -> gotime.GoTime:
    try:
        return gotime.parse(layout, text)
    except ValueError:
        return gotime.GoTime.zero()


def _round(value: Any, places: int, *rest: Any) -> float:
    round_on = to_float(rest[0]) if rest else 0.5
    power = math.pow(10, places)
    digit = power * to_float(value)
    fraction = math.modf(digit)[0]
    return (math.ceil(digit) if fraction >= round_on else math.floor(digit)) / power


def _int_div(a: Any, b: Any) -> int:
    x, y = to_int(a), to_int(b)
    if y == 0:
        raise CallError("runtime error: integer divide by zero")
    quotient = abs(x) // abs(y)
    return quotient if (x >= 0) == (y >= 0) else -quotient


def _int_mod(a: Any, b: Any) -> int:
    x, y = to_int(a), to_int(b)
    if y == 0:
        raise CallError("runtime error: integer divide by zero")
    return x - _int_div(x, y) * y


def _divf(a: Any, *rest: Any) -> float:
    result = _decimal(a)
    for value in rest:
        divisor = _decimal(value)
        if divisor == 0:
            raise CallError("decimal division by 0")
        result /= divisor
    return float(result)


def _convert(parse: Callable[[str], float]) -> Callable[[str], float]:
    def convert(text: str) -> float:
        try:
            return parse(text)
        except ValueError as error:
            raise CallError(str(error)) from None

    return convert


def _align(count: int, text: str, left: bool) -> str:
    if count < 0 or count == len(text):
        return text
    if count > len(text):
        pad = " " * (count - len(text))
        return text + pad if left else pad + text
    return text[:count] if left else text[len(text) - count :]


def _substr(start: int, end: int, text: str) -> str:
    """Sprig's ``substr`` (byte offsets, as Go slices)."""
    data = text.encode("utf-8", "surrogatepass")
    size = len(data)
    if start < 0:
        if not 0 <= end <= size:
            raise CallError(f"runtime error: slice bounds out of range [:{end}] with length {size}")
        piece = data[:end]
    elif end < 0 or end > size:
        if start > size:
            raise CallError(f"runtime error: slice bounds out of range [{start}:{size}]")
        piece = data[start:]
    else:
        if start > end:
            raise CallError(f"runtime error: slice bounds out of range [{start}:{end}]")
        piece = data[start:end]
    return piece.decode("utf-8", "replace")


def _trunc(count: int, text: str) -> str:
    data = text.encode("utf-8", "surrogatepass")
    if count < 0 and len(data) + count > 0:
        return data[len(data) + count :].decode("utf-8", "replace")
    if count >= 0 and len(data) > count:
        return data[:count].decode("utf-8", "replace")
    return text


def _title(text: str) -> str:
    """Go's ``strings.Title``: upper-case letters that follow a non-word character."""
    out, previous = [], " "
    for ch in text:
        out.append(ch.upper() if not (previous.isalnum() or previous == "_") else ch)
        previous = ch
    return "".join(out)


def _repeat(count: int, text: str) -> str:
    if count < 0:
        raise CallError("strings: negative Repeat count")
    return text * count


def _from_json(text: str) -> Any:
    import json  # noqa: PLC0415 - rarely used

    try:
        value = json.loads(text)
    except ValueError:
        return None
    return _json_floats(value)


def _json_floats(value: Any) -> Any:
    """``encoding/json`` into ``interface{}`` makes every number a float64."""
    if isinstance(value, dict):
        return {key: _json_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_floats(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _go_replace(text: str, old: str, new: str, count: int) -> str:
    return text.replace(old, new, count if count >= 0 else -1)


def _default(fallback: Any, *given: Any) -> Any:
    return fallback if not given or _empty(given[0]) else given[0]


@dataclasses.dataclass(frozen=True, slots=True)
class Func:
    """A template function: ``params`` are Go kinds (str, int, float, time, any)."""

    fn: Callable[..., Any]
    params: tuple[str, ...]
    variadic: str | None = None
    context: bool = False
    lazy: bool = False


def _f(fn: Callable[..., Any], *params: str, variadic: str | None = None) -> Func:
    return Func(fn, params, variadic)


_S, _I, _A = "str", "int", "any"

FUNCTIONS: Final[dict[str, Func]] = {
    # Go builtins
    "and": Func(lambda *args: args, (_A,), _A, lazy=True),
    "or": Func(lambda *args: args, (_A,), _A, lazy=True),
    "not": _f(lambda value: not truth(value), _A),
    "len": _f(printf.go_len, _A),
    "index": _f(printf.go_index, _A, variadic=_A),
    "print": _f(printf.sprint, variadic=_A),
    "println": _f(printf.sprintln, variadic=_A),
    "printf": _f(printf.sprintf, _S, variadic=_A),
    "eq": _f(printf.go_eq, _A, variadic=_A),
    "ne": _f(lambda a, b: not printf.go_eq(a, b), _A, _A),
    "lt": _f(printf.go_less, _A, _A),
    "le": _f(lambda a, b: printf.go_less(a, b) or printf.go_eq(a, b), _A, _A),
    "gt": _f(lambda a, b: not (printf.go_less(a, b) or printf.go_eq(a, b)), _A, _A),
    "ge": _f(lambda a, b: not printf.go_less(a, b), _A, _A),
    "urlquery": _f(lambda *args: urllib.parse.quote_plus(printf.sprint(*args)), variadic=_A),
    # Loki's own and Go's strings package
    "__line__": Func(lambda context: context.line, (), context=True),
    "__timestamp__": Func(lambda context: gotime.GoTime(context.ts), (), context=True),
    "ToLower": _f(str.lower, _S),
    "ToUpper": _f(str.upper, _S),
    "Replace": _f(_go_replace, _S, _S, _S, _I),
    "Trim": _f(lambda s, cut: s.strip(cut), _S, _S),
    "TrimLeft": _f(lambda s, cut: s.lstrip(cut), _S, _S),
    "TrimRight": _f(lambda s, cut: s.rstrip(cut), _S, _S),
    "TrimPrefix": _f(lambda s, prefix: s.removeprefix(prefix), _S, _S),
    "TrimSuffix": _f(lambda s, suffix: s.removesuffix(suffix), _S, _S),
    "TrimSpace": _f(str.strip, _S),
    "regexReplaceAll": _f(lambda r, s, t: _replace_all(r, s, t, False), _S, _S, _S),
    "regexReplaceAllLiteral": _f(lambda r, s, t: _replace_all(r, s, t, True), _S, _S, _S),
    "count": _f(_count, _S, _S),
    "urldecode": _f(_url_decode, _S),
    "urlencode": _f(lambda s: urllib.parse.quote_plus(s, safe=""), _S),
    "bytes": _f(_convert(lambda s: float(units.parse_bytes(s))), _S),
    "duration": _f(_convert(lambda s: units.parse_go_duration(s) / 1e9), _S),
    "duration_seconds": _f(_convert(lambda s: units.parse_go_duration(s) / 1e9), _S),
    "unixEpochMillis": _f(lambda t: str(t.ns // 10**6), "time"),
    "unixEpochNanos": _f(lambda t: str(t.ns), "time"),
    "toDateInZone": _f(_to_date_in_zone, _S, _S, _S),
    "unixToTime": _f(_unix_to_time, _S),
    "alignLeft": _f(lambda n, s: _align(n, s, True), _I, _S),
    "alignRight": _f(lambda n, s: _align(n, s, False), _I, _S),
    "b64dec": _f(_b64dec, _S),
    # Sprig
    "b64enc": _f(lambda s: base64.b64encode(s.encode("utf-8", "surrogatepass")).decode(), _S),
    "lower": _f(str.lower, _S),
    "upper": _f(str.upper, _S),
    "title": _f(_title, _S),
    "trunc": _f(_trunc, _I, _S),
    "substr": _f(_substr, _I, _I, _S),
    "contains": _f(lambda sub, s: sub in s, _S, _S),
    "hasPrefix": _f(lambda prefix, s: s.startswith(prefix), _S, _S),
    "hasSuffix": _f(lambda suffix, s: s.endswith(suffix), _S, _S),
    "indent": _f(lambda n, s: " " * n + s.replace("\n", "\n" + " " * n), _I, _S),
    "nindent": _f(lambda n, s: "\n" + " " * n + s.replace("\n", "\n" + " " * n), _I, _S),
    "replace": _f(lambda old, new, s: s.replace(old, new), _S, _S, _S),
    "repeat": _f(_repeat, _I, _S),
    "trim": _f(str.strip, _S),
    "trimAll": _f(lambda cut, s: s.strip(cut), _S, _S),
    "trimSuffix": _f(lambda suffix, s: s.removesuffix(suffix), _S, _S),
    "trimPrefix": _f(lambda prefix, s: s.removeprefix(prefix), _S, _S),
    "int": _f(to_int, _A),
    "float64": _f(to_float, _A),
    "add": _f(lambda *values: sum(map(to_int, values)), variadic=_A),
    "sub": _f(lambda a, b: to_int(a) - to_int(b), _A, _A),
    "mul": _f(lambda a, *rest: math.prod(map(to_int, rest), start=to_int(a)), _A, variadic=_A),
    "div": _f(_int_div, _A, _A),
    "mod": _f(_int_mod, _A, _A),
    "addf": _f(lambda *values: float(sum(map(_decimal, values), decimal.Decimal())), variadic=_A),
    "subf": _f(lambda a, *rest: float(_decimal(a) - sum(map(_decimal, rest))), _A, variadic=_A),
    "mulf": _f(
        lambda a, *rest: float(math.prod(map(_decimal, rest), start=_decimal(a))), _A, variadic=_A
    ),
    "divf": _f(_divf, _A, variadic=_A),
    "max": _f(lambda a, *rest: max(map(to_int, (a, *rest))), _A, variadic=_A),
    "min": _f(lambda a, *rest: min(map(to_int, (a, *rest))), _A, variadic=_A),
    "maxf": _f(lambda a, *rest: max(map(to_float, (a, *rest))), _A, variadic=_A),
    "minf": _f(lambda a, *rest: min(map(to_float, (a, *rest))), _A, variadic=_A),
    "ceil": _f(lambda a: float(math.ceil(to_float(a))), _A),
    "floor": _f(lambda a: float(math.floor(to_float(a))), _A),
    "round": _f(_round, _A, _I, variadic=_A),
    "fromJson": _f(_from_json, _S),
    "date": _f(_date, _S, _A),
    "toDate": _f(_to_date, _S, _S),
    "now": _f(lambda: gotime.GoTime(time.time_ns())),
    "unixEpoch": _f(lambda t: str(t.unix), "time"),
    "default": _f(_default, _A, variadic=_A),
}


def _check(kind: str, value: Any) -> Any:
    if kind == _A:
        return None if value is MISSING else value
    ok = {
        _S: isinstance(value, str),
        _I: isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "time": isinstance(value, gotime.GoTime),
    }[kind]
    if not ok:
        wanted = {_S: "string", _I: "int", "float": "float64", "time": "time.Time"}[kind]
        raise CallError(f"wrong type for value; expected {wanted}; got {go_type(value)}")
    return value


def call(name: str, args: Sequence[Callable[[], Any]], context: Context) -> Any:
    """Call template function ``name`` with lazily evaluated ``args``."""
    func = FUNCTIONS[name]
    params = func.params
    if len(args) < len(params) or (func.variadic is None and len(args) != len(params)):
        wanted = f"at least {len(params)}" if func.variadic else str(len(params))
        raise CallError(f"wrong number of args for {name}: want {wanted} got {len(args)}")
    if func.lazy:  # and/or: stop at the first deciding value
        value: Any = None
        for arg in args:
            value = arg()
            if truth(value) == (name == "or"):
                return value
        return value
    values = [
        _check(params[i] if i < len(params) else func.variadic or _A, arg())
        for i, arg in enumerate(args)
    ]
    try:
        if func.context:
            return func.fn(context, *values)
        return func.fn(*values)
    except CallError as error:
        raise CallError(f"error calling {name}: {error}") from None
    except (ValueError, TypeError, OverflowError, IndexError, KeyError) as error:
        raise CallError(f"error calling {name}: {error}") from None
