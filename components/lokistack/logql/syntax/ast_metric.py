"""AST of metric (sample) queries: range and vector aggregations, binary operations, literals.

Times are integer nanoseconds, as Loki's ``time.Duration``. Optional parts that change meaning
when present are ``None`` when absent (a range aggregation's grouping: ``by ()`` groups to one
series, no grouping keeps every series); parts whose absence equals a default hold the default
(a vector aggregation without ``by`` groups by nothing), so equal queries give equal ASTs.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator

from lokistack.logql.syntax import ast_log


class UnwrapConversion(enum.Enum):
    """How ``unwrap`` turns a label value into a sample; the value is the LogQL function."""

    FLOAT = ""
    BYTES = "bytes"
    DURATION = "duration"
    DURATION_SECONDS = "duration_seconds"


@dataclasses.dataclass(frozen=True)
class Unwrap:
    """``| unwrap [conv(]label[)]`` and the label filters after it (``post_filters``)."""

    label: str
    conversion: UnwrapConversion = UnwrapConversion.FLOAT
    post_filters: tuple[ast_log.LabelFilter, ...] = ()


class RangeOp(enum.Enum):
    """Range aggregation functions."""

    COUNT_OVER_TIME = "count_over_time"
    RATE = "rate"
    RATE_COUNTER = "rate_counter"
    BYTES_OVER_TIME = "bytes_over_time"
    BYTES_RATE = "bytes_rate"
    AVG_OVER_TIME = "avg_over_time"
    SUM_OVER_TIME = "sum_over_time"
    MIN_OVER_TIME = "min_over_time"
    MAX_OVER_TIME = "max_over_time"
    STDVAR_OVER_TIME = "stdvar_over_time"
    STDDEV_OVER_TIME = "stddev_over_time"
    QUANTILE_OVER_TIME = "quantile_over_time"
    FIRST_OVER_TIME = "first_over_time"
    LAST_OVER_TIME = "last_over_time"
    ABSENT_OVER_TIME = "absent_over_time"


RANGE_OPS_WITHOUT_UNWRAP = frozenset(
    {
        RangeOp.COUNT_OVER_TIME,
        RangeOp.RATE,
        RangeOp.BYTES_OVER_TIME,
        RangeOp.BYTES_RATE,
        RangeOp.ABSENT_OVER_TIME,
    }
)
"""Functions of lines (``ast.go`` ``RangeAggregationExpr.validate``)."""

RANGE_OPS_WITH_UNWRAP = frozenset(
    {
        RangeOp.AVG_OVER_TIME,
        RangeOp.SUM_OVER_TIME,
        RangeOp.MAX_OVER_TIME,
        RangeOp.MIN_OVER_TIME,
        RangeOp.STDDEV_OVER_TIME,
        RangeOp.STDVAR_OVER_TIME,
        RangeOp.QUANTILE_OVER_TIME,
        RangeOp.RATE,
        RangeOp.RATE_COUNTER,
        RangeOp.ABSENT_OVER_TIME,
        RangeOp.FIRST_OVER_TIME,
        RangeOp.LAST_OVER_TIME,
    }
)
"""Functions of unwrapped values."""

RANGE_OPS_WITH_GROUPING = frozenset(
    {
        RangeOp.AVG_OVER_TIME,
        RangeOp.STDDEV_OVER_TIME,
        RangeOp.STDVAR_OVER_TIME,
        RangeOp.QUANTILE_OVER_TIME,
        RangeOp.MAX_OVER_TIME,
        RangeOp.MIN_OVER_TIME,
        RangeOp.FIRST_OVER_TIME,
        RangeOp.LAST_OVER_TIME,
    }
)
"""Functions that accept ``by``/``without``."""


@dataclasses.dataclass(frozen=True)
class Grouping:
    """``by (a, b)`` or ``without (a, b)``; ``by ()`` is the empty default."""

    labels: tuple[str, ...] = ()
    without: bool = False


@dataclasses.dataclass(frozen=True)
class RangeAggregation:
    """``op([param,] query [| unwrap …] [range] [offset d]) [by (…)]``."""

    op: RangeOp
    query: ast_log.LogQueryExpr
    range_ns: int
    offset_ns: int = 0
    unwrap: Unwrap | None = None
    param: float | None = None
    grouping: Grouping | None = None


class VectorOp(enum.Enum):
    """Vector aggregation operators."""

    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    COUNT = "count"
    STDDEV = "stddev"
    STDVAR = "stdvar"
    TOPK = "topk"
    BOTTOMK = "bottomk"
    SORT = "sort"
    SORT_DESC = "sort_desc"
    APPROX_TOPK = "approx_topk"


VECTOR_OPS_WITH_PARAM = frozenset({VectorOp.TOPK, VectorOp.BOTTOMK, VectorOp.APPROX_TOPK})


@dataclasses.dataclass(frozen=True)
class VectorAggregation:
    """``op [by (…)] ([k,] inner)``; ``param`` is k for topk, bottomk and approx_topk."""

    op: VectorOp
    inner: SampleExpr
    grouping: Grouping = Grouping()
    param: int | None = None


class BinOp(enum.Enum):
    """Binary operators; the value is the LogQL spelling."""

    OR = "or"
    AND = "and"
    UNLESS = "unless"
    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"
    MOD = "%"
    POW = "^"
    EQ = "=="
    NEQ = "!="
    GT = ">"
    GTE = ">="
    LT = "<"
    LTE = "<="

    @property
    def is_comparison(self) -> bool:
        """Comparisons filter unless ``bool`` is given."""
        return self in _COMPARISONS

    @property
    def is_set(self) -> bool:
        """``and``, ``or``, ``unless`` work on label sets, never on literals."""
        return self in (BinOp.OR, BinOp.AND, BinOp.UNLESS)


_COMPARISONS = frozenset({BinOp.EQ, BinOp.NEQ, BinOp.GT, BinOp.GTE, BinOp.LT, BinOp.LTE})


class Cardinality(enum.Enum):
    """Vector matching cardinality: ``group_left`` is many-to-one, ``group_right`` one-to-many."""

    ONE_TO_ONE = "one-to-one"
    MANY_TO_ONE = "many-to-one"
    ONE_TO_MANY = "one-to-many"


@dataclasses.dataclass(frozen=True)
class VectorMatching:
    """``on (…)``/``ignoring (…)`` and ``group_left (…)``/``group_right (…)``.

    The default (ignoring nothing, one-to-one) is what no modifier and ``ignoring ()`` mean.
    """

    on: bool = False
    labels: tuple[str, ...] = ()
    card: Cardinality = Cardinality.ONE_TO_ONE
    include: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class BinaryOp:
    """``lhs op [bool] [on/ignoring (…) [group_x (…)]] rhs``; never two literal operands
    (the parser folds those)."""

    op: BinOp
    lhs: SampleExpr
    rhs: SampleExpr
    bool_modifier: bool = False
    matching: VectorMatching = VectorMatching()


@dataclasses.dataclass(frozen=True)
class LabelReplace:
    """``label_replace(inner, "dst", "replacement", "src", "regex")``; the regex is anchored."""

    inner: SampleExpr
    dst: str
    replacement: str
    src: str
    regex: str


@dataclasses.dataclass(frozen=True)
class VectorLiteral:
    """``vector(1)``: one series without labels."""

    value: float


@dataclasses.dataclass(frozen=True)
class Literal:
    """A scalar: ``5``, ``-1.5``, ``1e3``, or the folded value of ``1 + 2``."""

    value: float


SampleExpr = (
    RangeAggregation | VectorAggregation | BinaryOp | LabelReplace | VectorLiteral | Literal
)

Expr = ast_log.LogQueryExpr | SampleExpr


def range_aggregations(expr: Expr) -> Iterator[RangeAggregation]:
    """Every range aggregation in ``expr``, depth first (left operand first): the log queries
    a metric query reads, for the evaluator to fetch and the frontend to split by."""
    if isinstance(expr, RangeAggregation):
        yield expr
    elif isinstance(expr, VectorAggregation | LabelReplace):
        yield from range_aggregations(expr.inner)
    elif isinstance(expr, BinaryOp):
        yield from range_aggregations(expr.lhs)
        yield from range_aggregations(expr.rhs)
