"""Loki's LogQL conformance scripts (shared/conformance/logqltest) run through the engine.

Every ``eval`` of every script is parsed, evaluated against an in-memory source built from the
``load`` blocks, and compared with the expected values (relative tolerance 1e-9). Entries go
through the real per-line pipeline (``lokistack.logql.log.pipeline``) when it exists, otherwise
through :func:`memory.default_processor`, which knows only line filters and float ``unwrap`` of
stream labels and raises ``NotImplementedError`` for anything else.

Cases that do not pass are listed by name, with the reason, in ``conformance_not_covered.txt``
next to this file. The test fails when a case outside that list does not pass (a regression)
and when a listed case passes (the list must shrink with it), so the number only goes down.
``LOKISTACK_UPDATE_CONFORMANCE=1`` rewrites the list from the current outcome; review the diff.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import os
import pathlib
from typing import Any

import pytest
from lokistack.logql import syntax
from lokistack.logql.engine import evaluator, memory, samples
from lokistack.logql.syntax import ast

from tests.unit.logql.engine import logqltest

SCRIPTS = (
    pathlib.Path(__file__).resolve().parents[4].parent / "shared" / "conformance" / "logqltest"
)
NOT_COVERED = pathlib.Path(__file__).with_name("conformance_not_covered.txt")
PASS = "pass"


def _pipeline_factory() -> memory.ProcessorFactory | None:
    """The real pipeline as a line processor, when the pipeline package provides it."""
    try:
        module: Any = importlib.import_module("lokistack.logql.log.pipeline")
    except ImportError:
        return None
    return module_factory(module)


def module_factory(module: Any) -> memory.ProcessorFactory:
    """Adapt ``Pipeline.from_ast(stages, unwrap)`` (``process`` gives ``(line, labels)``,
    ``extract_sample`` gives ``(value, labels)``) to the source's ``(labels, value)`` form."""

    def factory(query: ast.LogQueryExpr, unwrap: ast.Unwrap | None) -> memory.LineProcessor:
        pipeline = module.Pipeline.from_ast(query.stages, unwrap)

        def process(
            ts: int, line: str, labels: samples.Labels, metadata: samples.Labels
        ) -> tuple[samples.Labels, float] | None:
            if unwrap is not None:
                sample = pipeline.extract_sample(ts, line, labels, metadata)
                return None if sample is None else (sample[1], float(sample[0]))
            out = pipeline.process(ts, line, labels, metadata)
            if out is None:
                return None
            new_line, new_labels = out
            return new_labels, float(len(new_line.encode("utf-8", "surrogateescape")))

        return process

    return factory


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


def run_case(case: logqltest.Case, factory: memory.ProcessorFactory | None) -> str:
    """``pass``, ``fail: …`` or ``not covered: …`` for one case."""
    expected = case.expected
    try:
        expr = syntax.parse_expr(case.query)
    except syntax.ParseError as exc:
        if expected.kind == "fail" and expected.message in str(exc):
            return PASS
        return f"fail: parse error {exc}"
    if isinstance(expr, ast.LogQueryExpr):
        return "not covered: log queries are evaluated by the querier"
    return _evaluate(case, expr, factory)


def _evaluate(
    case: logqltest.Case, expr: ast.SampleExpr, factory: memory.ProcessorFactory | None
) -> str:
    expected = case.expected
    source = memory.MemorySource(case.streams, factory)
    try:
        result = asyncio.run(
            evaluator.evaluate(expr, source, case.start_ns, case.end_ns, case.step_ns, max_series=0)
        )
    except NotImplementedError as exc:
        return f"not covered: {exc}"
    except Exception as exc:
        if expected.kind == "fail" and expected.message in str(exc):
            return PASS
        return f"fail: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return _compare(case, result)


def _read_listed() -> dict[str, str]:
    if not NOT_COVERED.exists():
        return {}
    listed: dict[str, str] = {}
    for line in NOT_COVERED.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, reason = line.partition("\t")
            listed[name] = reason
    return listed


def _write_listed(outcomes: dict[str, str]) -> None:
    lines = [
        "# Conformance cases that do not pass yet: <script>:<line><TAB><reason>.",
        "# Written by LOKISTACK_UPDATE_CONFORMANCE=1; test_conformance.py keeps it exact.",
    ]
    lines += [f"{name}\t{outcome}" for name, outcome in outcomes.items() if outcome != PASS]
    NOT_COVERED.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_conformance_scripts() -> None:
    if not SCRIPTS.is_dir():
        pytest.skip(f"no conformance scripts at {SCRIPTS}")
    factory = _pipeline_factory()
    outcomes: dict[str, str] = {}
    for script in sorted(SCRIPTS.glob("*.logqltest")):
        for case in logqltest.parse_script(script):
            outcomes[case.name] = run_case(case, factory)
    if os.environ.get("LOKISTACK_UPDATE_CONFORMANCE") == "1":
        _write_listed(outcomes)
    passed = sum(outcome == PASS for outcome in outcomes.values())
    print(f"\nLogQL conformance: {passed} of {len(outcomes)} cases pass")
    listed = _read_listed()
    regressions = {n: o for n, o in outcomes.items() if o != PASS and n not in listed}
    fixed = sorted(n for n in listed if outcomes.get(n) == PASS)
    unknown = sorted(n for n in listed if n not in outcomes)
    assert not regressions, f"cases not passing and not listed: {regressions}"
    assert not fixed, f"listed cases now pass; remove them from {NOT_COVERED.name}: {fixed}"
    assert not unknown, f"listed cases that no longer exist: {unknown}"


def test_scripts_parse_into_every_eval() -> None:
    if not SCRIPTS.is_dir():
        pytest.skip(f"no conformance scripts at {SCRIPTS}")
    for script in SCRIPTS.glob("*.logqltest"):
        evals = sum(line.startswith("eval ") for line in script.read_text().splitlines())
        assert len(logqltest.parse_script(script)) == evals
