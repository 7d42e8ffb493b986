"""Token boundaries, values and positions of the LogQL lexer, which decide what parses."""

from __future__ import annotations

import pytest
from lokistack.logql.syntax import lexer, tokens

K = tokens.Kind


def kinds(text: str) -> list[tokens.Kind]:
    return [token.kind for token in lexer.tokenize(text)[:-1]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{foo="bar"}', [K.OPEN_BRACE, K.IDENTIFIER, K.EQ, K.STRING, K.CLOSE_BRACE]),
        ("{ foo !~ `x` }", [K.OPEN_BRACE, K.IDENTIFIER, K.NRE, K.STRING, K.CLOSE_BRACE]),
        ("|= != |~ !~ |> !>", [K.PIPE_EXACT, K.NEQ, K.PIPE_MATCH, K.NRE, K.PIPE_PATTERN, K.NPA]),
        ("== = >= > <= <", [K.CMP_EQ, K.EQ, K.GTE, K.GT, K.LTE, K.LT]),
        ("+ - * / % ^", [K.ADD, K.SUB, K.MUL, K.DIV, K.MOD, K.POW]),
        ("| json | LOGFMT | Unpack", [K.PIPE, K.JSON, K.PIPE, K.LOGFMT, K.PIPE, K.UNPACK]),
        (
            'rate({a="b"}[10s])',
            [
                K.RATE,
                K.OPEN_PARENTHESIS,
                K.OPEN_BRACE,
                K.IDENTIFIER,
                K.EQ,
                K.STRING,
                K.CLOSE_BRACE,
                K.RANGE,
                K.CLOSE_PARENTHESIS,
            ],
        ),
        (
            "SUM BY (foo) (x)",
            [
                K.SUM,
                K.BY,
                K.OPEN_PARENTHESIS,
                K.IDENTIFIER,
                K.CLOSE_PARENTHESIS,
                K.OPEN_PARENTHESIS,
                K.IDENTIFIER,
                K.CLOSE_PARENTHESIS,
            ],
        ),
        ("count without(", [K.COUNT, K.WITHOUT, K.OPEN_PARENTHESIS]),
        ("rate", [K.IDENTIFIER]),
        ("ip", [K.IDENTIFIER]),
        ("| rate > 5", [K.PIPE, K.IDENTIFIER, K.GT, K.NUMBER]),
        ('|= ip("b")', [K.PIPE_EXACT, K.IP, K.OPEN_PARENTHESIS, K.STRING, K.CLOSE_PARENTHESIS]),
        (
            "bytes(x) duration (x) duration_seconds(x)",
            [
                K.BYTES_CONV,
                K.OPEN_PARENTHESIS,
                K.IDENTIFIER,
                K.CLOSE_PARENTHESIS,
                K.DURATION_CONV,
                K.OPEN_PARENTHESIS,
                K.IDENTIFIER,
                K.CLOSE_PARENTHESIS,
                K.DURATION_SECONDS_CONV,
                K.OPEN_PARENTHESIS,
                K.IDENTIFIER,
                K.CLOSE_PARENTHESIS,
            ],
        ),
        ("| logfmt --strict --keep-empty", [K.PIPE, K.LOGFMT, K.FUNCTION_FLAG, K.FUNCTION_FLAG]),
        ("decolorize drop keep", [K.DECOLORIZE, K.DROP, K.KEEP]),
        (
            "on ignoring group_left group_right bool offset unless",
            [K.ON, K.IGNORING, K.GROUP_LEFT, K.GROUP_RIGHT, K.BOOL, K.OFFSET, K.UNLESS],
        ),
        ("123 123.45 1e6 .5 0x1A 0x1p3 0b01", [K.NUMBER] * 7),
        ("-123", [K.SUB, K.NUMBER]),
        ("34 + -123", [K.NUMBER, K.ADD, K.SUB, K.NUMBER]),
        ("34-123", [K.NUMBER, K.SUB, K.NUMBER]),
        ("123ms -123ms 1h15m30.918273645s 1h0.0m0s 5d 1w 1y 1.5h 2us 3µs", [K.DURATION] * 10),
        ("123KB 123PB 123PiB 0B 1kB 20MB 1Ki", [K.BYTES] * 7),
        ("1mb", [K.DURATION, K.IDENTIFIER]),  # 1m, then b: a syntax error for the parser
        ('{foo="bar"} #|~ "x"', [K.OPEN_BRACE, K.IDENTIFIER, K.EQ, K.STRING, K.CLOSE_BRACE]),
        ('#{foo="bar"}', []),
        ('{foo="#"}', [K.OPEN_BRACE, K.IDENTIFIER, K.EQ, K.STRING, K.CLOSE_BRACE]),
        (
            '{a="b"}\n# comment\n| json',
            [K.OPEN_BRACE, K.IDENTIFIER, K.EQ, K.STRING, K.CLOSE_BRACE, K.PIPE, K.JSON],
        ),
        ("x // go comment\n y /* block */ z", [K.IDENTIFIER] * 3),
    ],
)
def test_token_kinds(text: str, expected: list[tokens.Kind]) -> None:
    assert kinds(text) == expected


