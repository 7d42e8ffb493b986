"""Stream label sets: parsing selector text, the canonical string, small edits.

A stream's identity is its canonical label string (docs/format/labels.md). Loki computes it with
Prometheus' ``ParseMetric`` and ``labels.String()``, which quote values with Go's
``strconv.Quote`` (:mod:`~lokistack.model.goquote`); the string is hashed for ring placement, so
every byte must match. This module reproduces both, including Prometheus' error messages, which
clients see in 400 responses (``couldn't parse labels: 1:5: parse error: ...``).

Values are Python ``str``. Bytes that are not valid UTF-8 (only reachable through ``\\x``/octal
escapes) are held as ``surrogateescape`` code points U+DC80..U+DCFF so that :func:`canonical`
writes them back as Go does (``\\xff``).
"""

from __future__ import annotations

import operator
import re
from typing import Final

from lokistack.model import goquote

Labels = tuple[tuple[str, str], ...]
"""A label set: ``(name, value)`` pairs sorted by name, without empty values."""

METRIC_NAME: Final = "__name__"

_LEGACY_NAME: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

# The common case, `{a="b", c="d"}` with plain values, is recognised by two regexes instead of
# the character-level parser. Anything else (escapes, other quotes, comments, errors) takes the
# slow path, which is the reference.
_WS: Final = r"[ \t\n\r]*"
_PAIR: Final = r"[a-zA-Z_][a-zA-Z0-9_]*" + _WS + "=" + _WS + r'"[^"\\\n\ud800-\udfff]*"'
_FAST_FULL: Final = re.compile(
    r"\{"
    + _WS
    + "(?:"
    + _PAIR
    + _WS
    + "(?:,"
    + _WS
    + _PAIR
    + _WS
    + ")*(?:,"
    + _WS
    + ")?)?\\}"
    + _WS
)
_FAST_PAIR: Final = re.compile(
    r"([a-zA-Z_][a-zA-Z0-9_]*)" + _WS + "=" + _WS + r'"([^"\\\n\ud800-\udfff]*)"'
)
_BY_NAME: Final = operator.itemgetter(0)


class LabelsError(ValueError):
    """A label string that does not parse; ``str()`` is the Prometheus-style message."""


def is_legacy_name(name: str) -> bool:
    """Whether ``name`` is a classic Prometheus label name, written unquoted."""
    return _LEGACY_NAME.fullmatch(name) is not None


def canonical(labels: Labels) -> str:
    """Prometheus ``labels.String()``: the stream's identity, ``{a="x", b="y"}``."""
    parts = []
    for name, value in labels:
        key = name if _LEGACY_NAME.fullmatch(name) else goquote.go_quote(name)
        parts.append(key + "=" + goquote.go_quote(value))
    return "{" + ", ".join(parts) + "}"


def normalize(pairs: list[tuple[str, str]] | Labels) -> Labels:
    """Sort by name and drop empty values (Prometheus ``labels.Builder`` semantics).

    A name given with an empty value is removed entirely, even where it also has a value, as
    the Builder deletes by name.
    """
    empty = {name for name, value in pairs if not value}
    if empty:
        pairs = [pair for pair in pairs if pair[0] not in empty]
    return tuple(sorted(pairs, key=_BY_NAME))


def with_label(labels: Labels, name: str, value: str) -> Labels:
    """``labels`` with ``name`` set to ``value`` (replaced if present), still sorted."""
    kept = [pair for pair in labels if pair[0] != name]
    if value:
        kept.append((name, value))
    return tuple(sorted(kept, key=_BY_NAME))


def get(labels: Labels, name: str) -> str:
    """The value of ``name``, or ``""`` when absent."""
    for label_name, value in labels:
        if label_name == name:
            return value
    return ""


def parse_labels(text: str) -> Labels:
    """Parse selector text as Prometheus ``ParseMetric`` does; raise :class:`LabelsError`."""
    if _FAST_FULL.fullmatch(text):
        return normalize(_FAST_PAIR.findall(text))
    return normalize(_Parser(text).parse_metric())


# ---------------------------------------------------------------------------------------------
# The slow path: a hand-written copy of the Prometheus lexer (promql/parser/lex.go) restricted to
# what ParseMetric can meet, and of the grammar rules `metric`, `label_set` and `label_set_item`
# with their error productions, so the first error is the one Prometheus would report.

_EOF: Final = "EOF"
_IDENT: Final = "IDENT"
_METRIC_IDENT: Final = "METRIC_IDENT"
_STRING: Final = "STRING"
_OP: Final = "OP"
_PUNCT_STATEMENT: Final = frozenset("{,()[]")
_SPACE: Final = frozenset(" \t\n\r")
_ALPHA: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_ALNUM: Final = _ALPHA | frozenset("0123456789")
_ALNUM_COLON: Final = _ALNUM | {":"}
_Token = tuple[str, int, str]
_KIND_PREFIX: Final = {
    _IDENT: "identifier ",
    _METRIC_IDENT: "metric identifier ",
    _STRING: "string ",
}
"""(kind, start index, text)."""


