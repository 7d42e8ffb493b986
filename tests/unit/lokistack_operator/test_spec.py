"""The typed LokiStack spec: defaults, size presets, effective values and field-path errors."""

from __future__ import annotations

import copy
import dataclasses
import decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lokistack_operator import spec
from lokistack_operator.spec import SpecError

from tests.support.operator_stacks import DEMO_SPEC, MEDIUM_SPEC


def with_changes(base: dict[str, Any] | Any, **changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(dict(base))
    raw.update(changes)
    return raw


def test_demo_spec_gets_the_static_defaults() -> None:
    parsed = spec.parse_spec(DEMO_SPEC)
    assert parsed.management_state == "Managed"
    assert parsed.storage.secret.type == "s3"
    assert parsed.storage.schemas == (
        spec.ObjectStorageSchema(version="v13", effective_date="2020-10-11"),
    )
    assert parsed.storage_class_name is None
    assert parsed.replication.factor is None
    assert parsed.replication.zones == ()
    assert parsed.limits.tenants == {}
    assert parsed.template.use_requests_as_limits is False


def test_parsed_spec_is_frozen_and_equal_for_equal_input() -> None:
    first, second = spec.parse_spec(MEDIUM_SPEC), spec.parse_spec(copy.deepcopy(MEDIUM_SPEC))
    assert first == second
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.size = "1x.demo"  # type: ignore[misc]
    with pytest.raises(TypeError):
        first.template.ingester.node_selector["x"] = "y"  # type: ignore[index]


def test_medium_spec_keeps_every_field() -> None:
    parsed = spec.parse_spec(MEDIUM_SPEC)
    assert parsed.storage_class_name == "fast-ssd"
    assert parsed.replication.factor == 3
    assert parsed.replication.zones[0].topology_key == "topology.kubernetes.io/zone"
    assert parsed.limits.global_.ingestion.ingestion_rate == 40
    assert parsed.limits.tenants["team-b"].queries.query_timeout == "10m"
    assert parsed.template.ingester.tolerations[0].effect == "NoSchedule"
    assert parsed.template.querier.pod_anti_affinity is not None


@pytest.mark.parametrize("size", spec.SIZE_NAMES)
def test_every_size_has_a_complete_preset(size: spec.Size) -> None:
    preset = spec.SIZES[size]
    assert set(preset.replicas) == set(spec.COMPONENTS)
    assert preset.replicas["compactor"] == 1
    assert preset.replication_factor == (1 if size == "1x.demo" else 2)
    assert preset.replication_factor <= preset.replicas["ingester"]
    assert (preset.requests == {}) == (size == "1x.demo")
    for requests in preset.requests.values():
        assert set(requests) == {"cpu", "memory"}
        for quantity in requests.values():
            spec.parse_quantity(quantity)
    for block in (preset.limits.ingestion, preset.limits.queries):
        unset = [f.name for f in dataclasses.fields(block) if getattr(block, f.name) is None]
        assert unset in ([], ["max_global_streams_per_tenant"])


def test_size_table_matches_the_loki_operator() -> None:
    medium = spec.SIZES["1x.medium"]
    assert dict(medium.replicas) == {
        "distributor": 2,
        "ingester": 3,
        "querier": 3,
        "query-frontend": 2,
        "compactor": 1,
    }
    assert dict(medium.requests["ingester"]) == {"cpu": "6", "memory": "30Gi"}
    assert medium.limits.ingestion.ingestion_rate == 50
    assert medium.limits.ingestion.max_global_streams_per_tenant == 25000
    assert spec.SIZES["1x.small"].limits.ingestion.ingestion_rate == 15
    assert spec.SIZES["1x.demo"].wal_volume_size == "10Gi"
    assert spec.SIZES["1x.pico"].wal_volume_size == "150Gi"


def test_effective_replicas_prefer_the_template_and_pin_the_compactor() -> None:
    parsed = spec.parse_spec(MEDIUM_SPEC)
    assert spec.effective_replicas(parsed, "ingester") == 4
    assert spec.effective_replicas(parsed, "querier") == 5
    assert spec.effective_replicas(parsed, "distributor") == 2
    assert parsed.template.compactor.replicas == 3
    assert spec.effective_replicas(parsed, "compactor") == 1


def test_effective_replication_factor() -> None:
    assert spec.effective_replication_factor(spec.parse_spec(DEMO_SPEC)) == 1
    assert spec.effective_replication_factor(spec.parse_spec(MEDIUM_SPEC)) == 3
    small = with_changes(DEMO_SPEC, size="1x.small")
    assert spec.effective_replication_factor(spec.parse_spec(small)) == 2


def test_effective_limits_put_user_values_over_the_size() -> None:
    limits = spec.effective_limits(spec.parse_spec(MEDIUM_SPEC))
    assert limits.ingestion.ingestion_rate == 40  # user
    assert limits.ingestion.ingestion_burst_size == 20  # medium preset
    assert limits.ingestion.max_global_streams_per_tenant == 50000
    assert limits.queries.query_timeout == "5m"
    assert limits.queries.max_query_series == 500


def test_effective_resources() -> None:
    demo = spec.parse_spec(DEMO_SPEC)
    assert spec.effective_resources(demo, "ingester") == {}
    medium = spec.parse_spec(MEDIUM_SPEC)
    # A limit below the preset request lowers the request.
    assert spec.effective_resources(medium, "ingester") == {
        "limits": {"memory": "24Gi"},
        "requests": {"cpu": "6", "memory": "24Gi"},
    }
    assert spec.effective_resources(medium, "querier") == {
        "requests": {"cpu": "3", "memory": "8Gi"}
    }
    assert spec.effective_resources(medium, "distributor") == {
        "requests": {"cpu": "2", "memory": "2Gi"}
    }
    as_limits = with_changes(MEDIUM_SPEC)
    as_limits["template"] = {"useRequestsAsLimits": True}
    parsed = spec.parse_spec(as_limits)
    assert spec.effective_resources(parsed, "compactor") == {
        "limits": {"cpu": "2", "memory": "4Gi"},
        "requests": {"cpu": "2", "memory": "4Gi"},
    }


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", decimal.Decimal("0.5")),
        ("2", decimal.Decimal(2)),
        ("1.5", decimal.Decimal("1.5")),
        ("2Gi", decimal.Decimal(2 * 1024**3)),
        ("512Mi", decimal.Decimal(512 * 1024**2)),
        ("1k", decimal.Decimal(1000)),
        ("1e3", decimal.Decimal(1000)),
    ],
)
def test_parse_quantity(text: str, value: decimal.Decimal) -> None:
    assert spec.parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "Gi", "1Gb", "one", "1.2.3"])
