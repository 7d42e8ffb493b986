"""crds/lokistack.yaml: generated from the typed spec, structurally valid, and in step with it."""

from __future__ import annotations

import dataclasses
import pathlib
import typing
from typing import Any

import gencrd
import pytest
import yaml
from lokistack_operator import spec, specmodel, storage
from lokistack_operator.specfields import hints, is_dataclass_type, json_name, optional_inner

ROOT = pathlib.Path(__file__).resolve().parents[3]
CRD_PATH = ROOT / "crds" / "lokistack.yaml"
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    loaded = yaml.safe_load(CRD_PATH.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def version(crd: dict[str, Any]) -> dict[str, Any]:
    (only,) = crd["spec"]["versions"]
    found: dict[str, Any] = only
    return found


def spec_schema(version: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return found


def test_committed_crd_is_the_generated_one() -> None:
    assert CRD_PATH.read_text(encoding="utf-8") == gencrd.render(), (
        "crds/lokistack.yaml is out of date: run .venv/bin/python tools/gencrd.py"
    )
    assert gencrd.main(["--check"]) == 0


def test_check_mode_detects_a_stale_file(tmp_path: pathlib.Path) -> None:
    stale = tmp_path / "crd.yaml"
    stale.write_text("old\n")
    assert gencrd.main(["--check", "--output", str(stale)]) == 1
    assert gencrd.main(["--output", str(stale)]) == 0
    assert gencrd.main(["--check", "--output", str(stale)]) == 0


def test_crd_identity(crd: dict[str, Any], version: dict[str, Any]) -> None:
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == "lokistacks.lokistack.dev"
    body = crd["spec"]
    assert body["group"] == "lokistack.dev"
    assert body["scope"] == "Namespaced"
    assert body["names"] == {
        "kind": "LokiStack",
        "listKind": "LokiStackList",
        "plural": "lokistacks",
        "singular": "lokistack",
        "shortNames": ["lks"],
        "categories": ["lokistack", "logging"],
    }
    assert (version["name"], version["served"], version["storage"]) == ("v1", True, True)
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: (c["type"], c["jsonPath"]) for c in version["additionalPrinterColumns"]}
    assert columns["Size"] == ("string", ".spec.size")
    assert columns["Ready"] == ("string", '.status.conditions[?(@.type=="Ready")].status')
    assert columns["Age"] == ("date", ".metadata.creationTimestamp")


def _check_structural(schema: dict[str, Any], path: str) -> None:
    """The rules of a structural schema that a generator could get wrong."""
    int_or_string = schema.get("x-kubernetes-int-or-string") is True
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    assert "type" in schema or int_or_string, f"{path}: no type"
    assert not ("properties" in schema and "additionalProperties" in schema), path
    if int_or_string:
        assert schema["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
    if schema.get("type") == "array":
        assert "items" in schema, path
        _check_structural(schema["items"], f"{path}[]")
        if schema.get("x-kubernetes-list-type") == "map":
            item = schema["items"]
            for key in schema["x-kubernetes-list-map-keys"]:
                assert key in item.get("required", []) or "default" in item["properties"][key]
    for name, child in schema.get("properties", {}).items():
        _check_structural(child, f"{path}.{name}")
    for name in schema.get("required", []):
        assert name in schema["properties"], f"{path}: required {name} is not a property"
    if isinstance(schema.get("additionalProperties"), dict):
        _check_structural(schema["additionalProperties"], f"{path}.*")
    if preserve:
        assert schema["type"] == "object", path
    for rule in schema.get("x-kubernetes-validations", []):
        assert set(rule) <= {"rule", "message", "fieldPath"}, path
        assert rule["rule"] and rule["message"], path


def test_schema_is_structural(version: dict[str, Any]) -> None:
    root = version["schema"]["openAPIV3Schema"]
    _check_structural(root, "")
    assert set(root["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert "x-kubernetes-preserve-unknown-fields" not in spec_schema(version)


def _check_against_model(schema: dict[str, Any], cls: type[Any], path: str) -> None:
    """Every dataclass field is a property with its JSON name, enum and requiredness."""
    fields = dataclasses.fields(cls)
    assert list(schema["properties"]) == [json_name(f) for f in fields], path
    required = [
        json_name(f)
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    assert schema.get("required", []) == required, path
    field_hints = hints(cls)
    for item in fields:
        child = schema["properties"][json_name(item)]
        hint = optional_inner(field_hints[item.name]) or field_hints[item.name]
        if typing.get_origin(hint) is typing.Literal:
            assert child["enum"] == list(typing.get_args(hint)), f"{path}.{item.name}"
        if typing.get_origin(hint) is tuple:
            hint, child = typing.get_args(hint)[0], child["items"]
        elif typing.get_origin(hint) is typing.get_origin(typing.Mapping[str, str]):
            hint = typing.get_args(hint)[1]
            child = child.get("additionalProperties", child)
        if is_dataclass_type(hint):
            _check_against_model(child, typing.cast("type[Any]", hint), f"{path}.{item.name}")


def test_schema_follows_the_spec_model(version: dict[str, Any]) -> None:
    schema = spec_schema(version)
    _check_against_model(schema, specmodel.LokiStackSpec, "spec")
    properties = schema["properties"]
    assert properties["size"]["enum"] == list(spec.SIZE_NAMES)
    assert properties["managementState"]["enum"] == list(spec.MANAGEMENT_STATES)
    assert properties["managementState"]["default"] == "Managed"
    template = properties["template"]["properties"]
    assert set(template) == {
        "distributor",
        "ingester",
        "querier",
        "queryFrontend",
        "compactor",
        "useRequestsAsLimits",
    }
    assert {"replicas", "nodeSelector", "tolerations", "podAntiAffinity", "resources"} == set(
        template["ingester"]["properties"]
    )
    limits = properties["limits"]["properties"]
    ingestion = limits["global"]["properties"]["ingestion"]["properties"]
    assert "maxLabelNamesPerSeries" in ingestion
    tenant = limits["tenants"]["additionalProperties"]
    assert tenant["properties"] == limits["global"]["properties"]
    assert properties["storage"]["required"] == ["secret"]
    assert properties["storage"]["properties"]["secret"]["required"] == ["name"]


def test_cel_rules(version: dict[str, Any]) -> None:
    root = version["schema"]["openAPIV3Schema"]
    (name_rule,) = root["x-kubernetes-validations"]
    assert "self.metadata.name" in name_rule["rule"]
    (replication,) = spec_schema(version)["x-kubernetes-validations"]
    assert replication == {
        "rule": spec.replication_rule().rule,
        "message": "replication factor must not exceed the number of ingester replicas",
        "fieldPath": ".replication.factor",
    }
    tolerations = spec_schema(version)["properties"]["template"]["properties"]["querier"][
        "properties"
    ]["tolerations"]
    assert [r["message"] for r in tolerations["items"]["x-kubernetes-validations"]] == [
        rule.message for rule in specmodel.TOLERATION_RULES
    ]


def test_examples_parse() -> None:
    stack = yaml.safe_load((EXAMPLES / "lokistack-demo.yaml").read_text())
    secret = yaml.safe_load((EXAMPLES / "storage-secret.yaml").read_text())
    assert stack["apiVersion"] == "lokistack.dev/v1"
    assert stack["kind"] == "LokiStack"
    spec.validate_stack_name(stack["metadata"]["name"])
    parsed = spec.parse_spec(stack["spec"])
    assert parsed.size == "1x.demo"
    assert parsed.storage.secret.name == secret["metadata"]["name"] == "lokistack-demo-storage"
    assert sorted(secret["stringData"]) == sorted(
        [
            "endpoint",
            "bucketnames",
            "access_key_id",
            "access_key_secret",
            "region",
            "forcepathstyle",
        ]
    )
    storage.parse_storage_secret(secret["stringData"])
