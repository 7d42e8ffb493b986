"""The LogQL lexer: Loki's ``lex.go`` on top of Go's ``text/scanner``, token for token.

Token boundaries decide what parses, so this follows Loki's rules closely: a number followed by
unit letters is a duration or a byte size only if the whole run parses as one (``1mb`` is the
duration ``1m`` then the identifier ``b``); a function name is a function token only when ``(``
or ``by (``/``without (`` follows, so ``| rate > 5`` filters on a label called ``rate``; keywords
are case-insensitive; ``#`` starts a comment. Positions copy Go's scanner as well, including its
quirk of reporting line 0 for tokens the lexer extends character by character (two-character
operators, durations, ranges), because error messages carry them.

A lexical error becomes an ``ERROR`` token; the parser raises it when it reaches that token, as
Loki reports the first error in input order.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from typing import Final

from lokistack.logql.syntax import errors, tokens, units
from lokistack.model import goquote

Kind = tokens.Kind
Token = tokens.Token

_GO_WHITESPACE: Final = frozenset("\t\n\r ")
_DURATION_RUNES: Final = frozenset("nuµmshdwy")
_BYTES_RUNES: Final = frozenset("BikKMGTP")
_SIMPLE_ESCAPES: Final = frozenset("abfnrtv\\")


def _separators_ok(literal: str) -> bool:
    """Go's ``invalidSep`` check: each ``_`` sits between digits (a base prefix counts)."""
    body = literal[2:] if literal[:2].lower() in ("0x", "0o", "0b") else literal
    digit = "0-9a-fA-F" if literal[:2].lower() == "0x" else "0-9"
    prefixed = body is not literal
    pattern = rf"(?:_?[{digit}])+" if prefixed else rf"[{digit}](?:_?[{digit}])*"
    return all(re.fullmatch(pattern, part) for part in re.split(r"[^0-9a-fA-F_]", body) if part)


def _is_ident(ch: str, first: bool) -> bool:
    return ch == "_" or ch.isalpha() or (not first and ch.isdecimal())


