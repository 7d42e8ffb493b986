"""Line filters, per line and in bulk over a decoded chunk block.

A line filter is a predicate on the line alone, so it can run before every other stage as long as
no earlier stage rewrote the line (:mod:`.pipeline` hoists them). Per line, each filter is a
closure over a C-level test: ``in`` for ``|=``, RE2 ``search`` for ``|~``, ``str.find`` steps for
``|>`` patterns, a small scanner for ``ip()``.

In bulk, :class:`BlockPrefilter` answers "which entries of this block can pass?" without touching
the others from Python: each literal filter becomes one ``bytes.find`` scan over the block's
concatenated lines (:meth:`~lokistack.chunk.block.DecodedBlock.find_literal`), and the hits of
several filters are intersected. Regex and pattern filters contribute a literal every match must
contain, when one can be read off the expression; the exact test then runs on the candidates only.
This is what makes a rare ``|= "needle"`` cost a ``memchr``-speed scan rather than millions of
Python calls (docs: DESIGN.md "Chunks"; reference: performance-and-style.md B.7).
"""

from __future__ import annotations

import bisect
import dataclasses
import ipaddress
import itertools
import re
from collections.abc import Callable, Sequence
from typing import Final

from lokistack.chunk import block as chunk_block
from lokistack.logql.syntax import ast, checks

LineTest = Callable[[str], bool]
"""Whether a line passes one filter stage."""


# -- pattern filters (``|>`` / ``!>``) -----------------------------------------------------------


def pattern_test(nodes: Sequence[checks.PatternNode]) -> LineTest:
    """Loki's ``pattern.Matcher.Test``: literals found in order, nothing captured empty, and the
    line ends where the pattern does (a trailing ``<_>`` needs a non-empty rest).

    As in Loki, the first literal is searched, not anchored, so ``"foo <_>"`` matches
    ``"xfoo bar"``.
    """
    literals = [(index, node.text) for index, node in enumerate(nodes) if not node.capture]
    ends_on_capture = bool(nodes) and nodes[-1].capture
    empty = not nodes

    def test(line: str) -> bool:
        if not line or empty:
            return not line and empty
        offset = 0
        for index, literal in literals:
            found = line.find(literal, offset)
            if found < 0 or (index != 0 and found == offset):
                return False
            offset = found + len(literal)
        return ends_on_capture == (offset != len(line))

    return test


# -- ip() ---------------------------------------------------------------------------------------

_IPV4_CHARS: Final = frozenset("0123456789.")
_IPV6_CHARS: Final = frozenset("0123456789abcdefABCDEF:.")
# Loki's hints for where an address may start: a digit with a dot within the next three
# characters, or hex digits followed by a colon (or "::" and a hex digit).
_IP_START: Final = re.compile(
    r"(?P<v4>[0-9](?=\.|.\.|..\.)(?=...))"
    r"|(?P<v6>(?:::[0-9a-fA-F]|[0-9a-fA-F]{1,4}:))"
)
_IP_SPAN_V4: Final = re.compile(r"[0-9.]*")
_IP_SPAN_V6: Final = re.compile(r"[0-9a-fA-F:.]*")


