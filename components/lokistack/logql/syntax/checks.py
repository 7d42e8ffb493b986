"""Checks of the small languages embedded in LogQL strings: RE2, patterns, IP ranges, JSON paths.

Loki rejects a bad ``regexp`` or ``pattern`` parser while parsing and a bad line-filter regex,
IP pattern or JSON path when it builds the pipeline; both end as HTTP 400. Doing all of them at
parse time gives the same answer earlier and lets the pipeline trust the AST. Each check returns
the parsed form the pipeline needs (compiled regex, pattern nodes, networks, path steps) and
raises ``ValueError`` with Loki's wording, which the parser wraps in a ``ParseError``.

Regular expressions use RE2 (``google-re2``), Go's syntax; RE2's error texts are mapped back to
Go's (``error parsing regexp: missing closing ): `(```), which Loki's messages embed.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import itertools
import re
import typing
from typing import Any, Final

import re2

from lokistack.model import goquote

_RE2_OPTIONS: Final = re2.Options()
_RE2_OPTIONS.log_errors = False

_GO_REGEXP_CODES: Final = {
    "missing )": "missing closing )",
    "missing ]": "missing closing ]",
    "unexpected )": "unexpected )",
    "trailing \\": "trailing backslash at end of expression",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid repetition size": "invalid repeat count",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "invalid named capture group": "invalid named capture",
    "invalid character class range": "invalid character class range",
}


@functools.lru_cache(maxsize=4096)
def compile_regex(pattern: str) -> Any:
    """Compile ``pattern`` with RE2, raising ``ValueError`` with Go's ``regexp`` error text."""
    try:
        return re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else b""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        code, _, arg = text.partition(": ")
        go_code = _GO_REGEXP_CODES.get(code, code)
        raise ValueError(f"error parsing regexp: {go_code}: `{arg}`") from None


def compile_anchored(pattern: str) -> Any:
    """A label-matcher regex: fully anchored, as Prometheus matchers are."""
    compile_regex(pattern)  # the error names the user's text, not the anchored wrapper
    return compile_regex(f"^(?:{pattern})$")


def capture_names(pattern: str) -> list[str | None]:
    """The capture groups of a valid RE2 ``pattern`` in order, ``None`` for unnamed ones.

    RE2 keeps only the last of two groups with one name; Loki rejects duplicates, so the names
    are read from the pattern text.
    """
    names: list[str | None] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if pattern.startswith("\\Q", i):
                end = pattern.find("\\E", i + 2)
                i = n if end < 0 else end + 2
                continue
            i += 2
            continue
        if in_class:
            if pattern.startswith("[:", i):
                end = pattern.find(":]", i + 2)
                i = n if end < 0 else end + 2
                continue
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            i += 1
            if pattern.startswith("^", i):
                i += 1
            if pattern.startswith("]", i):
                i += 1
            continue
        elif ch == "(":
            named = re.match(r"\(\?P?<([^>]*)>", pattern[i:])
            if named:
                names.append(named.group(1))
            elif not pattern.startswith("(?", i):
                names.append(None)
        i += 1
    return names


def check_regexp_parser(pattern: str) -> list[str]:
    """``| regexp``: compiles, has a named group, no name twice; returns the names."""
    regex = compile_regex(pattern)
    names = capture_names(pattern)
    if len(names) != regex.groups:  # pragma: no cover - guards the text scan above
        names = list(regex.groupindex)
    if not names:
        raise ValueError("at least one named capture must be supplied")
    seen: set[str] = set()
    for name in names:
        if name is None:
            continue
        if name in seen:
            raise ValueError(f"duplicate extracted label name '{name}'")
        seen.add(name)
    if not seen:
        raise ValueError("at least one named capture must be supplied")
    return [name for name in names if name is not None]


@dataclasses.dataclass(frozen=True, slots=True)
class PatternNode:
    """A pattern piece: literal text, or a capture (``<name>``; ``<_>`` is unnamed)."""

    text: str
    capture: bool

    def __str__(self) -> str:
        return f"<{self.text}>" if self.capture else self.text


_CAPTURE: Final = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")


def parse_pattern(pattern: str) -> list[PatternNode]:
    """Split a pattern into literals and captures, merging adjacent literal text."""
    nodes: list[PatternNode] = []
    pos = 0
    for match in _CAPTURE.finditer(pattern):
        if match.start() > pos:
            nodes.append(PatternNode(pattern[pos : match.start()], capture=False))
        nodes.append(PatternNode(match.group(1), capture=True))
        pos = match.end()
    if pos < len(pattern):
        nodes.append(PatternNode(pattern[pos:], capture=False))
    return nodes


def _check_no_consecutive(nodes: list[PatternNode]) -> None:
    for left, right in itertools.pairwise(nodes):
        if left.capture and right.capture:
            raise ValueError(f"found consecutive capture '{left}{right}': invalid expression")


