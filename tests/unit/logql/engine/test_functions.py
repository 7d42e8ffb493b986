"""label_replace (Go template expansion), vector(), absent_over_time labels."""

from __future__ import annotations

import pytest
from lokistack.logql import syntax
from lokistack.logql.engine import errors, functions, samples
from lokistack.logql.syntax import ast

A: samples.Labels = (("app", "api-7"), ("pod", "p1"))


def replace(dst: str, replacement: str, src: str, regex: str) -> ast.LabelReplace:
    return ast.LabelReplace(ast.Literal(0), dst, replacement, src, regex)


@pytest.mark.parametrize(
    ("replacement", "regex", "expected"),
    [
        ("$1", "(.*)-(.*)", "api"),
        ("${2}x", "(.*)-(.*)", "7x"),
        ("$name", "(?P<name>[a-z]+)-.*", "api"),
        ("$1x", "(.*)-(.*)", ""),  # `$1x` names the group "1x": unknown, empty
        ("$$1", "(.*)-(.*)", "$1"),
        ("${bad-}", "(.*)", "${bad-}"),
        ("$9", "(.*)", ""),
        ("a$", "(.*)", "a$"),
    ],
)
def test_expansion_follows_go(replacement: str, regex: str, expected: str) -> None:
    apply = functions.label_replacer(replace("dst", replacement, "app", regex))
    (labels,) = apply({A: 1.0})
    assert dict(labels).get("dst", "") == expected


def test_no_match_leaves_the_series_unchanged() -> None:
    apply = functions.label_replacer(replace("dst", "$1", "app", "zzz(.*)"))
    assert apply({A: 1.0}) == {A: 1.0}


def test_regex_is_anchored() -> None:
    apply = functions.label_replacer(replace("dst", "x", "app", "api"))
    assert apply({A: 1.0}) == {A: 1.0}


def test_empty_result_deletes_the_destination() -> None:
    apply = functions.label_replacer(replace("pod", "", "app", ".*"))
    assert apply({A: 1.0}) == {(("app", "api-7"),): 1.0}


def test_duplicate_label_sets_after_replacement_are_an_error() -> None:
    apply = functions.label_replacer(replace("pod", "x", "app", ".*"))
    with pytest.raises(errors.EvaluationError, match="same labelset"):
        apply({A: 1.0, (("app", "api-7"), ("pod", "p2")): 2.0})


def test_vector_literal_has_no_labels() -> None:
    assert functions.vector_literal(ast.VectorLiteral(3.0)) == {(): 3.0}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ('{job="x", env=~".+"}', (("job", "x"),)),
        ('{job="x", env="p"}', (("env", "p"), ("job", "x"))),
        ('{job="x", job!="y"}', ()),
        ('{job=~"y", job="x"}', (("job", "x"),)),
    ],
)
def test_absent_labels_come_from_equality_matchers(
    selector: str, expected: tuple[tuple[str, str], ...]
) -> None:
    query = syntax.parse_log_selector(selector)
    assert functions.absent_labels(query) == expected
