"""The logfmt reader of ``| logfmt``: Loki's decoder, fast for the common case.

Loki splits logfmt with its copy of go-logfmt's decoder: keys run to ``=`` or whitespace, a bare
key has an empty value, quoted values take JSON-style escapes, and a malformed pair is skipped
(``--strict`` stops there and reports the decoder's error, with a byte position). Most lines are
a plain run of ``k=v``/``k="v"`` pairs; one regex recognises those and ``findall`` splits them in
C. Any other line goes through :class:`_LogfmtScanner`, a character-level copy of the decoder's
states, which also produces the error texts (``logfmt syntax error at pos 8 : unterminated
quoted value``).
"""

from __future__ import annotations

import re
from typing import Final

_SIMPLE_PAIR: Final = r'[^\x00-\x20="]+(?:=(?:"[^"\\]*"|[^\x00-\x20="]*))?'
_SIMPLE_LINE: Final = re.compile(r"[\x00-\x20]*(?:" + _SIMPLE_PAIR + r"(?:[\x00-\x20]+|\Z))*")
_PAIRS: Final = re.compile(r'([^\x00-\x20="]+)(?:=(?:"([^"\\]*)"|([^\x00-\x20="]*)))?')


def logfmt_pairs(line: str, strict: bool) -> tuple[list[tuple[str, str]], str | None]:
    """The ``(key, value)`` pairs of a logfmt line and the first syntax error, if any.

    Malformed pairs are skipped; with ``strict`` scanning stops at the first one.
    """
    if _SIMPLE_LINE.fullmatch(line):
        return [(key, quoted or bare) for key, quoted, bare in _PAIRS.findall(line)], None
    return _LogfmtScanner(line).scan(strict)


class _LogfmtScanner:
    """Loki's ``logfmt.Decoder`` (itself go-logfmt's) over a ``str``; positions are bytes."""

    def __init__(self, line: str) -> None:
        self.line = line
        self.pos = 0
        self.error: str | None = None

    def fail(self, message: str) -> None:
        if self.error is None:
            offset = len(self.line[: self.pos].encode("utf-8", "surrogatepass")) + 1
            self.error = f"logfmt syntax error at pos {offset} : {message}"

    def scan(self, strict: bool) -> tuple[list[tuple[str, str]], str | None]:
        pairs: list[tuple[str, str]] = []
        line = self.line
        while self.pos < len(line):
            result = self.next_pair()
            if result is None:
                if strict and self.error is not None:
                    break
                continue
            pairs.append(result)
        return pairs, self.error

    def skip_value(self) -> None:
        line, pos = self.line, self.pos
        while pos < len(line) and line[pos] > " ":
            pos += 1
        self.pos = pos

    def next_pair(self) -> tuple[str, str] | None:  # noqa: PLR0911 - one exit per decoder state
        line, n = self.line, len(self.line)
        pos = self.pos
        while pos < n and line[pos] <= " ":
            pos += 1
        if pos >= n:
            self.pos = n
            return None
        start = pos
        while pos < n and line[pos] > " " and line[pos] not in '="':
            pos += 1
        self.pos = pos
        key = line[start:pos]
        if pos >= n or line[pos] <= " ":
            return (key, "")
        if line[pos] == '"' or not key:
            self.fail(f"unexpected '{line[pos]}'")
            self.skip_value()
            return None
        pos += 1  # "="
        self.pos = pos
        if pos >= n or line[pos] <= " ":
            return (key, "")
        if line[pos] == '"':
            return self.quoted(key)
        start = pos
        while pos < n and line[pos] > " ":
            if line[pos] in '="':
                self.pos = pos
                self.fail(f"unexpected '{line[pos]}'")
                self.skip_value()
                return None
            pos += 1
        self.pos = pos
        return (key, line[start:pos])

    def quoted(self, key: str) -> tuple[str, str] | None:
        line, start = self.line, self.pos
        pos, escaped, has_escape = start + 1, False, False
        while pos < len(line):
            ch = line[pos]
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = has_escape = True
            elif ch == '"':
                self.pos = pos + 1
                body = line[start + 1 : pos]
                if not has_escape:
                    return (key, body)
                value = _unquote(body)
                if value is None:
                    self.fail("invalid quoted value")
                    return None
                return (key, value)
            pos += 1
        self.pos = len(line)
        self.fail("unterminated quoted value")
        return None


_ESCAPES: Final = {'"': '"', "\\": "\\", "/": "/", "'": "'", "b": "\b", "f": "\f", "n": "\n"}
_ESCAPES.update({"r": "\r", "t": "\t"})
_ESCAPE: Final = re.compile(r"\\(?:u([0-9a-fA-F]{4})|(.)|$)", re.DOTALL)


def _unquote(body: str) -> str | None:
    """go-logfmt's JSON-style unquoting of a quoted value's body, or ``None`` if invalid."""
    invalid = False

    def replace(match: re.Match[str]) -> str:
        nonlocal invalid
        hex_digits, char = match.groups()
        if hex_digits is not None:
            return chr(int(hex_digits, 16))
        if char is None or char not in _ESCAPES:
            invalid = True
            return ""
        return _ESCAPES[char]

    text = _ESCAPE.sub(replace, body)
    if invalid:
        return None
    # Surrogate pairs written as two \u escapes combine; lone ones become U+FFFD.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
