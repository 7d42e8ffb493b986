"""A reader of the ``.logqltest`` conformance scripts (format: shared/conformance/README.md).

It turns a script into :class:`Case` objects, each holding the streams loaded when it runs, the
query, the evaluation times and the expected outcome, so a runner can evaluate the case with any
sample source. Nothing here knows how queries are evaluated.

The scripts are Loki's own test data. They are kept in the shared project folder beside the
repository (CI clones main with ``../shared`` beside it), not in it; a checkout without them
skips the tests that read them, and ``make test`` fails on any skip.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import re

import pytest
from lokistack.logql.engine import samples
from lokistack.logql.syntax import units
from lokistack.model import labels as model_labels

from tests.support import memory_source

Labels = model_labels.Labels

SCRIPTS_DIR = (
    pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "logqltest"
)

requires_scripts = pytest.mark.skipif(
    not SCRIPTS_DIR.is_dir(),
    reason=f"Loki's LogQL conformance scripts are not at {SCRIPTS_DIR} "
    "(they are kept beside the repository, not in it)",
)


@dataclasses.dataclass(frozen=True)
class Expected:
    """``kind`` is ``values``, ``empty`` or ``fail``; ``series`` maps labels to points
    (``None`` for ``_``); a scalar expectation is stored under ``scalar``."""

    kind: str
    series: dict[Labels, list[float | None]] = dataclasses.field(default_factory=dict)
    scalar: float | None = None
    message: str = ""


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    query: str
    start_ns: int
    end_ns: int
    step_ns: int
    streams: tuple[memory_source.MemoryStream, ...]
    expected: Expected

    @property
    def instant(self) -> bool:
        return self.step_ns == 0


def strip_comment(text: str) -> str:
    """Drop a ``#`` comment outside double quotes and backticks."""
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in '"`':
            quote = ch
        elif ch == "#":
            return text[:i].rstrip()
        i += 1
    return text.rstrip()


def _split_braces(text: str) -> tuple[str, str]:
    """``('{…}', rest)`` for text starting with a label set (quote-aware)."""
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch == '"':
            quote = ch
        elif ch == "}":
            return text[: i + 1], text[i + 1 :].strip()
    raise ValueError(f"unterminated label set: {text}")


_LOAD_TAIL = re.compile(
    r"@\s*(\S+)(?:\s*\[repeat every (\S+) for (\d+)\])?(?:\s*\[metadata ([^\]]*)\])?\s*$"
)


def _parse_load(text: str) -> tuple[Labels, list[tuple[int, str, Labels]]]:
    selector, rest = _split_braces(text.strip())
    quote = rest[0]
    close = rest.index(quote, 1)
    line, tail = rest[1:close], rest[close + 1 :].strip()
    match = _LOAD_TAIL.fullmatch(tail)
    if match is None:
        raise ValueError(f"bad load line: {text}")
    offset = units.parse_go_duration(match.group(1))
    every = units.parse_go_duration(match.group(2)) if match.group(2) else 0
    count = int(match.group(3)) if match.group(3) else 1
    metadata = _pairs(match.group(4) or "")
    entries = [(offset + i * every, line.replace("{{.i}}", str(i)), metadata) for i in range(count)]
    return model_labels.parse_labels(selector), entries


def _pairs(text: str) -> Labels:
    """``name="value"`` pairs, sorted, empty values kept: Loki reports a parsed or metadata
    label with an empty value as such (only empty *stream* labels are dropped on write)."""
    return tuple(sorted(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="([^"]*)"', text)))


def parse_value(text: str) -> float:
    lowered = text.lower()
    if lowered == "nan":
        return math.nan
    if lowered in ("inf", "+inf"):
        return math.inf
    if lowered == "-inf":
        return -math.inf
    return float(text)


def _parse_points(tokens: list[str]) -> list[float | None]:
    points: list[float | None] = []
    for token in tokens:
        if token == "_":
            points.append(None)
            continue
        series = re.fullmatch(r"(-?[^-+x]+)([+-][^x]+)x(\d+)", token)
        repeat = re.fullmatch(r"(.+)x(\d+)", token)
        if series:
            first, delta = parse_value(series.group(1)), parse_value(series.group(2))
            points.extend(first + delta * i for i in range(int(series.group(3)) + 1))
        elif repeat:
            points.extend([parse_value(repeat.group(1))] * (int(repeat.group(2)) + 1))
        else:
            points.append(parse_value(token))
    return points


def _parse_expected(lines: list[str]) -> Expected:
    lines = [line for line in lines if not line.startswith("skip ")]
    if lines and lines[0] == "expect empty":
        return Expected("empty")
    if lines and lines[0].startswith("expect fail"):
        _, _, message = lines[0].partition("msg:")
        return Expected("fail", message=message.strip())
    if len(lines) == 1 and not lines[0].startswith("{"):
        return Expected("values", scalar=parse_value(lines[0]))
    series: dict[Labels, list[float | None]] = {}
    for line in lines:
        selector, rest = _split_braces(line)
        series[_pairs(selector)] = _parse_points(rest.split())
    return Expected("values", series=series)


_EVAL_INSTANT = re.compile(r"eval instant at (\S+) (.+)")
_EVAL_RANGE = re.compile(r"eval range from (\S+) to (\S+) step (\S+) (.+)")


def parse_script(path: pathlib.Path) -> list[Case]:
    """Every ``eval`` of one script, in order."""
    cases: list[Case] = []
    streams: dict[Labels, list[tuple[int, str, Labels]]] = {}
    raw = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(raw):
        command = strip_comment(raw[i])
        start_line = i + 1
        i += 1
        body: list[str] = []
        while i < len(raw) and raw[i][:1] in (" ", "\t") and raw[i].strip():
            stripped = strip_comment(raw[i]).strip()
            if stripped:
                body.append(stripped)
            i += 1
        if not command or command.startswith("#"):
            continue
        if command == "clear":
            streams = {}
        elif command == "load":
            for line in body:
                labels, entries = _parse_load(line)
                streams.setdefault(labels, []).extend(entries)
        else:
            cases.append(_parse_eval(path, start_line, command, body, streams))
    return cases


def _parse_eval(
    path: pathlib.Path,
    line_no: int,
    command: str,
    body: list[str],
    streams: dict[Labels, list[tuple[int, str, Labels]]],
) -> Case:
    if match := _EVAL_INSTANT.fullmatch(command):
        start = end = units.parse_go_duration(match.group(1))
        step, query = 0, match.group(2)
    elif match := _EVAL_RANGE.fullmatch(command):
        start = units.parse_go_duration(match.group(1))
        end = units.parse_go_duration(match.group(2))
        step, query = units.parse_go_duration(match.group(3)), match.group(4)
    else:
        raise ValueError(f"{path.name}:{line_no}: unknown command {command!r}")
    snapshot = tuple(memory_source.MemoryStream(k, list(v)) for k, v in streams.items())
    name = f"{path.name}:{line_no}"
    return Case(name, query.strip(), start, end, step, snapshot, _parse_expected(body))


PASS = "pass"


def _same(actual: float, expected: float) -> bool:
    if math.isnan(expected):
        return math.isnan(actual)
    if math.isinf(expected):
        return actual == expected
    return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12)


def compare(case: Case, result: samples.Result) -> str:
    """``pass``, or how ``result`` differs from the case's expectation."""
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


def all_cases() -> list[Case]:
    """Every case of every script, or none when the scripts are not there."""
    if not SCRIPTS_DIR.is_dir():
        return []
    return [case for path in sorted(SCRIPTS_DIR.glob("*.logqltest")) for case in parse_script(path)]
