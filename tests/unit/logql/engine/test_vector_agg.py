"""Vector aggregations of one step: grouping, value semantics, topk/bottomk, sort."""

from __future__ import annotations

import math

import pytest
from lokistack.logql.engine import samples, vector_agg
from lokistack.logql.syntax import ast

A1: samples.Labels = (("app", "a"), ("pod", "1"))
A2: samples.Labels = (("app", "a"), ("pod", "2"))
B1: samples.Labels = (("app", "b"), ("pod", "1"))
VECTOR = {A1: 1.0, A2: 5.0, B1: 3.0}


def agg(
    op: ast.VectorOp, by: tuple[str, ...] = (), without: bool = False, k: int | None = None
) -> vector_agg.VectorAggregator:
    return vector_agg.VectorAggregator(
        ast.VectorAggregation(op, ast.Literal(0), ast.Grouping(by, without), k)
    )


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (ast.VectorOp.SUM, {(("app", "a"),): 6.0, (("app", "b"),): 3.0}),
        (ast.VectorOp.AVG, {(("app", "a"),): 3.0, (("app", "b"),): 3.0}),
        (ast.VectorOp.COUNT, {(("app", "a"),): 2.0, (("app", "b"),): 1.0}),
        (ast.VectorOp.MIN, {(("app", "a"),): 1.0, (("app", "b"),): 3.0}),
        (ast.VectorOp.MAX, {(("app", "a"),): 5.0, (("app", "b"),): 3.0}),
        (ast.VectorOp.STDVAR, {(("app", "a"),): 4.0, (("app", "b"),): 0.0}),
        (ast.VectorOp.STDDEV, {(("app", "a"),): 2.0, (("app", "b"),): 0.0}),
    ],
)
def test_aggregations_by_label(op: ast.VectorOp, expected: dict[object, float]) -> None:
    assert agg(op, ("app",))(VECTOR) == expected


def test_default_grouping_is_one_group_without_labels() -> None:
    assert agg(ast.VectorOp.SUM)(VECTOR) == {(): 9.0}


def test_without_drops_the_listed_labels_and_the_metric_name() -> None:
    named: samples.Labels = (("__name__", "x"), ("app", "a"), ("pod", "1"))
    vector = {named: 1.0}
    assert agg(ast.VectorOp.SUM, ("pod",), without=True)(vector) == {(("app", "a"),): 1.0}


def test_by_a_missing_label_groups_into_the_empty_set() -> None:
    assert agg(ast.VectorOp.COUNT, ("zone",))(VECTOR) == {(): 3.0}


def test_min_and_max_skip_nan_unless_all_nan() -> None:
    vector = {A1: math.nan, A2: 2.0}
    assert agg(ast.VectorOp.MIN)(vector) == {(): 2.0}
    assert math.isnan(agg(ast.VectorOp.MAX)({A1: math.nan})[()])


def test_sum_of_opposite_infinities_is_nan_and_stdvar_of_inf_is_nan() -> None:
    vector = {A1: math.inf, A2: -math.inf}
    assert math.isnan(agg(ast.VectorOp.SUM)(vector)[()])
    assert math.isnan(agg(ast.VectorOp.STDVAR)({A1: math.inf, A2: 1.0})[()])


def test_topk_per_group_keeps_original_labels() -> None:
    assert agg(ast.VectorOp.TOPK, ("pod",), k=1)(VECTOR) == {B1: 3.0, A2: 5.0}
    assert agg(ast.VectorOp.BOTTOMK, k=2)(VECTOR) == {A1: 1.0, B1: 3.0}


def test_topk_breaks_ties_by_labels_and_ranks_nan_last() -> None:
    vector = {B1: 2.0, A2: 2.0, A1: math.nan}
    assert list(agg(ast.VectorOp.TOPK, k=1)(vector)) == [A2]
    assert list(agg(ast.VectorOp.BOTTOMK, k=2)(vector)) == [A2, B1]
    assert len(agg(ast.VectorOp.TOPK, k=5)(vector)) == 3


def test_sort_and_sort_desc_order_by_value_with_nan_last() -> None:
    vector = {A1: math.nan, A2: 5.0, B1: 3.0}
    assert list(agg(ast.VectorOp.SORT)(vector)) == [B1, A2, A1]
    assert list(agg(ast.VectorOp.SORT_DESC)(vector)) == [A2, B1, A1]


def test_empty_vector_aggregates_to_nothing() -> None:
    assert agg(ast.VectorOp.COUNT)({}) == {}
