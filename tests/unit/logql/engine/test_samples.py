"""Result types and their JSON shapes."""

from __future__ import annotations

import math

import pytest
from lokistack.logql.engine import samples

A: samples.Labels = (("app", "a"),)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2.0, "2"),
        (0.1, "0.1"),
        (1e16, "10000000000000000"),
        (1.5e-7, "0.00000015"),
        (-0.0, "-0"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
    ],
)
def test_values_format_as_go_strconv(value: float, text: str) -> None:
    assert samples.format_value(value) == text


def test_times_are_seconds_with_millisecond_decimals() -> None:
    assert samples.json_time(1_588_889_221_500_000_123) == 1588889221.5
    assert samples.json_time(60_000_000_000) == 60


def test_json_shapes() -> None:
    point = samples.Sample(1_500_000_000, 0.5)
    assert samples.Matrix([samples.Series(A, [point])]).to_json() == [
        {"metric": {"app": "a"}, "values": [[1.5, "0.5"]]}
    ]
    assert samples.Vector(2_000_000_000, [(A, 3.0)]).to_json() == [
        {"metric": {"app": "a"}, "value": [2, "3"]}
    ]
    assert samples.Scalar(0, 1.0).to_json() == [0, "1"]
    assert samples.Streams([samples.Stream(A, [(5, "line")])]).to_json() == [
        {"stream": {"app": "a"}, "values": [["5", "line"]]}
    ]
    assert samples.Vector(0, []).result_type == "vector"