class Lexer:
    """Produces Loki's tokens from query text, one at a time."""

    def __init__(self, text: str) -> None:
        self._src = text
        self._pos = 0
        self._line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def __iter__(self) -> Iterator[Token]:
        while True:
            token = self.next_token()
            yield token
            if token.kind in (Kind.EOF, Kind.ERROR):
                return

    def _position(self, offset: int) -> tuple[int, int]:
        """Go's scanner position (line, column) of the character at ``offset``."""
        if offset >= len(self._src):
            if not self._src:
                return 0, 0
            if self._src.endswith("\n"):
                offset = len(self._src) - 1
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def _peek(self, offset: int = 0) -> str:
        index = self._pos + offset
        return self._src[index] if index < len(self._src) else ""

    def _error(self, message: str, line: int, col: int) -> Token:
        self._pos = len(self._src)
        return Token(Kind.ERROR, "", line, col, error=errors.ParseError(message, line, col))

    def next_token(self) -> Token:  # noqa: PLR0911 - one branch per kind of token
        """The next token; EOF repeats at the end; an ERROR token ends the stream."""
        while True:
            start, scan_error = self._scan()
            line, col = self._position(start)
            if scan_error is not None:
                return self._error(scan_error, line, col)
            text = self._src[start : self._pos]
            if text == "#":
                newline = self._src.find("\n", self._pos)
                self._pos = len(self._src) if newline < 0 else newline
                continue
            break
        if start >= len(self._src):
            return Token(Kind.EOF, "", line, col)
        first = text[0]
        if (first.isdecimal() and first.isascii()) or (first == "." and len(text) > 1):
            return self._number(text, line, col)
        if first in '"`':
            return Token(Kind.STRING, text, line, col, goquote.unquote(text))
        if first == "-":
            special = self._minus(line, col)
            if special is not None:
                return special
        if first == "[":
            return self._range(col)
        return self._word(text, line, col)

    # -- Go text/scanner ---------------------------------------------------------------------

    def _scan(self) -> tuple[int, str | None]:  # noqa: PLR0912 - Go's Scan, kept in its shape
        """Go ``Scanner.Scan``: skip blanks and ``//``/``/* */`` comments, consume one token."""
        src, n = self._src, len(self._src)
        while True:
            while self._pos < n and src[self._pos] in _GO_WHITESPACE:
                self._pos += 1
            if src.startswith("//", self._pos):
                newline = src.find("\n", self._pos)
                self._pos = n if newline < 0 else newline
                continue
            if src.startswith("/*", self._pos):
                end = src.find("*/", self._pos + 2)
                if end < 0:
                    start, self._pos = self._pos, n
                    return start, "comment not terminated"
                self._pos = end + 2
                continue
            break
        start = self._pos
        if start >= n:
            return start, None
        ch = src[start]
        error: str | None = None
        if _is_ident(ch, first=True):
            self._pos += 1
            while self._pos < n and _is_ident(src[self._pos], first=False):
                self._pos += 1
        elif ch.isdecimal() and ch.isascii():
            error = self._scan_number(seen_dot=False)
        elif ch == "." and self._peek(1).isdecimal() and self._peek(1).isascii():
            self._pos += 1
            error = self._scan_number(seen_dot=True)
        elif ch in "\"'":
            # A '...' char literal is only ever a stray IDENTIFIER to Loki's grammar.
            error = self._scan_string(ch)
        elif ch == "`":
            end = src.find("`", start + 1)
            self._pos = n if end < 0 else end + 1
            error = "literal not terminated" if end < 0 else None
        else:
            self._pos += 1
        if error is None and any("\ud800" <= c <= "\udfff" for c in src[start : self._pos]):
            error = "invalid UTF-8 encoding"
        return start, error

    def _scan_string(self, quote: str) -> str | None:
        src, n = self._src, len(self._src)
        self._pos += 1
        while True:
            if self._pos >= n or src[self._pos] == "\n":
                return "literal not terminated"
            ch = src[self._pos]
            self._pos += 1
            if ch == quote:
                return None
            if ch == "\\":
                error = self._scan_escape(quote)
                if error is not None:
                    return error

    def _scan_escape(self, quote: str) -> str | None:
        ch = self._peek()
        self._pos += 1
        if ch in _SIMPLE_ESCAPES or ch == quote:
            return None
        if ch in "01234567":
            base, count = 8, 2
        elif ch in ("x", "u", "U"):
            base, count = 16, {"x": 2, "u": 4, "U": 8}[ch]
        else:
            return "invalid char escape"
        digits = ch if base == 8 else ""
        for _ in range(count):
            digit = self._peek()
            if not digit or not digit.isascii() or not digit.isalnum() or int(digit, 36) >= base:
                return "invalid char escape"
            digits += digit
            self._pos += 1
        value = int(digits, base)
        if (ch in "01234567x" and value > 0xFF) or value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            return "invalid syntax"  # the scanner accepts it, strconv.Unquote does not
        return None

    def _digits(self, base: int) -> tuple[int, str]:
        """Consume ``{digit | '_'}``; return (bit 0: digits seen, bit 1: '_' seen; bad digit)."""
        seen, invalid = 0, ""
        while True:
            ch = self._peek()
            if ch == "_":
                seen |= 2
            elif ch and ch.isascii() and (ch.isdigit() or (base == 16 and ch.lower() in "abcdef")):
                seen |= 1
                if base < 10 and int(ch) >= base and not invalid:
                    invalid = ch
            else:
                return seen, invalid
            self._pos += 1

    def _scan_number(self, *, seen_dot: bool) -> str | None:  # noqa: PLR0912 - Go's scanNumber
        """Go ``scanNumber``: decimal, 0x/0o/0b/0-octal integers, floats, exponents."""
        errs: list[str] = []
        start = self._pos - (1 if seen_dot else 0)
        base, prefix, seen, invalid, is_float = 10, "", 0, "", seen_dot
        if not seen_dot:
            if self._peek() == "0":
                self._pos += 1
                lead = self._peek().lower()
                if lead == "x":
                    self._pos, base, prefix = self._pos + 1, 16, "x"
                elif lead == "o":
                    self._pos, base, prefix = self._pos + 1, 8, "o"
                elif lead == "b" and self._peek(1) in ("0", "1"):
                    self._pos, base, prefix = self._pos + 1, 2, "b"
                else:
                    base, prefix, seen = 8, "0", 1
            digit_bits, invalid = self._digits(base)
            seen |= digit_bits
            if self._peek() == ".":
                self._pos += 1
                is_float = True
        name = {"x": "hexadecimal literal", "o": "octal literal", "0": "octal literal"}.get(
            prefix, "binary literal" if prefix == "b" else "decimal literal"
        )
        if is_float:
            if prefix in ("o", "b"):
                errs.append("invalid radix point in " + name)
            seen |= self._digits(base)[0]
        if not seen & 1:
            errs.append(name + " has no digits")
        exp = self._peek().lower()
        if exp == "e" or (exp == "p" and prefix == "x"):
            if exp == "e" and prefix not in ("", "0"):
                rune = goquote.quote_rune(self._peek())
                errs.append(f"{rune} exponent requires decimal mantissa")
            self._pos += 1
            is_float = True
            if self._peek() in ("+", "-"):
                self._pos += 1
            exp_bits = self._digits(10)[0]
            seen |= exp_bits
            if not exp_bits & 1:
                errs.append("exponent has no digits")
        elif prefix == "x" and is_float:
            errs.append("hexadecimal mantissa requires a 'p' exponent")
        if not is_float and invalid:
            errs.append(f"invalid digit {goquote.quote_rune(invalid)} in {name}")
        if "_" in self._src[start : self._pos] and not _separators_ok(self._src[start : self._pos]):
            errs.append("'_' must separate successive digits")
        return errs[0] if errs else None

    # -- Loki lex.go ---------------------------------------------------------------------

    def _suffix(self, allowed: frozenset[str]) -> str:
        """The run of unit characters after a number, as Loki's ``tryScan*`` collects it."""
        end = self._pos
        while end < len(self._src):
            ch = self._src[end]
            if ch.isspace() or not (ch.isnumeric() or ch in allowed or ch == "."):
                break
            end += 1
        return self._src[self._pos : end]

    def _number(self, text: str, line: int, col: int) -> Token:
        suffix = self._suffix(_DURATION_RUNES)
        if suffix:
            try:
                nanos = units.parse_duration(text + suffix)
            except ValueError:
                pass
            else:
                self._pos += len(suffix)
                return Token(Kind.DURATION, text + suffix, 0, col, nanos)
        suffix = self._suffix(_BYTES_RUNES)
        if suffix:
            try:
                size = units.parse_bytes(text + suffix)
            except ValueError:
                pass
            else:
                self._pos += len(suffix)
                return Token(Kind.BYTES, text + suffix, 0, col, size)
        return Token(Kind.NUMBER, text, line, col, text)

    def _minus(self, line: int, col: int) -> Token | None:
        """A parser flag (``--strict``) or a negative duration (``-5m``) starting at ``-``."""
        if self._peek() == "-":
            end = self._pos
            while end < len(self._src) and (self._src[end].isalpha() or self._src[end] == "-"):
                end += 1
            flag = "-" + self._src[self._pos : end]
            if flag in tokens.PARSER_FLAGS:
                self._pos = end
                return Token(Kind.FUNCTION_FLAG, flag, 0, col, flag)
        suffix = self._suffix(_DURATION_RUNES)
        if suffix:
            try:
                nanos = units.parse_duration("-" + suffix)
            except ValueError:
                return None
            self._pos += len(suffix)
            return Token(Kind.DURATION, "-" + suffix, 0, col, nanos)
        return None

    def _range(self, col: int) -> Token:
        """``[5m]``: everything up to ``]`` must be a Prometheus duration."""
        end = self._src.find("]", self._pos)
        if end < 0:
            return self._error("missing closing ']' in duration", 0, col)
        body = self._src[self._pos : end]
        self._pos = end + 1
        try:
            nanos = units.parse_prometheus_duration(body)
        except ValueError as exc:
            return self._error(str(exc), 0, col)
        return Token(Kind.RANGE, "[" + body + "]", 0, col, nanos)

    def _is_function(self) -> bool:
        """Loki's ``isFunction``: ``(``, or ``by (`` / ``without (``, follows."""
        rest = self._src[self._pos :].lstrip()
        if rest.startswith("("):
            return True
        for word in ("by", "without"):
            if rest[: len(word)].lower() == word:
                return rest[len(word) :].lstrip().startswith("(")
        return False

    def _word(self, text: str, line: int, col: int) -> Token:
        lower = text.lower()
        if lower in tokens.FUNCTIONS:
            if self._is_function():
                return Token(tokens.FUNCTIONS[lower], text, line, col, text)
            return Token(Kind.IDENTIFIER, text, line, col, text)
        pair = lower + self._peek()
        if len(pair) == 2 and pair in tokens.KEYWORDS:
            self._pos += 1
            return Token(tokens.KEYWORDS[pair], pair, 0, col, pair)
        if lower in tokens.KEYWORDS:
            return Token(tokens.KEYWORDS[lower], text, line, col, text)
        return Token(Kind.IDENTIFIER, text, line, col, text, is_name=_is_ident(text[0], True))


def tokenize(text: str) -> list[Token]:
    """Every token of ``text`` up to and including EOF (or the first ERROR token)."""
    return list(Lexer(text))