class IPMatcher:
    """``ip("…")`` over arbitrary text: true when any address found in it is in the range."""

    __slots__ = ("_pattern",)

    def __init__(self, pattern: str) -> None:
        self._pattern = checks.parse_ip_pattern(pattern)

    def contains(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        pattern = self._pattern
        if isinstance(pattern, tuple):
            low, high = pattern
            return address.version == low.version and low <= address <= high  # type: ignore[operator]
        if isinstance(pattern, ipaddress.IPv4Network | ipaddress.IPv6Network):
            if address.version != pattern.version:
                return False
            if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
                return False
            return address in pattern
        return address == pattern

    def search(self, text: str) -> bool:
        """Loki's ``ipFilter.filter``: scan for address-shaped runs and test each one.

        A run that is not an address, or not in the range, is skipped whole (plus one
        character), as Loki does, so the scan is linear.
        """
        position = 0
        search = _IP_START.search
        while True:
            hint = search(text, position)
            if hint is None:
                return False
            start = hint.start()
            span = (_IP_SPAN_V4 if hint.lastgroup == "v4" else _IP_SPAN_V6).match(text, start)
            candidate = span.group() if span else ""
            try:
                address = ipaddress.ip_address(candidate)
            except ValueError:
                address = None
            if address is not None and self.contains(address):
                return True
            position = start + len(candidate) + 1


# -- one filter stage ---------------------------------------------------------------------------


def _term_test(op: ast.LineFilterOp, term: ast.LineFilterTerm) -> LineTest:
    """The positive test of one ``or`` alternative; the operator only picks its kind."""
    if term.ip:
        return IPMatcher(term.value).search
    if op in (ast.LineFilterOp.CONTAINS, ast.LineFilterOp.NOT_CONTAINS):
        needle = term.value
        return lambda line: needle in line
    if op in (ast.LineFilterOp.MATCH, ast.LineFilterOp.NOT_MATCH):
        search = checks.compile_regex(term.value).search
        return lambda line: search(line) is not None
    return pattern_test(checks.check_pattern_filter(term.value))


def compile_line_filter(stage: ast.LineFilter) -> LineTest | None:
    """The predicate of a line filter stage, or ``None`` when it keeps every line (``|= ""``)."""
    op = stage.op
    terms = stage.terms
    if not op.negated and any(
        not term.ip and not term.value and op is not ast.LineFilterOp.PATTERN for term in terms
    ):
        return None  # an empty literal or regex matches every line, so the whole "or" does
    tests = [_term_test(op, term) for term in terms]
    if len(tests) == 1:
        test = tests[0]
        if op.negated:
            return lambda line: not test(line)
        return test
    if op.negated:
        return lambda line: not any(test(line) for test in tests)
    return lambda line: any(test(line) for test in tests)


# -- required literals of regexes ---------------------------------------------------------------

_REPEAT: Final = re.compile(r"\{([0-9]+)(?:,([0-9]*))?\}")
_CLASS_ESCAPES: Final = frozenset("dDsSwWbBAz")


def required_literal(pattern: str) -> str | None:  # noqa: PLR0912 - one branch per atom kind
    """The longest literal that every match of an RE2 ``pattern`` contains, if easy to see.

    Only the top level of the expression is read, as a sequence of atoms: a ``|`` there, any
    ``(?`` (flags such as ``(?i)`` change what a literal means) or an escape that is not
    punctuation or a one-letter class gives up. Literal characters form runs; a run ends at any
    other atom, and a quantifier that allows zero repetitions removes the character it applies
    to. A wrong answer would drop matching lines, so anything unusual returns ``None``.
    """
    if "(?" in pattern or "\\Q" in pattern or not pattern.isascii():
        return None
    runs: list[str] = []
    current: list[str] = []
    depth, i, n = 0, 0, len(pattern)
    while i < n:
        ch = pattern[i]
        literal: str | None = None
        if ch == "\\":
            if i + 1 >= n:
                return None
            nxt = pattern[i + 1]
            if nxt.isalnum() and nxt not in _CLASS_ESCAPES:
                return None
            literal = None if nxt.isalnum() else nxt
            i += 2
        elif ch == "[":
            i = _class_end(pattern, i) + 1
            if i == 0:
                return None
        elif ch in "()":
            depth += 1 if ch == "(" else -1
            i += 1
        elif ch == "|":
            if depth == 0:
                return None
            i += 1
        elif ch in ".^$*+?" or (ch == "{" and _REPEAT.match(pattern, i)):
            i += 1
        else:
            literal = ch
            i += 1
        minimum, quantified, i = _quantifier(pattern, i)
        if literal is None or depth > 0:
            runs.append("".join(current))
            current.clear()
            continue
        if minimum >= 1:
            current.append(literal)
        if quantified:  # repeated or optional: no literal can run across it
            runs.append("".join(current))
            current.clear()
    runs.append("".join(current))
    best = max(runs, key=len)
    return best or None


def _quantifier(pattern: str, i: int) -> tuple[int, bool, int]:
    """At ``i``: the minimum repeat count of a quantifier (1 if none), whether there is one,
    and the index after it."""
    if i >= len(pattern):
        return 1, False, i
    ch = pattern[i]
    if ch in "*?":
        minimum, i = 0, i + 1
    elif ch == "+":
        minimum, i = 1, i + 1
    elif ch == "{" and (repeat := _REPEAT.match(pattern, i)):
        minimum, i = int(repeat.group(1)), repeat.end()
    else:
        return 1, False, i
    if i < len(pattern) and pattern[i] == "?":
        i += 1  # lazy
    return minimum, True, i


def _class_end(pattern: str, start: int) -> int:
    """The index of the ``]`` closing the class that opens at ``start``, or -1."""
    i = start + 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):
        i += 1
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            if end < 0:
                return -1
            i = end + 2
            continue
        if pattern[i] == "]":
            return i
        i += 1
    return -1


