"""Tenant IDs: dskit's character set, length and path-safety rules, header handling."""

from __future__ import annotations

import pytest
from lokistack.model import tenant


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("team-a", "team-a"),
        ("A1!-_.*'()", "A1!-_.*'()"),
        ("tenant:metadata", "tenant"),
        ("tenant:with:colons", "tenant"),
        ("x" * 150, "x" * 150),
    ],
)
def test_valid_tenant_ids(raw: str, expected: str) -> None:
    assert tenant.validate_tenant_id(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("a/b", "tenant ID 'a/b' contains unsupported character '/'"),
        ("a b", "tenant ID 'a b' contains unsupported character ' '"),
        ("é", "tenant ID 'é' contains unsupported character 'Ã'"),  # Go prints the byte 0xc3
        ("bad/x:meta", "tenant ID 'bad/x' contains unsupported character '/'"),
        ("x" * 151, "tenant ID is too long: max 150 characters"),
        (".", "tenant ID is '.' or '..'"),
        ("..", "tenant ID is '.' or '..'"),
        ("..:meta", "tenant ID is '.' or '..'"),
    ],
)
def test_invalid_tenant_ids(raw: str, message: str) -> None:
    with pytest.raises(tenant.TenantError) as caught:
        tenant.validate_tenant_id(raw)
    assert str(caught.value) == message
    assert caught.value.status == 400


def test_auth_disabled_ignores_the_header() -> None:
    assert tenant.tenant_from_header(None, auth_enabled=False) == "fake"
    assert tenant.tenant_from_header("other", auth_enabled=False) == "fake"


@pytest.mark.parametrize("value", [None, "", "|"])
def test_missing_org_id(value: str | None) -> None:
    with pytest.raises(tenant.TenantError) as caught:
        tenant.tenant_from_header(value, auth_enabled=True)
    assert str(caught.value) == "no org id"
    assert caught.value.status == 401


def test_header_values() -> None:
    assert tenant.tenant_from_header("team-a", auth_enabled=True) == "team-a"
    assert tenant.tenant_from_header("team-a:sub", auth_enabled=True) == "team-a"
    assert tenant.tenant_from_header("a|a", auth_enabled=True) == "a"
    assert tenant.tenant_from_header("a|a:meta", auth_enabled=True) == "a"


@pytest.mark.parametrize("value", ["a|b", "a|"])
def test_multiple_org_ids(value: str) -> None:
    with pytest.raises(tenant.TenantError) as caught:
        tenant.tenant_from_header(value, auth_enabled=True)
    assert str(caught.value) == "multiple org IDs present"
    assert caught.value.status == 400


def test_invalid_part_of_multi_tenant_header() -> None:
    with pytest.raises(tenant.TenantError, match="unsupported character '/'"):
        tenant.tenant_from_header("a|b/c", auth_enabled=True)


def test_tenant_error_is_a_value_error() -> None:
    assert issubclass(tenant.TenantError, ValueError)
