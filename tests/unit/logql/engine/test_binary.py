"""Binary operators: scalar forms, comparisons and bool, vector matching and its errors."""

from __future__ import annotations

import math

import pytest
from lokistack.logql.engine import binary, errors, samples
from lokistack.logql.engine.vector_agg import StepVector
from lokistack.logql.syntax import ast

A1: samples.Labels = (("app", "a"), ("pod", "1"))
A2: samples.Labels = (("app", "a"), ("pod", "2"))
B1: samples.Labels = (("app", "b"), ("pod", "1"))
LIT = ast.Literal(0)


def op(
    kind: ast.BinOp,
    *,
    bool_modifier: bool = False,
    on: bool = False,
    labels: tuple[str, ...] = (),
    card: ast.Cardinality = ast.Cardinality.ONE_TO_ONE,
    include: tuple[str, ...] = (),
) -> ast.BinaryOp:
    matching = ast.VectorMatching(on, labels, card, include)
    return ast.BinaryOp(kind, LIT, LIT, bool_modifier, matching)


def test_vector_scalar_arithmetic_and_division_by_zero() -> None:
    vector = {A1: 6.0, A2: 0.0}
    assert binary.vector_scalar(op(ast.BinOp.DIV), vector, 2.0, False) == {A1: 3.0, A2: 0.0}
    by_zero = binary.vector_scalar(op(ast.BinOp.DIV), vector, 0.0, False)
    assert all(math.isnan(v) for v in by_zero.values())
    assert binary.vector_scalar(op(ast.BinOp.POW), {A1: 2.0}, 3.0, False) == {A1: 8.0}
    assert binary.vector_scalar(op(ast.BinOp.MOD), {A1: -7.0}, 3.0, False) == {A1: -1.0}
    assert binary.vector_scalar(op(ast.BinOp.SUB), {A1: 1.0}, 10.0, True) == {A1: 9.0}


def test_comparison_filters_and_keeps_the_vector_value() -> None:
    vector = {A1: 12.0, A2: 0.5}
    assert binary.vector_scalar(op(ast.BinOp.GT), vector, 1.0, False) == {A1: 12.0}
    assert binary.vector_scalar(op(ast.BinOp.LT), vector, 1.0, True) == {A1: 12.0}


def test_comparison_with_bool_gives_one_or_zero() -> None:
    vector = {A1: 12.0, A2: 0.5}
    result = binary.vector_scalar(op(ast.BinOp.GT, bool_modifier=True), vector, 1.0, False)
    assert result == {A1: 1.0, A2: 0.0}


def test_arithmetic_drops_the_metric_name() -> None:
    named = (("__name__", "x"), ("app", "a"))
    assert binary.vector_scalar(op(ast.BinOp.ADD), {named: 1.0}, 1.0, False) == {
        (("app", "a"),): 2.0
    }


def test_one_to_one_matches_identical_label_sets() -> None:
    lhs: StepVector = {A1: 6.0, A2: 8.0}
    rhs: StepVector = {A1: 2.0, B1: 1.0}
    assert binary.vector_vector(op(ast.BinOp.DIV), lhs, rhs) == {A1: 3.0}


def test_on_keeps_only_the_matching_labels() -> None:
    lhs: StepVector = {A1: 6.0}
    rhs: StepVector = {(("app", "a"), ("zone", "z")): 2.0}
    assert binary.vector_vector(op(ast.BinOp.MUL, on=True, labels=("app",)), lhs, rhs) == {
        (("app", "a"),): 12.0
    }


def test_ignoring_drops_the_ignored_labels() -> None:
    lhs: StepVector = {A1: 6.0}
    rhs: StepVector = {(("app", "a"), ("pod", "9")): 2.0}
    assert binary.vector_vector(op(ast.BinOp.SUB, labels=("pod",)), lhs, rhs) == {
        (("app", "a"),): 4.0
    }


def test_group_left_keeps_many_side_labels_and_includes_one_side_labels() -> None:
    lhs: StepVector = {A1: 1.0, A2: 2.0}
    rhs: StepVector = {(("app", "a"), ("team", "t")): 10.0}
    node = op(
        ast.BinOp.MUL, on=True, labels=("app",), card=ast.Cardinality.MANY_TO_ONE, include=("team",)
    )
    assert binary.vector_vector(node, lhs, rhs) == {
        (("app", "a"), ("pod", "1"), ("team", "t")): 10.0,
        (("app", "a"), ("pod", "2"), ("team", "t")): 20.0,
    }


def test_group_right_mirrors_group_left() -> None:
    lhs: StepVector = {(("app", "a"),): 10.0}
    rhs: StepVector = {A1: 1.0, A2: 2.0}
    node = op(ast.BinOp.SUB, on=True, labels=("app",), card=ast.Cardinality.ONE_TO_MANY)
    assert binary.vector_vector(node, lhs, rhs) == {A1: 9.0, A2: 8.0}


def test_many_to_many_is_refused() -> None:
    lhs: StepVector = {A1: 1.0}
    rhs: StepVector = {A1: 1.0, A2: 2.0}
    node = op(ast.BinOp.ADD, on=True, labels=("app",))
    with pytest.raises(errors.EvaluationError, match="many-to-many matching not allowed"):
        binary.vector_vector(node, lhs, rhs)


def test_one_to_one_with_duplicates_on_the_left_must_be_explicit() -> None:
    lhs: StepVector = {A1: 1.0, A2: 2.0}
    rhs: StepVector = {(("app", "a"),): 1.0}
    node = op(ast.BinOp.ADD, on=True, labels=("app",))
    with pytest.raises(errors.EvaluationError, match="many-to-one matching must be explicit"):
        binary.vector_vector(node, lhs, rhs)


def test_vector_comparison_filters_and_bool() -> None:
    lhs: StepVector = {A1: 1.0, A2: 5.0}
    rhs: StepVector = {A1: 2.0, A2: 2.0}
    assert binary.vector_vector(op(ast.BinOp.GT), lhs, rhs) == {A2: 5.0}
    assert binary.vector_vector(op(ast.BinOp.GT, bool_modifier=True), lhs, rhs) == {
        A1: 0.0,
        A2: 1.0,
    }


def test_set_operators() -> None:
    lhs: StepVector = {A1: 1.0, A2: 2.0}
    rhs: StepVector = {A2: 20.0, B1: 30.0}
    assert binary.vector_vector(op(ast.BinOp.AND), lhs, rhs) == {A2: 2.0}
    assert binary.vector_vector(op(ast.BinOp.UNLESS), lhs, rhs) == {A1: 1.0}
    assert binary.vector_vector(op(ast.BinOp.OR), lhs, rhs) == {A1: 1.0, A2: 2.0, B1: 30.0}
    on_app = op(ast.BinOp.AND, on=True, labels=("app",))
    only_app: StepVector = {(("app", "a"),): 0.0}
    assert binary.vector_vector(on_app, lhs, only_app) == lhs


def test_scalar_scalar_folds_like_the_parser() -> None:
    assert binary.scalar_scalar(op(ast.BinOp.GTE), 1.0, 1.0) == 1.0
    assert math.isnan(binary.scalar_scalar(op(ast.BinOp.MOD), 1.0, 0.0))