def test_parse_quantity_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        spec.parse_quantity(text)


SECRET = {"secret": {"name": "s"}}


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        ({"storage": SECRET}, "spec.size", "required field is missing"),
        ({"size": "2x.huge", "storage": SECRET}, "spec.size", "expected one of 1x.demo"),
        ({"size": "1x.demo"}, "spec.storage", "required field is missing"),
        ({"size": "1x.demo", "storage": {"secret": {}}}, "spec.storage.secret.name", "required"),
        ({"size": "1x.demo", "storage": {"secret": {"name": "Bad_Name"}}}, "spec.storage.secret.name", "must match"),  # noqa: E501
        ({"size": "1x.demo", "storage": {"secret": {"name": "s", "type": "gcs"}}}, "spec.storage.secret.type", "expected one of s3"),  # noqa: E501
        ({"size": "1x.demo", "storage": SECRET, "replicas": 3}, "spec.replicas", "unknown field"),
        ({"size": "1x.demo", "storage": SECRET, "managementState": "Paused"}, "spec.managementState", "Managed, Unmanaged"),  # noqa: E501
        ({"size": "1x.demo", "storage": SECRET, "replication": {"factor": "2"}}, "spec.replication.factor", "expected an integer"),  # noqa: E501
        ({"size": "1x.demo", "storage": SECRET, "replication": {"factor": 0}}, "spec.replication.factor", "at least 1"),  # noqa: E501
        ({"size": "1x.demo", "storage": SECRET, "replication": {"factor": 2}}, "spec.replication.factor", "(2) must not exceed the number of ingester replicas (1)"),  # noqa: E501
        ({"size": "1x.small", "storage": SECRET, "template": {"ingester": {"replicas": 1}}}, "spec.replication.factor", "replication factor (2)"),  # noqa: E501
        ({"size": "1x.demo", "storage": SECRET, "template": {"ingester": {"replicas": 0}}}, "spec.template.ingester.replicas", "at least 1"),  # noqa: E501
        ({"size": "1x.demo", "storage": SECRET, "limits": {"global": {"ingestion": {"ingestionRate": -1}}}}, "spec.limits.global.ingestion.ingestionRate", "at least 0"),  # noqa: E501
        ({"size": "1x.demo", "storage": SECRET, "limits": {"global": {"queries": {"queryTimeout": "soon"}}}}, "spec.limits.global.queries.queryTimeout", "not a duration"),  # noqa: E501
        ({"size": "1x.demo", "storage": SECRET, "limits": {"global": {"queries": {"queryTimeout": "0s"}}}}, "spec.limits.global.queries.queryTimeout", "longer than zero"),  # noqa: E501
        ({"size": "1x.demo", "storage": SECRET, "limits": {"tenants": {"bad/tenant": {}}}}, "spec.limits.tenants.bad/tenant", "tenant ID"),  # noqa: E501
        ({"size": "1x.demo", "storage": SECRET, "limits": {"tenants": {"t": {"ingestion": {"rate": 1}}}}}, "spec.limits.tenants.t.ingestion.rate", "unknown field"),  # noqa: E501
        ({"size": "1x.demo", "storage": {**SECRET, "schemas": []}}, "spec.storage.schemas", "at least 1"),  # noqa: E501
        ({"size": "1x.demo", "storage": {**SECRET, "schemas": [{"version": "v13", "effectiveDate": "2024-13-01"}]}}, "spec.storage.schemas[0].effectiveDate", "YYYY-MM-DD"),  # noqa: E501
        ({"size": "1x.demo", "storage": {**SECRET, "schemas": [{"version": "v12", "effectiveDate": "2024-01-01"}, {"version": "v13", "effectiveDate": "2024-01-01"}]}}, "spec.storage.schemas[1]", "duplicate effectiveDate"),  # noqa: E501
        ({"size": "1x.demo", "storage": SECRET, "replication": {"zones": [{"maxSkew": 1}]}}, "spec.replication.zones[0].topologyKey", "required"),  # noqa: E501
        ({"size": "1x.demo", "storage": SECRET, "template": {"querier": {"resources": {"requests": {"cpu": "lots"}}}}}, "spec.template.querier.resources.requests.cpu", "resource quantity"),  # noqa: E501
        ({"size": "1x.demo", "storage": SECRET, "template": {"queryFrontend": {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}}}, "spec.template.queryFrontend.resources.requests.cpu", "larger than the limit"),  # noqa: E501
        ({"size": "1x.demo", "storage": SECRET, "template": {"querier": {"tolerations": [{"operator": "Exists", "value": "x"}]}}}, "spec.template.querier.tolerations[0]", "must not have a value"),  # noqa: E501
        ({"size": "1x.demo", "storage": SECRET, "template": {"querier": {"tolerations": [{"key": "k", "tolerationSeconds": 5}]}}}, "spec.template.querier.tolerations[0]", "NoExecute"),  # noqa: E501
        ({"size": "1x.demo", "storage": SECRET, "template": {"querier": {"podAntiAffinity": {"preferred": []}}}}, "spec.template.querier.podAntiAffinity.preferred", "unknown field"),  # noqa: E501
        ({"size": "1x.demo", "storage": SECRET, "template": {"querier": {"nodeSelector": {"a": 1}}}}, "spec.template.querier.nodeSelector.a", "expected a string"),  # noqa: E501
        ({"size": "1x.demo", "storage": SECRET, "template": "big"}, "spec.template", "expected an object"),  # noqa: E501
    ],
)  # fmt: skip
def test_bad_specs_name_the_field(raw: dict[str, Any], path: str, fragment: str) -> None:
    with pytest.raises(SpecError) as raised:
        spec.parse_spec(raw)
    assert raised.value.path == path
    assert fragment in raised.value.message
    assert str(raised.value) == f"{path}: {raised.value.message}"


