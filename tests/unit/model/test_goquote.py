"""Go string literals: strconv.Quote / QuoteRune and PromQL string-token unquoting."""

from __future__ import annotations

import pytest
from lokistack.model import goquote

# -- quoting ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("", '""'),
        ("plain", '"plain"'),
        ('q"b\\s', '"q\\"b\\\\s"'),
        ("\a\b\f\n\r\t\v", '"\\a\\b\\f\\n\\r\\t\\v"'),
        ("\x00\x01\x1f\x7f", '"\\x00\\x01\\x1f\\x7f"'),
        ("é日本😀", '"é日本😀"'),
        ("\u00a0", '"\\u00a0"'),  # no-break space: a separator, not printable in Go
        ("\u200b\ufeff", '"\\u200b\\ufeff"'),  # format characters
        ("\u2028", '"\\u2028"'),
        ("\x85", '"\\u0085"'),  # C1 control
        ("\U000e0001", '"\\U000e0001"'),
        ("\U0010ffff", '"\\U0010ffff"'),
        ("\ue000", '"\\ue000"'),  # private use
        ("\udcff\udc80", '"\\xff\\x80"'),  # invalid UTF-8 bytes
        ("'", '"\'"'),
    ],
)
def test_go_quote(value: str, quoted: str) -> None:
    assert goquote.go_quote(value) == quoted


def test_go_quote_rune_style() -> None:
    assert goquote.go_quote("'", "'") == "'\\''"
    assert goquote.go_quote('"', "'") == "'\"'"


# -- unquoting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ('""', ""),
        ('"plain"', "plain"),
        ("`raw\\n`", "raw\\n"),
        ("'it\\'s'", "it's"),
        ('"x\\ty\\n\\"q\\"\\\\"', 'x\ty\n"q"\\'),
        ('"\\a\\b\\f\\r\\v"', "\a\b\f\r\v"),
        ('"\\x41\\101\\u00e9\\U0001F600"', "AAé😀"),
        ('"\\xc3\\xa9"', "é"),  # escaped bytes that form valid UTF-8
        ('"\\xff"', "\udcff"),  # invalid UTF-8 kept as a surrogate escape
    ],
)
def test_unquote(literal: str, value: str) -> None:
    assert goquote.unquote(literal) == value


def test_quote_rune() -> None:
    assert goquote.quote_rune("q") == "'q'"
    assert goquote.quote_rune("'") == "'\\''"
