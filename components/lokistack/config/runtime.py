"""The runtime config: per-tenant limit overrides that change without a restart.

The file holds one ``overrides`` block keyed by tenant ID; each tenant sets any subset of the
``limits`` keys and inherits the rest from the process's ``limits`` block, as in Loki.  This
module only parses and checks the file; the reloader that polls it every
``runtime_config.period`` keeps the last good :class:`RuntimeConfig` when a new version is bad.
"""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Mapping

import yaml

from lokistack.config import decode, loader, schema

_MAX_TENANT_LENGTH = 150
_TENANT_CHARS = re.compile(r"[A-Za-z0-9!\-_.*'()]+")


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """Effective limits per overridden tenant, plus the defaults every other tenant gets."""

    defaults: schema.Limits = dataclasses.field(default_factory=schema.Limits)
    overrides: Mapping[str, schema.Limits] = dataclasses.field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # A read-only view keeps the frozen promise for the mapping's contents too.
        object.__setattr__(self, "overrides", types.MappingProxyType(dict(self.overrides)))

    def limits_for(self, tenant: str) -> schema.Limits:
        """The limits that apply to ``tenant``."""
        return self.overrides.get(tenant, self.defaults)


def _tenant_id(name: object) -> str:
    # YAML reads an unquoted numeric tenant ID (12345) as an int; it is still a tenant name.
    if isinstance(name, bool) or not isinstance(name, str | int):
        raise decode.ConfigError(
            "overrides", f"tenant IDs must be strings, got {decode.describe(name)}"
        )
    tenant = str(name)
    key = f"overrides.{tenant}"
    if not tenant or tenant in {".", ".."}:
        raise decode.ConfigError(key, "not a valid tenant ID")
    if len(tenant) > _MAX_TENANT_LENGTH:
        raise decode.ConfigError(key, f"tenant ID is too long: max {_MAX_TENANT_LENGTH} characters")
    if not _TENANT_CHARS.fullmatch(tenant):
        raise decode.ConfigError(key, "tenant ID may only contain letters, digits and !-_.*'()")
    return tenant


def _decode(raw: object, defaults: schema.Limits) -> RuntimeConfig:
    if raw is None:
        return RuntimeConfig(defaults)
    if not isinstance(raw, Mapping):
        raise decode.ConfigError(
            "(top level)", f"expected a block of keys, got {decode.describe(raw)}"
        )
    for name in raw:
        if name != "overrides":
            raise decode.ConfigError(
                str(name), "unknown key (the runtime config holds only overrides)"
            )
    tenants = raw.get("overrides")
    if tenants is None:
        return RuntimeConfig(defaults)
    if not isinstance(tenants, Mapping):
        raise decode.ConfigError(
            "overrides", f"expected tenant IDs as keys, got {decode.describe(tenants)}"
        )
    overrides: dict[str, schema.Limits] = {}
    for name, changes in tenants.items():
        tenant = _tenant_id(name)
        if tenant in overrides:
            raise decode.ConfigError(f"overrides.{tenant}", "tenant is listed twice")
        limits = decode.decode_into(defaults, changes, f"overrides.{tenant}")
        loader.validate_limits(limits, f"overrides.{tenant}")
        overrides[tenant] = limits
    return RuntimeConfig(defaults, overrides)


def parse_runtime_config(
    text: str, defaults: schema.Limits | None = None, source: str = ""
) -> RuntimeConfig:
    """Parse runtime-config YAML; ``defaults`` is the process's ``limits`` block."""
    base = schema.Limits() if defaults is None else defaults
    try:
        return _decode(loader.read_yaml(text, source), base)
    except decode.ConfigError as err:
        raise err.with_source(err.source or source) from None


def load_runtime_config(path: str, defaults: schema.Limits | None = None) -> RuntimeConfig:
    """Read and parse the runtime-config file at ``path``."""
    return parse_runtime_config(loader.read_file(path), defaults, path)


def runtime_config_to_yaml(runtime: RuntimeConfig) -> str:
    """Render the overrides, each tenant with only the keys that differ from the defaults."""
    base = decode.encode(runtime.defaults)
    tenants: dict[str, object] = {}
    for tenant in sorted(runtime.overrides):
        limits = decode.encode(runtime.overrides[tenant])
        tenants[tenant] = {key: value for key, value in limits.items() if value != base[key]}
    return yaml.safe_dump(
        {"overrides": tenants}, sort_keys=False, default_flow_style=False, width=100
    )
