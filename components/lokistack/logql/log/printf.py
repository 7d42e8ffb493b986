"""Go's ``fmt`` printing of template values: ``Sprint``, ``Sprintln``, ``Sprintf``.

Templates print every action's value with ``fmt.Fprint`` and users call ``printf`` with Go verbs
(``%s``, ``%d``, ``%05.2f``, ``%-10v``, ``%q``, ``%x``). A verb that does not fit its argument
prints Go's ``%!d(string=x)`` rather than failing, and missing or extra arguments print
``%!s(MISSING)`` / ``%!(EXTRA …)``, because that is what Loki users see.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from lokistack.logql.log import gotime
from lokistack.logql.syntax import units
from lokistack.model import goquote

_VERB: Final = re.compile(r"%([-+# 0]*)(\*|[0-9]+)?(?:\.(\*|[0-9]*))?(.)?", re.DOTALL)
_STRING_ESCAPE: Final = re.compile(
    r"\\(?:[abfnrtv\\'\"]|[0-7]{3}|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})"
)


def unquote_go(literal: str) -> str:
    """A Go ``"…"`` or ``'…'`` literal's value; ``ValueError`` for an invalid escape."""
    body = literal[1:-1]
    if "\\" in _STRING_ESCAPE.sub("", body):
        raise ValueError("invalid syntax")
    if literal[0] == "'":
        value = goquote.unquote('"' + body.replace('"', '\\"') + '"')
        if len(value) != 1:
            raise ValueError("malformed character constant: " + literal)
        return value
    return goquote.unquote(literal)


