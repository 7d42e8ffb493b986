"""The parse error every LogQL caller sees, worded and positioned as Loki words it.

The query API answers a ``ParseError`` with HTTP 400 and its ``str()`` as the plain-text body, so
the text must match Loki's ``logqlmodel.ParseError``: ``parse error at line L, col C: <msg>``, or
``parse error : <msg>`` for errors found after parsing (validation), which carry position 0:0.
"""

from __future__ import annotations

from typing import Final

MAX_INPUT_SIZE: Final = 131072
"""Loki refuses queries of this many bytes or more (``maxInputSize``)."""

ERR_EMPTY_COMPATIBLE_SELECTOR: Final = (
    "queries require at least one regexp or equality matcher that does not have an "
    'empty-compatible value. For instance, app=~".*" does not meet this requirement, '
    'but app=~".+" will'
)


class ParseError(ValueError):
    """A LogQL syntax or validation error; ``line``/``col`` are 1-based, or 0 when unknown."""

    def __init__(self, message: str, line: int = 0, col: int = 0) -> None:
        super().__init__(message, line, col)
        self.message = message
        self.line = line
        self.col = col

    def __str__(self) -> str:
        if self.line == 0 and self.col == 0:
            return f"parse error : {self.message}"
        return f"parse error at line {self.line}, col {self.col}: {self.message}"

    def __repr__(self) -> str:
        return f"ParseError({self.message!r}, {self.line}, {self.col})"
