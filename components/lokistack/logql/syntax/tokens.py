"""LogQL tokens: kinds in Loki's yacc order, the keyword tables, and their names in errors.

The order of ``Kind`` is the order of Loki's ``%token`` declarations: goyacc lists expected
tokens in that order (``expecting } or ,``), so sorting by kind reproduces its messages.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Final

from lokistack.logql.syntax import errors


class Kind(enum.IntEnum):
    """Token kinds, in the order of Loki's yacc declarations (syntax errors list them so)."""

    EOF = 0
    ERROR = enum.auto()
    BYTES = enum.auto()
    IDENTIFIER = enum.auto()
    STRING = enum.auto()
    NUMBER = enum.auto()
    FUNCTION_FLAG = enum.auto()
    DURATION = enum.auto()
    RANGE = enum.auto()
    EQ = enum.auto()
    RE = enum.auto()
    NRE = enum.auto()
    NPA = enum.auto()
    OPEN_BRACE = enum.auto()
    CLOSE_BRACE = enum.auto()
    OPEN_BRACKET = enum.auto()
    CLOSE_BRACKET = enum.auto()
    COMMA = enum.auto()
    DOT = enum.auto()
    PIPE_MATCH = enum.auto()
    PIPE_EXACT = enum.auto()
    PIPE_PATTERN = enum.auto()
    OPEN_PARENTHESIS = enum.auto()
    CLOSE_PARENTHESIS = enum.auto()
    BY = enum.auto()
    WITHOUT = enum.auto()
    COUNT_OVER_TIME = enum.auto()
    RATE = enum.auto()
    RATE_COUNTER = enum.auto()
    SUM = enum.auto()
    SORT = enum.auto()
    SORT_DESC = enum.auto()
    AVG = enum.auto()
    MAX = enum.auto()
    MIN = enum.auto()
    COUNT = enum.auto()
    STDDEV = enum.auto()
    STDVAR = enum.auto()
    BOTTOMK = enum.auto()
    TOPK = enum.auto()
    APPROX_TOPK = enum.auto()
    BYTES_OVER_TIME = enum.auto()
    BYTES_RATE = enum.auto()
    BOOL = enum.auto()
    JSON = enum.auto()
    REGEXP = enum.auto()
    LOGFMT = enum.auto()
    PIPE = enum.auto()
    LINE_FMT = enum.auto()
    LABEL_FMT = enum.auto()
    UNWRAP = enum.auto()
    AVG_OVER_TIME = enum.auto()
    SUM_OVER_TIME = enum.auto()
    MIN_OVER_TIME = enum.auto()
    MAX_OVER_TIME = enum.auto()
    STDVAR_OVER_TIME = enum.auto()
    STDDEV_OVER_TIME = enum.auto()
    QUANTILE_OVER_TIME = enum.auto()
    BYTES_CONV = enum.auto()
    DURATION_CONV = enum.auto()
    DURATION_SECONDS_CONV = enum.auto()
    FIRST_OVER_TIME = enum.auto()
    LAST_OVER_TIME = enum.auto()
    ABSENT_OVER_TIME = enum.auto()
    VECTOR = enum.auto()
    LABEL_REPLACE = enum.auto()
    UNPACK = enum.auto()
    OFFSET = enum.auto()
    PATTERN = enum.auto()
    IP = enum.auto()
    ON = enum.auto()
    IGNORING = enum.auto()
    GROUP_LEFT = enum.auto()
    GROUP_RIGHT = enum.auto()
    DECOLORIZE = enum.auto()
    DROP = enum.auto()
    KEEP = enum.auto()
    OR = enum.auto()
    AND = enum.auto()
    UNLESS = enum.auto()
    CMP_EQ = enum.auto()
    NEQ = enum.auto()
    LT = enum.auto()
    LTE = enum.auto()
    GT = enum.auto()
    GTE = enum.auto()
    ADD = enum.auto()
    SUB = enum.auto()
    MUL = enum.auto()
    DIV = enum.auto()
    MOD = enum.auto()
    POW = enum.auto()


