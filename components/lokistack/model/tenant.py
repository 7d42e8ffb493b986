"""Tenant IDs from the ``X-Scope-OrgID`` header, with dskit's rules and messages.

Clients see these messages in 400/401 responses, and tenant IDs become object-store path
prefixes, which is why the character set is restricted and ``.``/``..`` are refused.
"""

from __future__ import annotations

from typing import Final

MAX_TENANT_ID_LENGTH: Final = 150
NO_AUTH_TENANT: Final = "fake"
"""The tenant every request gets when ``auth_enabled`` is false."""

GRPC_METADATA_KEY: Final = "x-scope-orgid"
"""Where the tenant travels between components over gRPC, as Loki's ``X-Scope-OrgID``."""

NO_ORG_ID: Final = "no org id"
MULTIPLE_ORG_IDS: Final = "multiple org IDs present"

_SUPPORTED: Final = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!-_.*'()"
)


class TenantError(ValueError):
    """An unusable tenant header. ``status`` is the HTTP code Loki answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def validate_tenant_id(raw: str) -> str:
    """One tenant ID with its ``:metadata`` suffix removed, checked as dskit does.

    Characters are checked byte by byte over the UTF-8 encoding, and the message shows the
    offending byte as Go's ``%c`` does (as the code point of that byte value).
    """
    tenant_id = raw.partition(":")[0]
    encoded = tenant_id.encode("utf-8", "surrogateescape")
    for byte in encoded:
        if byte not in _SUPPORTED:
            raise TenantError(
                f"tenant ID '{tenant_id}' contains unsupported character '{chr(byte)}'"
            )
    if len(encoded) > MAX_TENANT_ID_LENGTH:
        raise TenantError(f"tenant ID is too long: max {MAX_TENANT_ID_LENGTH} characters")
    if tenant_id in (".", ".."):
        raise TenantError("tenant ID is '.' or '..'")
    return tenant_id


def tenant_from_header(value: str | None, auth_enabled: bool) -> str:
    """The tenant of a push request.

    With auth off the header is ignored and the tenant is ``fake``. ``a|b`` is accepted only
    when every part names the same tenant (multi-tenant IDs are a query feature). A missing or
    empty header is a 401 ``no org id``; so is a header whose only tenant is empty (``|``),
    which dskit would accept as the tenant ``""`` but which no store could hold.
    """
    if not auth_enabled:
        return NO_AUTH_TENANT
    if not value:
        raise TenantError(NO_ORG_ID, status=401)
    tenants = {validate_tenant_id(part) for part in value.split("|")}
    if len(tenants) > 1:
        raise TenantError(MULTIPLE_ORG_IDS)
    tenant = tenants.pop()
    if not tenant:
        raise TenantError(NO_ORG_ID, status=401)
    return tenant