# -- bulk pre-filtering of a block ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class BulkTerm:
    """What one hoisted filter stage contributes to the block pre-filter.

    ``any_of``: the entry must contain at least one of these byte strings (a positive ``or``
    chain of literals, or a literal required by a regex or pattern). ``none_of``: it must
    contain none of them (``!=``). ``exact`` says the bulk answer is the filter's answer, so the
    per-line test can be skipped for candidates.
    """

    any_of: tuple[bytes, ...] = ()
    none_of: tuple[bytes, ...] = ()
    exact: bool = False


def bulk_term(stage: ast.LineFilter) -> BulkTerm | None:
    """The bulk form of a line filter stage, or ``None`` if it has none (``ip()``, ``!~``)."""
    op = stage.op
    terms = stage.terms
    if any(term.ip for term in terms):
        return None
    values = tuple(term.value.encode("utf-8", "surrogatepass") for term in terms)
    if op is ast.LineFilterOp.CONTAINS:
        return BulkTerm(any_of=values, exact=True)
    if op is ast.LineFilterOp.NOT_CONTAINS:
        return BulkTerm(none_of=values, exact=True)
    if op in (ast.LineFilterOp.MATCH, ast.LineFilterOp.PATTERN):
        required: list[bytes] = []
        for term in terms:
            if op is ast.LineFilterOp.MATCH:
                literal = required_literal(term.value)
            else:
                pieces = [n.text for n in checks.check_pattern_filter(term.value) if not n.capture]
                literal = max(pieces, key=len, default="") or None
            if literal is None:
                return None
            required.append(literal.encode("utf-8", "surrogatepass"))
        return BulkTerm(any_of=tuple(required), exact=False)
    return None


class BlockPrefilter:
    """The conjunction of hoisted filters' bulk terms, applied to a whole decoded block."""

    __slots__ = ("terms",)

    def __init__(self, terms: Sequence[BulkTerm]) -> None:
        self.terms = tuple(terms)

    def candidates(self, decoded: chunk_block.DecodedBlock, indexes: range) -> Sequence[int]:
        """Entry indexes in ``indexes`` (step 1) that may pass, ascending.

        Lines that fail a literal are never touched from Python: each literal is one
        ``bytes.find`` scan, and the hit lists are merged as sets.
        """
        selected: Sequence[int] | None = None
        excluded: set[int] = set()
        for term in self.terms:
            if term.none_of:
                for needle in term.none_of:
                    excluded.update(_hits_in(decoded, needle, indexes))
                continue
            hits: list[int]
            if len(term.any_of) == 1:
                hits = _hits_in(decoded, term.any_of[0], indexes)
            else:
                merged: set[int] = set()
                for needle in term.any_of:
                    merged.update(_hits_in(decoded, needle, indexes))
                hits = sorted(merged)
            if selected is None:
                selected = hits
            else:
                keep = set(hits)
                selected = [index for index in selected if index in keep]
            if not selected:
                return []
        if selected is None:
            selected = indexes
        if excluded:
            selected = list(itertools.filterfalse(excluded.__contains__, selected))
        return selected


def _hits_in(decoded: chunk_block.DecodedBlock, needle: bytes, indexes: range) -> list[int]:
    """``find_literal`` hits restricted to ``indexes`` (an empty needle matches every entry)."""
    if not needle:
        return list(indexes)
    hits = decoded.find_literal(needle)
    if indexes.start == 0 and indexes.stop >= len(decoded):
        return hits
    low = bisect.bisect_left(hits, indexes.start)
    high = bisect.bisect_left(hits, indexes.stop)
    return hits[low:high]
