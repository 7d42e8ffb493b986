"""Loki's LogQL conformance scripts (shared/conformance/logqltest) run through the engine.

Every ``eval`` of every script is parsed, evaluated against an in-memory source built from the
``load`` blocks, with entries going through the real per-line pipeline
(``lokistack.logql.log.pipeline``), and compared with the expected values (relative tolerance
1e-9). Each case is one test; every one must pass.
"""

from __future__ import annotations

import asyncio

import pytest
from lokistack.logql import syntax
from lokistack.logql.engine import evaluator
from lokistack.logql.syntax import ast

from tests.support import logqltest, memory_source

PASS = logqltest.PASS


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
    return logqltest.compare(case, result)


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
