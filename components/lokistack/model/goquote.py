"""Go string literals: ``strconv.Quote`` and the unquoting of PromQL string tokens.

A stream's canonical label string quotes values with Go's ``strconv.Quote`` and is hashed for
ring placement, so :func:`go_quote` must match it byte for byte (docs/format/labels.md).
:func:`unquote` turns a string token the label lexer accepted back into its value.

Values are Python ``str``. Bytes that are not valid UTF-8 (only reachable through ``\\x``/octal
escapes) are held as ``surrogateescape`` code points U+DC80..U+DCFF, which :func:`go_quote` writes
back as Go does (``\\xff``).
"""

from __future__ import annotations

from typing import Final

_SIMPLE_ESCAPES: Final = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def _escape_char(ch: str, quote: str, out: list[str]) -> None:
    """Append Go's escaped form of one code point (strconv.appendEscapedRune)."""
    if ch in (quote, "\\"):
        out.append("\\" + ch)
        return
    code = ord(ch)
    if 0xD800 <= code <= 0xDFFF:
        # Not a Go rune: bytes that were invalid UTF-8. U+DC80..U+DCFF are surrogate escapes
        # of one byte each; any other lone surrogate stands for its three WTF-8 bytes.
        raw = ch.encode("utf-8", "surrogateescape" if code >= 0xDC80 else "surrogatepass")
        out.extend(f"\\x{b:02x}" for b in raw)
    elif ch.isprintable():
        out.append(ch)
    elif ch in _SIMPLE_ESCAPES:
        out.append(_SIMPLE_ESCAPES[ch])
    elif code < 0x20 or code == 0x7F:
        out.append(f"\\x{code:02x}")
    elif code < 0x10000:
        out.append(f"\\u{code:04x}")
    else:
        out.append(f"\\U{code:08x}")


def go_quote(value: str, quote: str = '"') -> str:
    """Go's ``strconv.Quote`` (or ``QuoteRune`` style with ``quote="'"``) of ``value``."""
    if value.isprintable() and quote not in value and "\\" not in value:
        return quote + value + quote
    out = [quote]
    for ch in value:
        _escape_char(ch, quote, out)
    out.append(quote)
    return "".join(out)


def quote_rune(ch: str) -> str:
    """Go's ``strconv.QuoteRune`` of one character."""
    return go_quote(ch, "'")


_SIMPLE_UNESCAPES: Final = {
    "a": b"\a",
    "b": b"\b",
    "f": b"\f",
    "n": b"\n",
    "r": b"\r",
    "t": b"\t",
    "v": b"\v",
    "\\": b"\\",
    "'": b"'",
    '"': b'"',
}


def unquote(literal: str) -> str:
    """The value of a string token the lexer accepted (Prometheus ``strutil.Unquote``)."""
    quote, body = literal[0], literal[1:-1]
    if quote == "`" or "\\" not in body:
        return body
    out = bytearray()
    pos, end = 0, len(body)
    while pos < end:
        backslash = body.find("\\", pos)
        if backslash < 0:
            out += body[pos:].encode("utf-8")
            break
        out += body[pos:backslash].encode("utf-8")
        ch = body[backslash + 1]
        pos = backslash + 2
        if ch in _SIMPLE_UNESCAPES:
            out += _SIMPLE_UNESCAPES[ch]
        elif "0" <= ch <= "7":
            out.append(int(body[backslash + 1 : backslash + 4], 8))
            pos = backslash + 4
        elif ch == "x":
            out.append(int(body[pos : pos + 2], 16))
            pos += 2
        else:
            width = 4 if ch == "u" else 8
            out += chr(int(body[pos : pos + width], 16)).encode("utf-8")
            pos += width
    return out.decode("utf-8", "surrogateescape")