def test_values() -> None:
    tokens = lexer.tokenize('"a\\tb\\u00e9" `raw\\n` 5m -90s 1.5KB [1h30m] --strict 1e3')
    values = [token.value for token in tokens[:-1]]
    assert values == [
        "a\tbé",
        "raw\\n",
        300_000_000_000,
        -90_000_000_000,
        1500,
        5_400_000_000_000,
        "--strict",
        "1e3",
    ]


def test_stray_characters_are_identifiers_that_are_not_names() -> None:
    token = lexer.tokenize("@")[0]
    assert token.kind is K.IDENTIFIER
    assert not token.is_name


def test_positions_follow_go_scanner() -> None:
    tokens = lexer.tokenize('{a="b"}\n  |= "x"')
    assert [(t.line, t.col) for t in tokens] == [
        (1, 1),
        (1, 2),
        (1, 3),
        (1, 4),
        (1, 7),
        (0, 3),
        (2, 6),
        (2, 9),
    ]


def test_eof_position_after_trailing_newline_is_the_newline() -> None:
    eof = lexer.tokenize('{a="b"}\n')[-1]
    assert (eof.line, eof.col) == (1, 8)
    empty = lexer.tokenize("")[-1]
    assert (empty.line, empty.col) == (0, 0)


@pytest.mark.parametrize(
    ("text", "message", "line", "col"),
    [
        ('{foo="bar}', "literal not terminated", 1, 6),
        ("`abc", "literal not terminated", 1, 1),
        ('"\\q"', "invalid char escape", 1, 1),
        ('"\\400"', "invalid syntax", 1, 1),
        ("x [5", "missing closing ']' in duration", 0, 3),
        ("[5minutes]", 'unknown unit "minutes" in duration "5minutes"', 0, 1),
        ("[1.5m]", 'unknown unit "." in duration "1.5m"', 0, 1),
        ("[m]", 'not a valid duration string: "m"', 0, 1),
        ("08", "invalid digit '8' in octal literal", 1, 1),
        ("0x", "hexadecimal literal has no digits", 1, 1),
        ("1e", "exponent has no digits", 1, 1),
        ("1__0", "'_' must separate successive digits", 1, 1),
        ("/* open", "comment not terminated", 1, 1),
        ('{a="\udca0"}', "invalid UTF-8 encoding", 1, 4),
    ],
)
def test_errors(text: str, message: str, line: int, col: int) -> None:
    last = lexer.tokenize(text)[-1]
    assert last.kind is K.ERROR
    assert last.error is not None
    assert (last.error.message, last.error.line, last.error.col) == (message, line, col)


def test_display_names_match_loki() -> None:
    assert tokens.display(K.EOF) == "$end"
    assert tokens.display(K.IP) == "ip"
    assert tokens.display(K.RATE) == "RATE"
    assert tokens.display(K.NEQ) == "!="
    assert tokens.display(K.LABEL_REPLACE) == "label_replace"