def go_type(value: Any) -> str:  # noqa: PLR0911 - one answer per Go type
    """Go's name for the type of a template value (``%T``)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, gotime.GoTime):
        return "time.Time"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return "[]interface {}"


def go_print(value: Any) -> str:  # noqa: PLR0911 - one answer per Go type
    """``fmt.Sprint`` of one value (``%v``)."""
    if isinstance(value, str):
        return value
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return units.format_go_float(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_nested(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_nested(v) for v in value) + "]"
    return str(value)


def _nested(value: Any) -> str:
    return "<nil>" if value is None else go_print(value)


def sprint(*values: Any) -> str:
    """``fmt.Sprint``: a space between two operands when neither is a string."""
    out: list[str] = []
    for i, value in enumerate(values):
        if i and not isinstance(value, str) and not isinstance(values[i - 1], str):
            out.append(" ")
        out.append(_nested(value))
    return "".join(out)


def sprintln(*values: Any) -> str:
    return " ".join(_nested(value) for value in values) + "\n"


def _bad(verb: str, value: Any) -> str:
    return (
        f"%!{verb}({go_type(value)}={_nested(value)})" if value is not None else f"%!{verb}(<nil>)"
    )


def _pad(text: str, flags: str, width: int | None, numeric: bool) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags and numeric:
        sign = text[0] if text[:1] in ("-", "+") else ""
        return sign + text[len(sign) :].rjust(width - len(sign), "0")
    return text.rjust(width)


def _format_int(value: int, verb: str, flags: str, precision: int | None) -> str | None:
    digits = {"d": "d", "v": "d", "x": "x", "X": "X", "o": "o", "O": "o", "b": "b"}.get(verb)
    if verb == "c":
        return chr(value)
    if verb == "q":
        return goquote.go_quote(chr(value), "'")
    if verb == "U":
        return f"U+{value:04X}"
    if digits is None:
        return None
    body = format(abs(value), digits)
    if precision is not None:
        body = body.rjust(precision, "0")
    if "#" in flags and verb in "xXoO":
        body = {"x": "0x", "X": "0X", "o": "0", "O": "0o"}[verb] + body
    sign = "-" if value < 0 else ("+" if "+" in flags else (" " if " " in flags else ""))
    return sign + body


def _format_float(value: float, verb: str, flags: str, precision: int | None) -> str | None:
    if verb not in "vfFeEgG":
        return None
    if math.isnan(value) or math.isinf(value):
        body = "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
        return body if "+" in flags or not body.startswith("+") else body[1:]
    if verb == "v" or (verb in "gG" and precision is None):
        body = units.format_go_float(value)
        body = body.upper() if verb == "G" else body
    elif verb in "fF":
        body = f"{value:.{6 if precision is None else precision}f}"
    elif verb in "eE":
        body = f"{value:.{6 if precision is None else precision}{verb}}"
    else:
        body = f"{value:.{precision}{verb}}"
    if "+" in flags and not body.startswith("-"):
        body = "+" + body
    return body


def _format_one(verb: str, flags: str, width: int | None, precision: int | None, value: Any) -> str:
    text: str | None
    numeric = False
    if verb == "T":
        text = go_type(value)
    elif verb == "v" and not isinstance(value, bool | int | float):
        text = _nested(value)
    elif isinstance(value, bool):
        text = ("true" if value else "false") if verb in "vt" else None
    elif isinstance(value, int):
        text, numeric = _format_int(value, verb, flags, precision), True
    elif isinstance(value, float):
        text, numeric = _format_float(value, verb, flags, precision), True
    elif isinstance(value, str | gotime.GoTime):
        string = str(value)
        if verb in "sv":
            text = string if precision is None else string[:precision]
        elif verb == "q":
            text = goquote.go_quote(string)
        elif verb in "xX":
            text = string.encode("utf-8", "surrogatepass").hex()
            text = text.upper() if verb == "X" else text
        else:
            text = None
    else:
        text = None
    if text is None:
        return _bad(verb, value)
    return _pad(text, flags, width, numeric)


def sprintf(template: str, *args: Any) -> str:
    """``fmt.Sprintf`` for the verbs templates use."""
    out: list[str] = []
    pos, index = 0, 0
    while True:
        percent = template.find("%", pos)
        if percent < 0:
            out.append(template[pos:])
            break
        out.append(template[pos:percent])
        match = _VERB.match(template, percent)
        assert match is not None
        flags, width_text, precision_text, verb = match.groups()
        pos = match.end()
        if verb is None:
            out.append("%!(NOVERB)")
            break
        if verb == "%":
            out.append("%")
            continue
        width: int | None = None
        precision: int | None = None
        if width_text == "*":
            width = args[index] if index < len(args) and isinstance(args[index], int) else None
            index += 1
        elif width_text:
            width = int(width_text)
        if precision_text == "*":
            precision = args[index] if index < len(args) and isinstance(args[index], int) else None
            index += 1
        elif precision_text is not None:
            precision = int(precision_text or "0")
        if index >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format_one(verb, flags, width, precision, args[index]))
        index += 1
    if index < len(args):
        extra = ", ".join(f"{go_type(arg)}={_nested(arg)}" for arg in args[index:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


# -- builtins that inspect values ------------------------------------------------------------------


def go_len(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, list | dict):
        return len(value)
    raise TypeError(f"len of type {go_type(value)}")


def go_index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list | str) and isinstance(key, int) and not isinstance(key, bool):
            if not 0 <= key < len(value):
                raise IndexError(f"index out of range: {key}")
            value = value[key] if isinstance(value, list) else ord(value[key])
        else:
            raise TypeError(f"can't index item of type {go_type(value)}")
    return value


def _comparable(a: Any, b: Any) -> None:
    numbers = (int, float)
    same = (
        (isinstance(a, bool) and isinstance(b, bool))
        or (isinstance(a, str) and isinstance(b, str))
        or (
            isinstance(a, numbers)
            and isinstance(b, numbers)
            and not isinstance(a, bool)
            and not isinstance(b, bool)
            and type(a) is type(b)
        )
    )
    if not same:
        raise TypeError("incompatible types for comparison")


def go_eq(a: Any, *others: Any) -> bool:
    """Go's ``eq``: true when ``a`` equals any of ``others``."""
    if not others:
        raise TypeError("missing argument for comparison")
    for other in others:
        if a is None or other is None:
            if a is other:
                return True
            continue
        _comparable(a, other)
        if a == other:
            return True
    return False


def go_less(a: Any, b: Any) -> bool:
    _comparable(a, b)
    if isinstance(a, bool):
        raise TypeError("invalid type for comparison")
    return bool(a < b)