def _sharp_u(ch: str) -> str:
    """Go's ``%#U``: ``U+0071 'q'`` (the character only when printable)."""
    text = f"U+{ord(ch):04X}"
    return text + f" '{ch}'" if ch.isprintable() else text


def _describe(token: _Token) -> str:
    """Prometheus ``Item.desc()``: how an unexpected token is named in messages."""
    kind, _, text = token
    if kind == _EOF:
        return "end of input"
    if kind == _OP:
        return f"<op:{text}>"
    if kind == _STRING and len(text.encode("utf-8", "surrogatepass")) > 10:
        return "string " + goquote.go_quote(text[:10]) + "..."
    return _KIND_PREFIX.get(kind, "") + goquote.go_quote(text)


def _digit_value(ch: str) -> int:
    if "0" <= ch <= "9":
        return ord(ch) - ord("0")
    if "a" <= ch <= "f":
        return ord(ch) - ord("a") + 10
    if "A" <= ch <= "F":
        return ord(ch) - ord("A") + 10
    return 16


class _Parser:
    """One parse of one label string; raises :class:`LabelsError` at the first error."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, start: int, message: str) -> LabelsError:
        prefix = self.text[:start].encode("utf-8", "surrogatepass")
        line = prefix.count(b"\n") + 1
        column = len(prefix) - prefix.rfind(b"\n")
        return LabelsError(f"{line}:{column}: parse error: {message}")

    def unexpected(self, token: _Token, context: str, expected: str) -> LabelsError:
        message = "unexpected " + _describe(token)
        if context:
            message += " in " + context
        if expected:
            message += ", expected " + expected
        return self.error(token[1], message)

    # -- lexer ---------------------------------------------------------------------------------

    def lex(self, braces: bool) -> _Token:
        """The next token, in the lexer state inside braces or outside (``lexStatements``)."""
        text, end = self.text, len(self.text)
        start = self.skip_space()
        if start >= end:
            if braces:
                raise self.error(start, "unexpected end of input inside braces")
            return (_EOF, start, "")
        ch = text[start]
        if ch in "\"'":
            self.pos = self.lex_string(start, ch)
            return (_STRING, start, text[start : self.pos])
        if ch == "`":
            self.pos = self.lex_raw_string(start)
            return (_STRING, start, text[start : self.pos])
        if ch in _ALPHA or (ch == ":" and not braces):
            pos = start + 1
            allowed = _ALNUM if braces else _ALNUM_COLON
            while pos < end and text[pos] in allowed:
                pos += 1
            self.pos = pos
            word = text[start:pos]
            return (_METRIC_IDENT if ":" in word else _IDENT, start, word)
        self.pos = start + 1
        nxt = text[start + 1] if start + 1 < end else ""
        return self.lex_braces(start, ch, nxt) if braces else self.lex_statement(start, ch, nxt)

    def skip_space(self) -> int:
        """Skip spaces and ``#`` comments (the parser drops COMMENT items); return the index."""
        text, pos, end = self.text, self.pos, len(self.text)
        while pos < end:
            ch = text[pos]
            if ch in _SPACE:
                pos += 1
            elif ch == "#":
                newline = text.find("\n", pos)
                pos = end if newline < 0 else newline
            else:
                break
        self.pos = pos
        return pos

    def lex_braces(self, start: int, ch: str, nxt: str) -> _Token:
        """Punctuation inside braces (``lexInsideBraces``)."""
        if ch in ",}":
            return (ch, start, ch)
        if ch == "=":
            if nxt == "~":
                self.pos += 1
                return (_OP, start, "=~")
            return ("=", start, "=")
        if ch == "!":
            if nxt in ("~", "="):
                self.pos += 1
                return (_OP, start, "!" + nxt)
            bad = goquote.quote_rune(nxt or "\ufffd")
            raise self.error(start, f"unexpected character after '!' inside braces: {bad}")
        if ch == "{":
            raise self.error(start, "unexpected left brace '{'")
        raise self.error(start, f"unexpected character inside braces: {goquote.quote_rune(ch)}")

    def lex_statement(self, start: int, ch: str, nxt: str) -> _Token:
        """Punctuation outside braces; PromQL operators and numbers are not told apart."""
        if ch in _PUNCT_STATEMENT:
            return (ch, start, ch)
        if ch == "}":
            raise self.error(start, "unexpected right brace '}'")
        if ch == "=" and nxt == "~":
            raise self.error(start, "unexpected character after '=': '~'")
        if ch == "=" and nxt == "=":
            self.pos += 1
            return (_OP, start, "==")
        if ch == "=":
            return ("=", start, "=")
        raise self.error(start, f"unexpected character: {goquote.quote_rune(ch)}")

    def lex_string(self, start: int, quote: str) -> int:
        text, end = self.text, len(self.text)
        pos = start + 1
        while True:
            if pos >= end:
                raise self.error(start, "unterminated quoted string")
            ch = text[pos]
            pos += 1
            if ch == "\\":
                pos = self.lex_escape(start, pos, quote)
            elif ch == quote:
                return pos
            elif ch == "\n":
                raise self.error(start, "unterminated quoted string")
            elif "\ud800" <= ch <= "\udfff":
                raise self.error(start, "invalid UTF-8 rune")

    def lex_escape(self, start: int, pos: int, quote: str) -> int:
        """Check one escape after the backslash at ``pos - 1``; return the index after it."""
        text, end = self.text, len(self.text)
        if pos >= end:
            raise self.error(start, "escape sequence not terminated")
        ch = text[pos]
        pos += 1
        if ch in "abfnrtv\\" or ch == quote:
            return pos
        if "0" <= ch <= "7":
            digits, base, limit = 3, 8, 255
        elif ch in "xuU":
            digits, base, limit = {"x": (2, 16, 255), "u": (4, 16, 0x10FFFF)}.get(
                ch, (8, 16, 0x10FFFF)
            )
            ch = text[pos] if pos < end else ""
            pos += 1
        else:
            raise self.error(start, f"unknown escape sequence {_sharp_u(ch)}")
        value = 0
        while digits > 0:
            digit = _digit_value(ch) if ch else 16
            if digit >= base:
                if not ch:
                    raise self.error(start, "escape sequence not terminated")
                raise self.error(start, f"illegal character {_sharp_u(ch)} in escape sequence")
            value = value * base + digit
            digits -= 1
            if digits > 0:
                ch = text[pos] if pos < end else ""
                pos += 1
        if value > limit or 0xD800 <= value < 0xE000:
            raise self.error(start, "escape sequence is an invalid Unicode code point")
        return pos

    def lex_raw_string(self, start: int) -> int:
        text = self.text
        close = text.find("`", start + 1)
        if close < 0:
            raise self.error(start, "unterminated raw string")
        for ch in text[start + 1 : close]:
            if "\ud800" <= ch <= "\udfff":
                raise self.error(start, "invalid UTF-8 rune")
        return close + 1

    # -- grammar -------------------------------------------------------------------------------

    def parse_metric(self) -> list[tuple[str, str]]:
        token = self.lex(braces=False)
        metric_name = None
        if token[0] in (_IDENT, _METRIC_IDENT):
            metric_name = token[2]
            token = self.lex(braces=False)
        pairs: list[tuple[str, str]] = []
        if token[0] == "{":
            pairs = self.parse_label_set()
            token = self.lex(braces=False)
        if token[0] != _EOF:
            raise self.unexpected(token, "", "")
        if metric_name is not None:
            pairs = [pair for pair in pairs if pair[0] != METRIC_NAME]
            pairs.append((METRIC_NAME, metric_name))
        return pairs

    def parse_label_set(self) -> list[tuple[str, str]]:
        """The items after ``{`` up to and including ``}``."""
        pairs: list[tuple[str, str]] = []
        token = self.lex(braces=True)
        if token[0] == "}":
            return pairs
        while True:
            if token[0] == _IDENT:
                name = token[2]
                token = self.lex(braces=True)
                if token[0] != "=":
                    raise self.unexpected(token, "label set", '"="')
                pairs.append((name, self.expect_value()))
            elif token[0] == _STRING:
                name = goquote.unquote(token[2])
                if self.peek_kind() == "=":
                    self.lex(braces=True)
                    pairs.append((name, self.expect_value()))
                else:
                    pairs.append((METRIC_NAME, name))
            else:
                raise self.unexpected(token, "label set", 'identifier or "}"')
            token = self.lex(braces=True)
            if token[0] == "}":
                return pairs
            if token[0] != ",":
                raise self.unexpected(token, "label set", '"," or "}"')
            token = self.lex(braces=True)
            if token[0] == "}":
                return pairs

    def expect_value(self) -> str:
        token = self.lex(braces=True)
        if token[0] != _STRING:
            raise self.unexpected(token, "label set", "string")
        return goquote.unquote(token[2])

    def peek_kind(self) -> str:
        saved = self.pos
        kind = self.lex(braces=True)[0]
        self.pos = saved
        return kind
