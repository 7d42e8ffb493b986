"""Parser stages: extracted labels, key rules and Loki's error labels."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lokistack.logql import syntax
from lokistack.logql.log import labels, logfmt, parsers
from lokistack.logql.syntax import ast


def run(stage_text: str, line: str, stream: dict[str, str] | None = None) -> dict[str, str]:
    expr = syntax.parse_expr('{app="a"} ' + stage_text)
    assert isinstance(expr, ast.LogQueryExpr)
    stage = parsers.build(expr.stages[0])
    assert stage is not None
    builder = labels.LabelsBuilder(stream or {})
    assert stage(0, line, builder) is not None
    return dict(builder.labels())


def test_json_flattens_objects_and_skips_arrays_and_nulls() -> None:
    line = '{"a":{"b":{"c":"d"}},"n":1.50,"t":true,"f":false,"z":null,"l":[1],"s":"x\\ny"}'
    assert run("| json", line) == {
        "a_b_c": "d",
        "n": "1.50",
        "t": "true",
        "f": "false",
        "s": "x\ny",
    }


def test_json_keys_are_sanitized_and_duplicates_keep_the_first() -> None:
    line = '{"a.b":1, "9x": 2, "o": {"1y": 3}, "dup": "first", "dup": "second"}'
    assert run("| json", line) == {"a_b": "1", "_9x": "2", "o_1y": "3", "dup": "first"}


def test_json_clash_with_stream_label_is_extracted() -> None:
    assert run("| json", '{"app":"parsed"}', {"app": "a"}) == {
        "app": "a",
        "app_extracted": "parsed",
    }


@pytest.mark.parametrize("line", ["broken", "", "[1,2]", '{"a":', '{"a": NaN}'])
def test_json_errors(line: str) -> None:
    result = run("| json", line)
    assert result["__error__"] == "JSONParserErr"
    assert result["__error_details__"]


def test_json_ignores_text_after_the_object() -> None:
    assert run("| json", ' {"a":"b"} trailing') == {"a": "b"}


def test_json_parameters_read_paths_and_return_raw_json() -> None:
    line = '{"user": {"id": "u1", "tags": ["x", {"k": 1}]}, "n": 12.0, "nil": null}'
    result = run(
        '| json id="user.id", tag="user.tags[0]", obj="user.tags[1]", n, nil, gone="a.b",'
        ' key="user[\\"id\\"]"',
        line,
    )
    assert result == {
        "id": "u1",
        "tag": "x",
        "obj": '{"k": 1}',
        "n": "12.0",
        "nil": "",
        "gone": "",
        "key": "u1",
    }


def test_json_parameters_error_on_a_line_that_is_not_json() -> None:
    assert run('| json a="a"', "plain")["__error__"] == "JSONParserErr"
    assert run('| json a="a"', "") == {}


def test_logfmt_fast_and_slow_paths_agree_with_loki() -> None:
    line = 'a-b=1 9x=2 dup=first dup=second msg="hi there" empty= bare'
    assert run("| logfmt", line) == {"a_b": "1", "_9x": "2", "dup": "first", "msg": "hi there"}
    assert run("| logfmt --keep-empty", line)["empty"] == ""
    assert run("| logfmt --keep-empty", line)["bare"] == ""


@pytest.mark.parametrize(
    ("line", "pairs", "error"),
    [
        ('a="x\\"y" b=2', [("a", 'x"y'), ("b", "2")], None),
        ('a="\\u00e9\\t"', [("a", "é\t")], None),
        ("a=b=c d=1", [("d", "1")], "logfmt syntax error at pos 4 : unexpected '='"),
        ('a="open', [], "logfmt syntax error at pos 8 : unterminated quoted value"),
        ("=x y=1", [("y", "1")], "logfmt syntax error at pos 1 : unexpected '='"),
        ('a"b=1 c=2', [("c", "2")], "logfmt syntax error at pos 2 : unexpected '\"'"),
        ('a="\\q" b=1', [("b", "1")], "logfmt syntax error at pos 7 : invalid quoted value"),
        ("é=1 x", [("é", "1"), ("x", "")], None),
    ],
)
def test_logfmt_pairs(line: str, pairs: list[tuple[str, str]], error: str | None) -> None:
    assert logfmt.logfmt_pairs(line, strict=False) == (pairs, error)


def test_logfmt_strict_stops_and_sets_the_error() -> None:
    result = run("| logfmt --strict", "a=1 b=x=y c=3")
    assert result["a"] == "1"
    assert "c" not in result
    assert result["__error__"] == "LogfmtParserErr"
    assert "c" in run("| logfmt", "a=1 b=x=y c=3")


@given(st.text(alphabet='ab= "\\\tx', max_size=20))
def test_logfmt_fast_path_matches_the_scanner(line: str) -> None:
    fast = logfmt.logfmt_pairs(line, strict=False)
    slow = logfmt._LogfmtScanner(line).scan(strict=False)
    assert fast[0] == slow[0]


def test_logfmt_parameters() -> None:
    result = run('| logfmt lvl="level", missing, code', "level=info code=200 other=x")
    assert result == {"lvl": "info", "missing": "", "code": "200"}


def test_regexp_named_groups() -> None:
    result = run('| regexp "(?P<method>\\\\w+) (?P<path>\\\\S+)(?: (?P<code>\\\\d+))?"', "GET /x")
    assert result == {"method": "GET", "path": "/x", "code": ""}
    assert run('| regexp "(?P<n>\\\\d+)"', "none") == {}


@pytest.mark.parametrize(
    ("pattern", "line", "expected"),
    [
        (
            "<method> <path> <status>",
            "GET /home 200",
            {"method": "GET", "path": "/home", "status": "200"},
        ),
        ("<method> <_> <status>", "GET /home 200", {"method": "GET", "status": "200"}),
        ("<method> <path>", "POST", {"method": "POST"}),
        ("[<level>] <msg>", "[warn] disk full", {"level": "warn", "msg": "disk full"}),
        ("[<level>] <msg>", "warn disk", {}),
        ("<ip> - <user>", "", {}),
    ],
)
def test_pattern(pattern: str, line: str, expected: dict[str, str]) -> None:
    assert run(f"| pattern `{pattern}`", line) == expected


def test_unpack_replaces_the_line_with_entry() -> None:
    expr = syntax.parse_expr('{app="a"} | unpack')
    assert isinstance(expr, ast.LogQueryExpr)
    stage = parsers.build(expr.stages[0])
    assert stage is not None
    builder = labels.LabelsBuilder({"app": "a"})
    line = stage(0, '{"app":"x","num":5,"cluster":"eu","_entry":"real"}', builder)
    assert line == "real"
    assert dict(builder.labels()) == {"app": "a", "app_extracted": "x", "cluster": "eu"}


def test_unpack_without_entry_adds_nothing_and_non_json_fails() -> None:
    assert run("| unpack", '{"a":"b"}') == {}
    assert run("| unpack", "not json")["__error_details__"] == (
        "expecting json object(6), but it is not"
    )