def test_quantities_may_be_integers() -> None:
    raw = with_changes(DEMO_SPEC, template={"ingester": {"resources": {"requests": {"cpu": 2}}}})
    parsed = spec.parse_spec(raw)
    assert spec.effective_resources(parsed, "ingester") == {"requests": {"cpu": "2"}}


@pytest.mark.parametrize("name", ["logs", "a", "team-a-logs", "x" * spec.MAX_STACK_NAME])
def test_valid_stack_names(name: str) -> None:
    spec.validate_stack_name(name)


@pytest.mark.parametrize("name", ["", "1logs", "Logs", "logs-", "a.b", "x" * 44])
def test_invalid_stack_names(name: str) -> None:
    with pytest.raises(SpecError, match=r"metadata\.name"):
        spec.validate_stack_name(name)


def test_replication_rule_encodes_the_size_presets() -> None:
    rule = spec.replication_rule()
    assert "self.size == '1x.demo' ? 1 : 2" in rule.rule
    assert "self.size == '1x.demo' ? 1 : 3" in rule.rule
    assert rule.message == spec.REPLICATION_MESSAGE
    assert rule.field_path == ".replication.factor"


@given(
    size=st.sampled_from(spec.SIZE_NAMES),
    replicas=st.none() | st.integers(min_value=1, max_value=6),
    factor=st.none() | st.integers(min_value=1, max_value=6),
)
def test_replication_check_compares_effective_values(
    size: spec.Size, replicas: int | None, factor: int | None
) -> None:
    raw: dict[str, Any] = {"size": size, "storage": SECRET}
    if replicas is not None:
        raw["template"] = {"ingester": {"replicas": replicas}}
    if factor is not None:
        raw["replication"] = {"factor": factor}
    effective_factor = spec.SIZES[size].replication_factor if factor is None else factor
    effective_replicas = spec.SIZES[size].replicas["ingester"] if replicas is None else replicas
    if effective_factor <= effective_replicas:
        parsed = spec.parse_spec(raw)
        assert spec.effective_replication_factor(parsed) == effective_factor
        assert spec.effective_replicas(parsed, "ingester") == effective_replicas
    else:
        with pytest.raises(SpecError, match="must not exceed"):
            spec.parse_spec(raw)
