"""Loki's LogQL conformance scripts (shared/conformance/logqltest) run through the engine.

Every ``eval`` of every script is parsed, evaluated against an in-memory source built from the
``load`` blocks, with entries going through the real per-line pipeline
(``lokistack.logql.log.pipeline``), and compared with the expected values (relative tolerance
1e-9). Each case is one test; every one must pass.
"""

from __future__ import annotations

import asyncio
import math

import pytest
from lokistack.logql import syntax
from lokistack.logql.engine import evaluator, samples
from lokistack.logql.syntax import ast

from tests.support import logqltest, memory_source

PASS = "pass"


def _same(actual: float, expected: float) -> bool:
    if math.isnan(expected):
        return math.isnan(actual)
    if math.isinf(expected):
        return actual == expected
    return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12)


def _compare(case: logqltest.Case, result: samples.Result) -> str:
    expected = case.expected
    if expected.kind == "fail":
        return f"fail: expected an error {expected.message!r}, got a result"
    if isinstance(result, samples.Scalar):
        if expected.scalar is not None and _same(result.value, expected.scalar):
            return PASS
        return f"fail: scalar {result.value}, expected {expected.scalar}"
    actual: dict[samples.Labels, list[float | None]] = {}
    if isinstance(result, samples.Vector):
        actual = {labels: [value] for labels, value in result.samples}
    elif isinstance(result, samples.Matrix):
        count = (case.end_ns - case.start_ns) // case.step_ns + 1
        for series in result.series:
            points: list[float | None] = [None] * count
            for point in series.points:
                points[(point.ts_ns - case.start_ns) // case.step_ns] = point.value
            actual[series.labels] = points
    wanted = {k: v for k, v in expected.series.items() if any(p is not None for p in v)}
    if set(actual) != set(wanted):
        return f"fail: series {sorted(actual)}, expected {sorted(wanted)}"
    for labels, points in wanted.items():
        got = actual[labels]
        if len(got) != len(points) or any(
            (a is None) != (b is None) or (a is not None and b is not None and not _same(a, b))
            for a, b in zip(got, points, strict=False)
        ):
            return f"fail: {labels} = {got}, expected {points}"
    return PASS


def run_case(case: logqltest.Case) -> str:
    """``pass``, or what went wrong, for one case."""
    expected = case.expected
    try:
        expr = syntax.parse_expr(case.query)
    except syntax.ParseError as exc:
        if expected.kind == "fail" and expected.message in str(exc):
            return PASS
        return f"fail: parse error {exc}"
    if isinstance(expr, ast.LogQueryExpr):
        return "fail: the scripts hold only metric queries; a log query needs a runner update"
    return _evaluate(case, expr)


def _evaluate(case: logqltest.Case, expr: ast.SampleExpr) -> str:
    expected = case.expected
    source = memory_source.MemorySource(case.streams)
    try:
        result = asyncio.run(
            evaluator.evaluate(expr, source, case.start_ns, case.end_ns, case.step_ns, max_series=0)
        )
    except Exception as exc:
        if expected.kind == "fail" and expected.message in str(exc):
            return PASS
        return f"fail: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return _compare(case, result)


CASES = logqltest.all_cases()


@logqltest.requires_scripts
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_conformance_case(case: logqltest.Case) -> None:
    assert run_case(case) == PASS, case.query


@logqltest.requires_scripts
def test_scripts_parse_into_every_eval() -> None:
    assert len(CASES) > 600
    for script in logqltest.SCRIPTS_DIR.glob("*.logqltest"):
        evals = sum(line.startswith("eval ") for line in script.read_text().splitlines())
        assert len(logqltest.parse_script(script)) == evals
