"""Parsing of expressions: binary operations, aggregations, ``label_replace``, literals.

Binary operators use precedence climbing with Loki's table (``or`` < ``and``/``unless`` <
comparisons < ``+ -`` < ``* / %`` < ``^``, only ``^`` right-associative). Operations on two
literals are folded as Loki folds them (``1 + 1`` is the literal 2, division by zero is NaN).

Loki reports some errors only after a successful parse, walking the tree (``validateExpr``):
wrong parameters, grouping or unwrap for an aggregation, a log query as a binary operand. The
parser records such an error against the node it concerns and :func:`validate` raises the first
one in Loki's walk order, so that a syntax error later in the text still wins, as in Loki.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import typing
from collections.abc import Callable
from typing import Final

from lokistack.logql.syntax import ast, checks, cursor, errors, parser_log, units

Kind = cursor.Kind

_BINARY: Final = {
    Kind.OR: (ast.BinOp.OR, 1),
    Kind.AND: (ast.BinOp.AND, 2),
    Kind.UNLESS: (ast.BinOp.UNLESS, 2),
    Kind.CMP_EQ: (ast.BinOp.EQ, 3),
    Kind.NEQ: (ast.BinOp.NEQ, 3),
    Kind.GT: (ast.BinOp.GT, 3),
    Kind.GTE: (ast.BinOp.GTE, 3),
    Kind.LT: (ast.BinOp.LT, 3),
    Kind.LTE: (ast.BinOp.LTE, 3),
    Kind.ADD: (ast.BinOp.ADD, 4),
    Kind.SUB: (ast.BinOp.SUB, 4),
    Kind.MUL: (ast.BinOp.MUL, 5),
    Kind.DIV: (ast.BinOp.DIV, 5),
    Kind.MOD: (ast.BinOp.MOD, 5),
    Kind.POW: (ast.BinOp.POW, 6),
}

_RANGE_OPS: Final = {Kind.__members__[op.name]: op for op in ast.RangeOp}
_VECTOR_OPS: Final = {Kind.__members__[op.name]: op for op in ast.VectorOp}


_COMPARE: Final[dict[ast.BinOp, Callable[[float, float], bool]]] = {
    ast.BinOp.EQ: operator.eq,
    ast.BinOp.NEQ: operator.ne,
    ast.BinOp.GT: operator.gt,
    ast.BinOp.GTE: operator.ge,
    ast.BinOp.LT: operator.lt,
    ast.BinOp.LTE: operator.le,
}


@dataclasses.dataclass(frozen=True, eq=False)
class Invalid:
    """Stands in for a node Loki builds in error (its error is in ``Parser.deferred``)."""


class Parser:
    """Parses one query; ``deferred`` maps ``id(node)`` to the error Loki reports for it."""

    def __init__(self, cur: cursor.Cursor) -> None:
        self.cur = cur
        self.deferred: dict[int, errors.ParseError] = {}
        self._pinned: list[object] = []  # keeps ids in `deferred` unique while parsing

    def _defer(self, node: object, error: errors.ParseError | str) -> None:
        self.deferred[id(node)] = errors.ParseError(error) if isinstance(error, str) else error
        self._pinned.append(node)

    def _invalid(self, error: errors.ParseError | str) -> ast.SampleExpr:
        node = Invalid()
        self._defer(node, error)
        return typing.cast("ast.SampleExpr", node)

    def expr(self, min_precedence: int = 0) -> ast.Expr:
        """An expression whose operators all bind at least as tightly as ``min_precedence``."""
        left = self._operand()
        while True:
            entry = _BINARY.get(self.cur.kind())
            if entry is None or entry[1] < min_precedence:
                return left
            op, precedence = entry
            self.cur.advance()
            bool_modifier, matching = self._modifiers()
            right = self.expr(precedence if op is ast.BinOp.POW else precedence + 1)
            left = self._binary(op, left, right, bool_modifier, matching)

    def _modifiers(self) -> tuple[bool, ast.VectorMatching]:
        bool_modifier = self.cur.accept(Kind.BOOL) is not None
        if not self.cur.at(Kind.ON, Kind.IGNORING):
            return bool_modifier, ast.VectorMatching()
        on = self.cur.advance().kind is Kind.ON
        self.cur.expect(Kind.OPEN_PARENTHESIS)
        labels = self._labels()
        card = ast.Cardinality.ONE_TO_ONE
        include: tuple[str, ...] = ()
        if self.cur.at(Kind.GROUP_LEFT, Kind.GROUP_RIGHT):
            left = self.cur.advance().kind is Kind.GROUP_LEFT
            card = ast.Cardinality.MANY_TO_ONE if left else ast.Cardinality.ONE_TO_MANY
            if self.cur.accept(Kind.OPEN_PARENTHESIS):
                include = self._labels()
        return bool_modifier, ast.VectorMatching(on, labels, card, include)

    def _labels(self) -> tuple[str, ...]:
        """``a, b)`` after an opening parenthesis, the closing one included."""
        if self.cur.accept(Kind.CLOSE_PARENTHESIS):
            return ()
        names = [self.cur.name((Kind.IDENTIFIER, Kind.CLOSE_PARENTHESIS))]
        while not self.cur.accept(Kind.CLOSE_PARENTHESIS):
            self.cur.expect(Kind.COMMA, (Kind.COMMA, Kind.CLOSE_PARENTHESIS))
            names.append(self.cur.name())
        return tuple(names)

    def _grouping(self) -> ast.Grouping:
        without = self.cur.advance().kind is Kind.WITHOUT
        self.cur.expect(Kind.OPEN_PARENTHESIS)
        return ast.Grouping(self._labels(), without)

    def _operand(self) -> ast.Expr:  # noqa: PLR0911 - one branch per kind of operand
        kind = self.cur.kind()
        if kind in (Kind.NUMBER, Kind.ADD, Kind.SUB):
            if kind is not Kind.NUMBER:
                self.cur.advance()  # the sign of `+N` / `-N`
            return self._literal(str(self.cur.expect(Kind.NUMBER).value), kind is Kind.SUB)
        if kind is Kind.OPEN_BRACE:
            return parser_log.log_query(self.cur)
        if kind is Kind.OPEN_PARENTHESIS:
            self.cur.advance()
            inner = self.expr()
            self.cur.expect(Kind.CLOSE_PARENTHESIS, ())
            return inner
        if kind in _RANGE_OPS:
            return self._range_aggregation()
        if kind in _VECTOR_OPS:
            return self._vector_aggregation()
        if kind is Kind.LABEL_REPLACE:
            return self._label_replace()
        if kind is Kind.VECTOR:
            return self._vector()
        raise self.cur.error()

    def _literal(self, text: str, negative: bool) -> ast.Literal:
        try:
            value = units.parse_go_float(text)
        except ValueError as exc:
            node = ast.Literal(0.0)
            self._defer(node, f"unable to parse literal as a float: {exc}")
            return node
        return ast.Literal(-value if negative else value)

    def _sample(self) -> ast.SampleExpr:
        """A ``metricExpr``: the grammar refuses a log query here (``sum({a="b"})``)."""
        found = self.expr()
        if isinstance(found, ast.LogQueryExpr):
            raise self.cur.error()
        return found

    def _binary(
        self,
        op: ast.BinOp,
        lhs: ast.Expr,
        rhs: ast.Expr,
        bool_modifier: bool,
        matching: ast.VectorMatching,
    ) -> ast.SampleExpr:
        """Loki's ``mustNewBinOpExpr``: type checks, set-operation checks, literal folding."""
        if isinstance(lhs, ast.LogQueryExpr):
            return self._invalid(_leg_type_error(op, "left", lhs))
        if isinstance(rhs, ast.LogQueryExpr):
            return self._invalid(_leg_type_error(op, "right", rhs))
        for leg in (lhs, rhs):
            if isinstance(leg, ast.Literal) and id(leg) in self.deferred:
                return self._invalid(self.deferred[id(leg)])
        if op.is_set:
            for side, leg in (("left", lhs), ("right", rhs)):
                if isinstance(leg, ast.Literal):
                    value = units.format_go_float_six(leg.value)
                    return self._invalid(
                        f"unexpected literal for {side} leg of logical/set binary operation "
                        f"({op.value}): {value}"
                    )
        if isinstance(lhs, ast.Literal) and isinstance(rhs, ast.Literal):
            return ast.Literal(fold(op, lhs.value, rhs.value))
        return ast.BinaryOp(op, lhs, rhs, bool_modifier, matching)

    def _log_range(self) -> tuple[ast.LogQueryExpr, ast.Unwrap | None, int, int]:
        """Every ``logRangeExpr`` form: the range after the selector, after the pipeline and
        unwrap, or after a parenthesised selector and pipeline."""
        cur = self.cur
        if not cur.accept(Kind.OPEN_PARENTHESIS):
            found = parser_log.selector(cur)
            if cur.at(Kind.RANGE):
                return self._range_first(found)
            stages = parser_log.pipeline(cur, unwrap_follows=True)
            unwrap = parser_log.unwrap(cur) if cur.at(Kind.PIPE) else None
            range_ns = int(cur.expect(Kind.RANGE, ()).value)
            return ast.LogQueryExpr(found, stages), unwrap, range_ns, self._offset()
        if cur.at(Kind.OPEN_PARENTHESIS):
            result = self._log_range()
            cur.expect(Kind.CLOSE_PARENTHESIS, ())
            return result
        found = parser_log.selector(cur)
        if cur.at(Kind.RANGE):
            result = self._range_first(found)
            cur.expect(Kind.CLOSE_PARENTHESIS, ())
            return result
        stages = parser_log.pipeline(cur, unwrap_follows=True)
        unwrap = parser_log.unwrap(cur) if cur.at(Kind.PIPE) else None
        if cur.at(Kind.RANGE):  # ( selector … [range] ): a whole parenthesised logRangeExpr
            range_ns = int(cur.advance().value)
            offset_ns = self._offset()
            cur.expect(Kind.CLOSE_PARENTHESIS, ())
            return ast.LogQueryExpr(found, stages), unwrap, range_ns, offset_ns
        cur.expect(Kind.CLOSE_PARENTHESIS, ())
        range_ns = int(cur.expect(Kind.RANGE, ()).value)
        offset_ns = self._offset()
        if not stages and unwrap is None and cur.at(Kind.PIPE) and cur.kind(1) is Kind.UNWRAP:
            unwrap = parser_log.unwrap(cur)  # ( selector ) [range] | unwrap x
        return ast.LogQueryExpr(found, stages), unwrap, range_ns, offset_ns

    def _range_first(
        self, found: ast.StreamSelector
    ) -> tuple[ast.LogQueryExpr, ast.Unwrap | None, int, int]:
        """``selector [range] [offset d] [pipeline] [| unwrap …]``."""
        range_ns = int(self.cur.advance().value)
        offset_ns = self._offset()
        stages = parser_log.pipeline(self.cur, unwrap_follows=True)
        unwrap = parser_log.unwrap(self.cur) if self.cur.at(Kind.PIPE) else None
        return ast.LogQueryExpr(found, stages), unwrap, range_ns, offset_ns

    def _offset(self) -> int:
        if not self.cur.accept(Kind.OFFSET):
            return 0
        return int(self.cur.expect(Kind.DURATION).value)

    def _range_aggregation(self) -> ast.SampleExpr:
        op = _RANGE_OPS[self.cur.advance().kind]
        self.cur.expect(Kind.OPEN_PARENTHESIS)
        param_text = None
        if self.cur.at(Kind.NUMBER):
            param_text = str(self.cur.advance().value)
            self.cur.expect(Kind.COMMA)
        elif not self.cur.at(Kind.OPEN_BRACE, Kind.OPEN_PARENTHESIS):
            raise self.cur.error((Kind.NUMBER, Kind.OPEN_BRACE, Kind.OPEN_PARENTHESIS))
        query, unwrap, range_ns, offset_ns = self._log_range()
        self.cur.expect(Kind.CLOSE_PARENTHESIS, ())
        grouping = self._grouping() if self.cur.at(Kind.BY, Kind.WITHOUT) else None
        param, problem = _range_param(op, param_text)
        node = ast.RangeAggregation(op, query, range_ns, offset_ns, unwrap, param, grouping)
        if problem is None:
            problem = _range_problem(node)
        if problem is not None:
            self._defer(node, problem)
        return node

    def _vector_aggregation(self) -> ast.SampleExpr:
        op = _VECTOR_OPS[self.cur.advance().kind]
        grouping = self._grouping() if self.cur.at(Kind.BY, Kind.WITHOUT) else None
        self.cur.expect(Kind.OPEN_PARENTHESIS)
        param_text = None
        if self.cur.at(Kind.NUMBER) and self.cur.kind(1) is Kind.COMMA:
            param_text = str(self.cur.advance().value)
            self.cur.advance()
        inner = self._sample()
        self.cur.expect(Kind.CLOSE_PARENTHESIS, ())
        if grouping is None and self.cur.at(Kind.BY, Kind.WITHOUT):
            grouping = self._grouping()
        param, problem = _vector_param(op, param_text, grouping is not None)
        node = ast.VectorAggregation(op, inner, grouping or ast.Grouping(), param)
        if problem is not None:
            self._defer(node, problem)
        return node

    def _label_replace(self) -> ast.SampleExpr:
        self.cur.advance()
        self.cur.expect(Kind.OPEN_PARENTHESIS)
        inner = self._sample()
        args: list[str] = []
        for _ in range(4):
            self.cur.expect(Kind.COMMA, () if not args else None)
            args.append(self.cur.string())
        self.cur.expect(Kind.CLOSE_PARENTHESIS)
        node = ast.LabelReplace(inner, *args)
        try:
            checks.compile_anchored(node.regex)
        except ValueError as exc:
            self._defer(node, f"invalid regex in label_replace: {exc}")
        return node

    def _vector(self) -> ast.SampleExpr:
        self.cur.advance()
        self.cur.expect(Kind.OPEN_PARENTHESIS)
        text = str(self.cur.expect(Kind.NUMBER).value)
        self.cur.expect(Kind.CLOSE_PARENTHESIS)
        try:
            return ast.VectorLiteral(units.parse_go_float(text))
        except ValueError as exc:
            node = ast.VectorLiteral(0.0)
            self._defer(node, f"unable to parse vectorExpr as a float: {exc}")
            return node