KEYWORDS: Final[dict[str, Kind]] = {
    ",": Kind.COMMA,
    ".": Kind.DOT,
    "{": Kind.OPEN_BRACE,
    "}": Kind.CLOSE_BRACE,
    "=": Kind.EQ,
    "!=": Kind.NEQ,
    "=~": Kind.RE,
    "!~": Kind.NRE,
    "!>": Kind.NPA,
    "|=": Kind.PIPE_EXACT,
    "|~": Kind.PIPE_MATCH,
    "|>": Kind.PIPE_PATTERN,
    "|": Kind.PIPE,
    "unwrap": Kind.UNWRAP,
    "(": Kind.OPEN_PARENTHESIS,
    ")": Kind.CLOSE_PARENTHESIS,
    "by": Kind.BY,
    "without": Kind.WITHOUT,
    "bool": Kind.BOOL,
    "[": Kind.OPEN_BRACKET,
    "]": Kind.CLOSE_BRACKET,
    "label_replace": Kind.LABEL_REPLACE,
    "offset": Kind.OFFSET,
    "on": Kind.ON,
    "ignoring": Kind.IGNORING,
    "group_left": Kind.GROUP_LEFT,
    "group_right": Kind.GROUP_RIGHT,
    "or": Kind.OR,
    "and": Kind.AND,
    "unless": Kind.UNLESS,
    "+": Kind.ADD,
    "-": Kind.SUB,
    "*": Kind.MUL,
    "/": Kind.DIV,
    "%": Kind.MOD,
    "^": Kind.POW,
    "==": Kind.CMP_EQ,
    ">": Kind.GT,
    ">=": Kind.GTE,
    "<": Kind.LT,
    "<=": Kind.LTE,
    "json": Kind.JSON,
    "regexp": Kind.REGEXP,
    "logfmt": Kind.LOGFMT,
    "unpack": Kind.UNPACK,
    "pattern": Kind.PATTERN,
    "label_format": Kind.LABEL_FMT,
    "line_format": Kind.LINE_FMT,
    "ip": Kind.IP,
    "decolorize": Kind.DECOLORIZE,
    "drop": Kind.DROP,
    "keep": Kind.KEEP,
}
"""Loki's ``tokens``: symbols and keywords (matched case-insensitively)."""

FUNCTIONS: Final[dict[str, Kind]] = {
    "rate": Kind.RATE,
    "rate_counter": Kind.RATE_COUNTER,
    "count_over_time": Kind.COUNT_OVER_TIME,
    "bytes_rate": Kind.BYTES_RATE,
    "bytes_over_time": Kind.BYTES_OVER_TIME,
    "avg_over_time": Kind.AVG_OVER_TIME,
    "sum_over_time": Kind.SUM_OVER_TIME,
    "min_over_time": Kind.MIN_OVER_TIME,
    "max_over_time": Kind.MAX_OVER_TIME,
    "stdvar_over_time": Kind.STDVAR_OVER_TIME,
    "stddev_over_time": Kind.STDDEV_OVER_TIME,
    "quantile_over_time": Kind.QUANTILE_OVER_TIME,
    "first_over_time": Kind.FIRST_OVER_TIME,
    "last_over_time": Kind.LAST_OVER_TIME,
    "absent_over_time": Kind.ABSENT_OVER_TIME,
    "vector": Kind.VECTOR,
    "sum": Kind.SUM,
    "avg": Kind.AVG,
    "max": Kind.MAX,
    "min": Kind.MIN,
    "count": Kind.COUNT,
    "stddev": Kind.STDDEV,
    "stdvar": Kind.STDVAR,
    "bottomk": Kind.BOTTOMK,
    "topk": Kind.TOPK,
    "sort": Kind.SORT,
    "sort_desc": Kind.SORT_DESC,
    "label_replace": Kind.LABEL_REPLACE,
    "approx_topk": Kind.APPROX_TOPK,
    "bytes": Kind.BYTES_CONV,
    "duration": Kind.DURATION_CONV,
    "duration_seconds": Kind.DURATION_SECONDS_CONV,
    "ip": Kind.IP,
}
"""Loki's ``functionTokens``: names that are tokens only when called (otherwise identifiers)."""

PARSER_FLAGS: Final = frozenset({"--strict", "--keep-empty"})

_DISPLAY: Final = {kind: text for text, kind in KEYWORDS.items()} | {Kind.EOF: "$end"}


def display(kind: Kind) -> str:
    """The token's name in Loki's syntax errors: its text for keywords, else the yacc name."""
    return _DISPLAY.get(kind, kind.name)


@dataclasses.dataclass(frozen=True, slots=True)
class Token:
    """One token. ``value`` is the unquoted string, the number text, or nanoseconds/bytes."""

    kind: Kind
    text: str
    line: int
    col: int
    value: str | int = ""
    is_name: bool = True
    """False for an IDENTIFIER that Loki makes of a stray character (``@``, ``'x'``)."""
    error: errors.ParseError | None = None
