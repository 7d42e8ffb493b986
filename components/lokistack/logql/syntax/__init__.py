"""LogQL syntax: lexer, hand-written parser, typed AST and printer.

``parse_expr`` turns query text into an AST of frozen dataclasses (:mod:`.ast`) or raises a
:class:`~.errors.ParseError` worded as Loki's; :func:`.printer.format` turns an AST back into
canonical LogQL. The grammar, token rules, error texts and validation follow Loki's
``pkg/logql/syntax`` so that queries written for Loki parse, and fail, the same way here.
"""

from __future__ import annotations

from lokistack.logql.syntax.errors import ParseError
from lokistack.logql.syntax.parser import (
    parse_expr,
    parse_log_selector,
    parse_sample_expr,
    validate_selector,
)

__all__ = [
    "ParseError",
    "parse_expr",
    "parse_log_selector",
    "parse_sample_expr",
    "validate_selector",
]