def _leg_type_error(op: ast.BinOp, side: str, leg: ast.LogQueryExpr) -> str:
    go_type = "*syntax.PipelineExpr" if leg.stages else "*syntax.MatchersExpr"
    return f"unexpected type for {side} leg of binary operation ({op.value}): {go_type}"


def _range_param(op: ast.RangeOp, text: str | None) -> tuple[float | None, str | None]:
    """Loki's ``newRangeAggregationExpr`` parameter rules: (value, error)."""
    if text is None:
        if op is ast.RangeOp.QUANTILE_OVER_TIME:
            return None, f"parameter required for operation {op.value}"
        return None, None
    if op is not ast.RangeOp.QUANTILE_OVER_TIME:
        return None, f"parameter {text} not supported for operation {op.value}"
    try:
        return units.parse_go_float(text), None
    except ValueError as exc:
        return None, f"invalid parameter for operation {op.value}: {exc}"


def _range_problem(node: ast.RangeAggregation) -> str | None:
    """Loki's ``RangeAggregationExpr.validate``."""
    op = node.op
    if node.grouping is not None and op not in ast.RANGE_OPS_WITH_GROUPING:
        return f"grouping not allowed for {op.value} aggregation"
    if node.unwrap is not None:
        if op not in ast.RANGE_OPS_WITH_UNWRAP:
            return f"invalid aggregation {op.value} with unwrap"
    elif op not in ast.RANGE_OPS_WITHOUT_UNWRAP:
        return f"invalid aggregation {op.value} without unwrap"
    return None