def check_pattern_parser(pattern: str) -> list[PatternNode]:
    """``| pattern``: at least one named capture, none twice, no two captures adjacent."""
    if pattern == "":
        raise ValueError("syntax error: unexpected $end")
    nodes = parse_pattern(pattern)
    named = [node.text for node in nodes if node.capture and node.text != "_"]
    if not named:
        raise ValueError("at least one capture is required")
    _check_no_consecutive(nodes)
    seen: set[str] = set()
    for name in named:
        if name in seen:
            raise ValueError(f"duplicate capture name ({name}): invalid expression")
        seen.add(name)
    return nodes


def check_pattern_filter(pattern: str) -> list[PatternNode]:
    """``|>``/``!>`` line filters: only ``<_>`` wildcards, never two adjacent."""
    nodes = parse_pattern(pattern)
    _check_no_consecutive(nodes)
    for node in nodes:
        if node.capture and node.text != "_":
            raise ValueError(f"named captures are not allowed: found '{node}'")
    return nodes


IPPattern = (
    ipaddress.IPv4Address
    | ipaddress.IPv6Address
    | ipaddress.IPv4Network
    | ipaddress.IPv6Network
    | tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]
    | tuple[ipaddress.IPv6Address, ipaddress.IPv6Address]
)


def parse_ip_pattern(pattern: str) -> IPPattern:
    """``ip("…")``: one address, a CIDR prefix, or an inclusive ``from-to`` range."""
    invalid = ValueError(f"ip: invalid pattern: {goquote.go_quote(pattern)}")
    if pattern != pattern.strip() or not pattern:
        raise invalid
    try:
        return ipaddress.ip_address(pattern)
    except ValueError:
        pass
    if "/" in pattern and "%" not in pattern:
        address, _, bits = pattern.partition("/")
        if bits.isdigit() and bits.isascii():
            try:
                ipaddress.ip_address(address)
                return ipaddress.ip_network(pattern, strict=False)
            except ValueError:
                raise invalid from None
    low_text, sep, high_text = pattern.partition("-")
    if sep and "%" not in pattern:
        try:
            low, high = ipaddress.ip_address(low_text), ipaddress.ip_address(high_text)
        except ValueError:
            raise invalid from None
        if isinstance(low, ipaddress.IPv4Address) and isinstance(high, ipaddress.IPv4Address):
            return _ordered(low, high, invalid)
        if isinstance(low, ipaddress.IPv6Address) and isinstance(high, ipaddress.IPv6Address):
            return _ordered(low, high, invalid)
    raise invalid


_Address = typing.TypeVar("_Address", ipaddress.IPv4Address, ipaddress.IPv6Address)


def _ordered(low: _Address, high: _Address, invalid: ValueError) -> tuple[_Address, _Address]:
    if low > high:
        raise invalid
    return (low, high)


JSONPath = tuple[str | int, ...]


_JSON_TOKEN: Final = re.compile(
    r'\s*(?:([A-Za-z_][A-Za-z0-9_]*)|([0-9]+)|"((?:[^"\\]|\\.)*)"|(\S))'
)


def _json_tokens(expression: str) -> list[tuple[str, str]]:
    """(kind, text) pairs: ``field``, ``index``, ``key`` (unescaped), ``[``, ``]``, ``.``."""
    tokens: list[tuple[str, str]] = []
    for match in _JSON_TOKEN.finditer(expression):
        field, index, key, other = match.groups()
        if field is not None:
            tokens.append(("field", field))
        elif index is not None:
            tokens.append(("index", index))
        elif key is not None:
            tokens.append(("key", re.sub(r"\\(.)", r"\1", key)))
        elif other in ("[", "]", "."):
            tokens.append((other, other))
        else:
            raise ValueError(f"cannot parse expression [{expression}]: unexpected char {other}")
    return tokens


def parse_json_path(expression: str) -> JSONPath:
    """A ``| json a="x.y[0]"`` path: a field then ``.field``, ``["key"]``, ``[index]`` steps."""
    fail = ValueError(f"cannot parse expression [{expression}]: syntax error")
    tokens = _json_tokens(expression)
    path: list[str | int] = []
    i = 0
    while i < len(tokens):
        window = [kind for kind, _ in tokens[i : i + 3]]
        if not path and window[0] == "field":
            path.append(tokens[i][1])
            i += 1
        elif path and window[:2] == [".", "field"]:
            path.append(tokens[i + 1][1])
            i += 2
        elif window in (["[", "index", "]"], ["[", "key", "]"]):
            text = tokens[i + 1][1]
            path.append(int(text) if window[1] == "index" else text)
            i += 3
        else:
            raise fail
    if not path:
        raise fail
    return tuple(path)
