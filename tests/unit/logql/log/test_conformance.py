"""Loki's LogQL conformance scripts, checked at the level of the log pipeline.

The scripts in ``shared/conformance/logqltest`` load streams and evaluate metric queries. The
metric evaluator is not part of this package, so this runner does the small part of it these
files need (``count_over_time``, ``bytes_over_time``, ``sum/max/min_over_time`` with ``unwrap``,
optional ``by`` and an outer ``sum``) directly on :class:`Pipeline` results: entries in the window
``(t - range, t]`` are run through the pipeline and grouped by their output labels. What it
checks is the pipeline: which entries survive, their labels and lines, unwrapped values and
``__error__``. A query "fails" when it does not build, or when a surviving sample carries
``__error__`` (Loki's metric rule); the expected message must appear in the error text.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import re
from collections.abc import Iterator

import pytest
from lokistack.logql import syntax
from lokistack.logql.log import pipeline
from lokistack.logql.syntax import ast, units
from lokistack.model import goquote

CONFORMANCE = pathlib.Path(__file__).resolve().parents[4].parent / "shared" / "conformance"
FILES = ["line_filters", "parsers", "label_filters", "formatters", "conversions"]
SECOND = 1_000_000_000

LabelSet = frozenset[tuple[str, str]]


@dataclasses.dataclass
class Entry:
    labels: tuple[tuple[str, str], ...]
    ts: int
    line: str
    metadata: tuple[tuple[str, str], ...]


@dataclasses.dataclass
class Case:
    where: str
    query: str
    times: list[int]
    entries: list[Entry]
    expected: dict[LabelSet, list[float | None]] | None
    fail: str | None


def _strip_comment(text: str) -> str:
    quote = ""
    for index, ch in enumerate(text):
        if quote:
            if ch == "\\" and quote == '"':
                continue
            if ch == quote:
                quote = ""
        elif ch in '"`':
            quote = ch
        elif ch == "#":
            return text[:index].rstrip()
    return text.rstrip()


_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')
_LOAD = re.compile(
    r"(\{[^}]*\})\s+(\"(?:[^\"\\]|\\.)*\"|`[^`]*`)\s+@\s+(\S+)"
    r"(?:\s+\[repeat every (\S+) for (\d+)\])?(?:\s+\[metadata ([^\]]*)\])?$"
)


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, goquote.unquote(f'"{value}"')) for name, value in _PAIR.findall(text))


def _duration(text: str) -> int:
    return units.parse_duration(text)


def _values(fields: list[str]) -> list[float | None]:
    values: list[float | None] = []
    for field in fields:
        if field == "_":
            values.append(None)
            continue
        repeat = re.fullmatch(r"(.+?)(?:([+-][^x]+))?x(\d+)", field)
        if repeat:
            start, step = float(repeat.group(1)), float(repeat.group(2) or 0)
            values.extend(start + step * i for i in range(int(repeat.group(3)) + 1))
            continue
        values.append(float(field.replace("Inf", "inf")))
    return values


def _indented(lines: list[str], i: int) -> Iterator[str]:
    """The non-empty indented lines from ``i`` on, comments removed."""
    while i < len(lines) and lines[i].startswith(" "):
        body = _strip_comment(lines[i]).strip()
        i += 1
        if body:
            yield body


def _load(body: str) -> Iterator[Entry]:
    match = _LOAD.match(body)
    assert match, body
    labels, text, at, every, count, metadata = match.groups()
    stream = tuple(sorted((k, v) for k, v in _pairs(labels) if v))
    for n in range(int(count or 1)):
        ts = _duration(at) + n * (_duration(every) if every else 0)
        line = text[1:-1].replace("{{.i}}", str(n))
        yield Entry(stream, ts, line, _pairs(metadata or ""))


def _eval(line: str, bodies: Iterator[str], entries: list[Entry], where: str) -> Case:
    instant = re.match(r"eval instant at (\S+) (.*)", line)
    ranged = re.match(r"eval range from (\S+) to (\S+) step (\S+) (.*)", line)
    if instant:
        times, query = [_duration(instant.group(1))], instant.group(2)
    else:
        assert ranged, line
        start, end, step = (_duration(ranged.group(k)) for k in (1, 2, 3))
        times, query = list(range(start, end + 1, step)), ranged.group(4)
    expected: dict[LabelSet, list[float | None]] | None = {}
    fail = None
    for body in bodies:
        if body.startswith("expect fail"):
            fail = body.partition("msg:")[2].strip()
            expected = None
        elif body != "expect empty" and expected is not None:
            labels_text, _, rest = body.rpartition("}")
            expected[frozenset(_pairs(labels_text))] = _values(rest.split())
    return Case(where, query, times, list(entries), expected, fail)


def _cases(name: str) -> Iterator[Case]:
    path = CONFORMANCE / "logqltest" / f"{name}.logqltest"
    lines = path.read_text(encoding="utf-8").splitlines()
    entries: list[Entry] = []
    for i, raw in enumerate(lines):
        line = _strip_comment(raw)
        if line == "clear":
            entries = []
        elif line == "load":
            entries.extend(entry for body in _indented(lines, i + 1) for entry in _load(body))
        elif line.startswith("eval "):
            yield _eval(line, _indented(lines, i + 1), entries, f"{name}.logqltest:{i + 1}")


def _all_cases() -> list[Case]:
    if not CONFORMANCE.is_dir():
        return []
    return [case for name in FILES for case in _cases(name)]


class QueryFailedError(Exception):
    """A metric query that Loki would refuse: a sample still carries ``__error__``."""


def _evaluate(case: Case) -> dict[LabelSet, list[float | None]]:
    expr = syntax.parse_expr(case.query)
    outer_sum = isinstance(expr, ast.VectorAggregation)
    if outer_sum:
        assert isinstance(expr, ast.VectorAggregation) and expr.op.value == "sum"
        expr = expr.inner
    assert isinstance(expr, ast.RangeAggregation)
    pipe = pipeline.Pipeline.from_ast(expr.query.stages, expr.unwrap)
    selector = expr.query.selector.matchers
    series: dict[LabelSet, list[float | None]] = {}
    for step, t in enumerate(case.times):
        window: dict[LabelSet, list[float]] = {}
        for entry in case.entries:
            if not t - expr.range_ns < entry.ts <= t:
                continue
            stream = dict(entry.labels)
            if not all(m.matches(stream.get(m.name, "")) for m in selector):
                continue
            if expr.unwrap is not None:
                sample = pipe.extract_sample(entry.ts, entry.line, entry.labels, entry.metadata)
                if sample is None:
                    continue
                value, labels = sample
            else:
                processed = pipe.process(entry.ts, entry.line, entry.labels, entry.metadata)
                if processed is None:
                    continue
                line, labels = processed
                value = float(len(line.encode())) if expr.op.value == "bytes_over_time" else 1.0
            errors = dict(labels)
            if "__error__" in errors:
                details = errors.get("__error_details__", "")
                raise QueryFailedError(
                    f"{errors['__error__']} {details} {goquote.go_quote(details)}"
                )
            if expr.grouping is not None:
                labels = tuple(p for p in labels if p[0] in expr.grouping.labels)
            key = frozenset() if outer_sum else frozenset(labels)
            window.setdefault(key, []).append(value)
        for key, values in window.items():
            op = expr.op.value
            result = {"max_over_time": max, "min_over_time": min}.get(op, sum)(values)
            series.setdefault(key, [None] * len(case.times))[step] = result
    return series


CASES = _all_cases()


@pytest.mark.skipif(not CASES, reason="conformance scripts not found beside the repository")
@pytest.mark.parametrize("case", CASES, ids=[c.where for c in CASES])
def test_conformance(case: Case) -> None:
    try:
        result = _evaluate(case)
    except (syntax.ParseError, pipeline.PipelineError, QueryFailedError) as error:
        assert case.fail is not None, f"{case.query} failed: {error}"
        assert case.fail in str(error), f"{case.query}: {error!s} lacks {case.fail!r}"
        return
    assert case.fail is None, f"{case.query} should fail with {case.fail!r}, got {result}"
    assert case.expected is not None
    assert set(result) == set(case.expected), case.query
    for key, values in case.expected.items():
        got = result[key]
        assert len(got) == len(values), (case.query, key)
        for expected, actual in zip(values, got, strict=True):
            if expected is None or actual is None:
                assert expected is actual, (case.query, key, got)
            else:
                assert math.isclose(expected, actual, rel_tol=1e-9), (case.query, key, got)


def test_the_scripts_are_found_in_ci() -> None:
    """Beside the repository in CI; a checkout without them only skips the cases above."""
    if CONFORMANCE.is_dir():
        assert len(CASES) > 400
