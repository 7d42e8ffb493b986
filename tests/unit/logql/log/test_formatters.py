"""line_format, label_format, decolorize, drop and keep."""

from __future__ import annotations

import pytest
from lokistack.logql import syntax
from lokistack.logql.log import pipeline
from lokistack.logql.syntax import ast


def run(stages: str, line: str = "msg", **stream: str) -> tuple[str, dict[str, str]] | None:
    expr = syntax.parse_expr('{app="a"} ' + stages)
    labels = tuple(sorted({"app": "a", **stream}.items()))
    assert isinstance(expr, ast.LogQueryExpr)
    result = pipeline.Pipeline.from_ast(expr.stages).process(5, line, labels)
    return None if result is None else (result[0], dict(result[1]))


def test_line_format_renders_over_labels() -> None:
    assert run('| line_format "L={{.level}} {{ __line__ }}"', level="error") == (
        "L=error msg",
        {"app": "a", "level": "error"},
    )
    assert run('| line_format "{{.missing}}"') == ("", {"app": "a"})


def test_line_format_runtime_error_keeps_the_line() -> None:
    result = run('| line_format "{{ div 1 0 }}"')
    assert result is not None
    assert result[0] == "msg"
    assert result[1]["__error__"] == "TemplateFormatErr"


def test_line_format_sees_errors_as_labels() -> None:
    assert run('| json | line_format "{{.__error__}}"', "x") is not None
    result = run('| json | line_format "[{{.__error__}}]"', "x")
    assert result is not None and result[0] == "[JSONParserErr]"


def test_label_format_rename_and_template() -> None:
    assert run("| label_format verb=method", method="get") == ("msg", {"app": "a", "verb": "get"})
    assert run('| label_format route="{{.method}}-ok"', method="get") == (
        "msg",
        {"app": "a", "method": "get", "route": "get-ok"},
    )
    assert run('| label_format method="{{.method}}!"', method="get") == (
        "msg",
        {"app": "a", "method": "get!"},
    )
    assert run("| label_format x=missing") == ("msg", {"app": "a"})


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ('| line_format "{{ nosuchfunc }}"', "invalid line template: template: line:1: function"),
        ('| label_format x="{{"', "invalid template for label 'x': template: label:1: unclosed"),
    ],
)
def test_bad_templates_fail_the_build(stage: str, message: str) -> None:
    with pytest.raises(pipeline.PipelineError, match=message):
        run(stage)


def test_decolorize() -> None:
    colored = "\x1b[31mred\x1b[0m \x1b[1;32mbold\x1b[m plain \x1b]0;title\x07"
    assert run("| decolorize", colored) == ("red bold plain ", {"app": "a"})


def test_drop_by_name_and_by_value() -> None:
    assert run("| drop code, zone", code="500", zone="eu") == ("msg", {"app": "a"})
    assert run('| drop code="500"', code="500", zone="eu") == ("msg", {"app": "a", "zone": "eu"})
    assert run('| drop code="500"', code="200") == ("msg", {"app": "a", "code": "200"})


def test_drop_error_labels_clears_the_error() -> None:
    assert run("| json | drop __error__, __error_details__", "x") == ("x", {"app": "a"})
    result = run('| json | drop __error__="Other"', "x")
    assert result is not None and "__error__" in result[1]


def test_keep() -> None:
    assert run("| keep zone", code="500", zone="eu") == ("msg", {"zone": "eu"})
    assert run('| keep code="500"', code="200") == ("msg", {})
    result = run("| json | keep nothing", "x")
    assert result is not None
    assert set(result[1]) == {"__error__", "__error_details__"}