def _vector_param(  # noqa: PLR0911 - one return per rule, in Loki's order
    op: ast.VectorOp, text: str | None, grouped: bool
) -> tuple[int | None, str | None]:
    """Loki's ``mustNewVectorAggregationExpr`` parameter rules: (k, error)."""
    if op not in ast.VECTOR_OPS_WITH_PARAM:
        if text is not None:
            return None, f"unsupported parameter for operation {op.value}({text},"
        return None, None
    if text is None:
        return None, f"parameter required for operation {op.value}"
    k = units.parse_go_int(text)
    if k is None:
        return None, f"invalid parameter {op.value}({text},"
    if k <= 0:
        return None, f"invalid parameter (must be greater than 0) {op.value}({text}"
    if op is ast.VectorOp.APPROX_TOPK and grouped:
        return None, f"grouping not allowed for {op.value} aggregation"
    return k, None


def fold(op: ast.BinOp, left: float, right: float) -> float:
    """Loki's ``MergeBinOp`` on two scalars (comparisons give 1 or 0; x/0 and x%0 are NaN)."""
    if op.is_comparison:
        return 1.0 if _COMPARE[op](left, right) else 0.0
    if op in (ast.BinOp.DIV, ast.BinOp.MOD) and right == 0:
        return math.nan
    if op is ast.BinOp.MOD:
        return math.nan if math.isinf(left) or math.isnan(right) else math.fmod(left, right)
    return _ARITHMETIC[op](left, right)


def go_pow(base: float, exponent: float) -> float:
    """Go ``math.Pow``: NaN and ±Inf where Python's ``math.pow`` raises."""
    odd = exponent.is_integer() and abs(exponent) < 2**53 and int(exponent) % 2 == 1
    try:
        return math.pow(base, exponent)
    except OverflowError:
        return -math.inf if base < 0 and odd else math.inf
    except ValueError:
        if base == 0:  # zero to a negative power
            return math.copysign(math.inf, base) if odd else math.inf
        return math.nan


_ARITHMETIC: Final[dict[ast.BinOp, Callable[[float, float], float]]] = {
    ast.BinOp.ADD: operator.add,
    ast.BinOp.SUB: operator.sub,
    ast.BinOp.MUL: operator.mul,
    ast.BinOp.DIV: operator.truediv,
    ast.BinOp.POW: go_pow,
}
