"""The workload's configuration: ``config.yaml`` and ``runtime-config.yaml`` for one stack.

Both are rendered from :mod:`lokistack.config`'s dataclasses, so they are valid by
construction and use the workload's canonical, deterministic YAML.

- ``<stack>-config`` holds ``config.yaml``: object storage from the storage Secret (credentials
  come from the ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` environment variables, never
  the file), rings in Kubernetes Leases named after the stack, the replication factor, the
  global limits (size preset under ``limits.global``) and paths on the pods' volumes.  Its
  SHA-256 is the config hash that rolls every pod when it changes.
- ``<stack>-runtime-config`` holds ``runtime-config.yaml``: one override per tenant of
  ``limits.tenants``.  The workload re-reads it every ``runtime_config.period``, so it is kept
  out of the config hash: changing a tenant limit restarts nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable
from typing import Any, Final, Literal

from lokistack import config

from lokistack_operator import spec as spec_mod
from lokistack_operator.manifests import common
from lokistack_operator.manifests.common import Settings, Stack

CONFIG_DIR: Final = "/etc/lokistack/config"
RUNTIME_CONFIG_DIR: Final = "/etc/lokistack/runtime"
CONFIG_KEY: Final = "config.yaml"
RUNTIME_CONFIG_KEY: Final = "runtime-config.yaml"
CONFIG_FILE: Final = f"{CONFIG_DIR}/{CONFIG_KEY}"
RUNTIME_CONFIG_FILE: Final = f"{RUNTIME_CONFIG_DIR}/{RUNTIME_CONFIG_KEY}"
DATA_DIR: Final = "/var/lokistack"  # a PVC on ingesters and the compactor, else an emptyDir

_MIB: Final = 1024 * 1024
_MIN_REPLAY_CEILING: Final = 512 * _MIB
_GRPC_MESSAGE_SIZE: Final = 100 * _MIB

# limits.<block>.<field> -> (config.Limits key, conversion); MB-valued fields become bytes.
_LIMIT_KEYS: Final[dict[tuple[str, str], tuple[str, Callable[[Any], Any]]]] = {
    ("ingestion", "ingestion_rate"): ("ingestion_rate_mb", float),
    ("ingestion", "ingestion_burst_size"): ("ingestion_burst_size_mb", float),
    ("ingestion", "max_label_name_length"): ("max_label_name_length", int),
    ("ingestion", "max_label_value_length"): ("max_label_value_length", int),
    ("ingestion", "max_label_names_per_series"): ("max_label_names_per_series", int),
    ("ingestion", "max_global_streams_per_tenant"): ("max_global_streams_per_user", int),
    ("ingestion", "max_line_size"): ("max_line_size", int),
    ("ingestion", "per_stream_rate_limit"): ("per_stream_rate_limit", lambda mb: mb * _MIB),
    ("ingestion", "per_stream_rate_limit_burst"): (
        "per_stream_rate_limit_burst",
        lambda mb: mb * _MIB,
    ),
    ("queries", "max_entries_limit_per_query"): ("max_entries_limit_per_query", int),
    ("queries", "max_query_series"): ("max_query_series", int),
    ("queries", "query_timeout"): ("query_timeout", config.parse_duration),
    # queries.max_chunks_per_query has no workload setting yet: accepted, not rendered.
}


@dataclasses.dataclass(frozen=True)
class RenderedConfig:
    """The two ConfigMaps of a stack and what the pod templates need from them."""

    config: config.Config
    config_yaml: str
    runtime_config_yaml: str
    config_hash: str  # SHA-256 of config.yaml only
    config_map: dict[str, Any]
    runtime_config_map: dict[str, Any]


def config_limits(base: config.Limits, limits: spec_mod.LimitsTemplate) -> config.Limits:
    """``base`` with every limit that ``limits`` sets."""
    changes: dict[str, Any] = {}
    for (block, name), (key, convert) in _LIMIT_KEYS.items():
        value = getattr(getattr(limits, block), name)
        if value is not None:
            changes[key] = convert(value)
    return dataclasses.replace(base, **changes)


def _memory_for_replay(stack: Stack) -> int:
    resources = spec_mod.effective_resources(stack.spec, "ingester")
    memory = resources.get("limits", {}).get("memory") or resources.get("requests", {}).get(
        "memory"
    )
    if memory is None:
        return _MIN_REPLAY_CEILING
    half = math.ceil(spec_mod.parse_quantity(memory) / 2)
    return max(half, _MIN_REPLAY_CEILING)


def _querier_concurrency(stack: Stack) -> int:
    cpu = spec_mod.effective_resources(stack.spec, "querier").get("requests", {}).get("cpu")
    if cpu is None:
        return config.Querier().max_concurrent
    return max(1, math.ceil(spec_mod.parse_quantity(cpu)))


def _kvstore(stack: Stack, ring: Literal["ring", "distributor"]) -> config.KVStore:
    return config.KVStore(
        store="kubernetes",
        kubernetes=config.KubernetesKV(
            namespace=stack.namespace, lease_prefix=common.lease_prefix(stack, ring)
        ),
    )


def build_config(stack: Stack, settings: Settings) -> config.Config:
    """The one ``config.yaml`` every component of the stack reads (``--target`` picks its part)."""
    storage = stack.storage
    frontend = common.service_address(
        stack, settings, common.grpc_service_name(stack, "query-frontend"), common.GRPC_PORT
    )
    # Clients query the frontend's Service; it relays their live tails to the queriers'.
    querier_http = common.service_address(
        stack, settings, common.http_service_name(stack, "querier"), common.HTTP_PORT
    )
    cfg = config.Config(
        auth_enabled=True,  # tenants come from X-Scope-OrgID, so per-tenant limits mean something
        server=config.Server(
            http_listen_port=common.HTTP_PORT,
            grpc_listen_port=common.GRPC_PORT,
            grpc_server_max_recv_msg_size=_GRPC_MESSAGE_SIZE,
            grpc_server_max_send_msg_size=_GRPC_MESSAGE_SIZE,
            log_format="json",
        ),
        storage=config.Storage(
            type="s3",
            s3=config.S3(
                endpoint=storage.endpoint,
                bucket=storage.bucket,
                region=storage.region,
                insecure=storage.insecure,
                force_path_style=storage.forcepathstyle,
            ),
        ),
        ring=config.Ring(
            kvstore=_kvstore(stack, "ring"),
            replication_factor=spec_mod.effective_replication_factor(stack.spec),
        ),
        distributor=config.Distributor(
            ring=config.DistributorRing(kvstore=_kvstore(stack, "distributor"))
        ),
        ingester=config.Ingester(
            index_dir=f"{DATA_DIR}/index",
            flush_on_shutdown=True,
            wal=config.Wal(dir=f"{DATA_DIR}/wal", replay_memory_ceiling=_memory_for_replay(stack)),
        ),
        limits=config_limits(config.Limits(), spec_mod.effective_limits(stack.spec)),
        querier=config.Querier(
            max_concurrent=_querier_concurrency(stack),
            frontend_dns=frontend,
            index_cache_dir=f"{DATA_DIR}/index-cache",
        ),
        frontend=config.Frontend(tail_proxy_url=f"http://{querier_http}"),
        compactor=config.Compactor(working_directory=f"{DATA_DIR}/compactor"),
    )
    config.validate(cfg)
    return cfg


def build_runtime_config(stack: Stack, cfg: config.Config) -> config.RuntimeConfig:
    """Per-tenant overrides: each tenant's limits over the global ones."""
    overrides = {
        tenant: config_limits(cfg.limits, limits)
        for tenant, limits in sorted(stack.spec.limits.tenants.items())
    }
    for tenant, limits in overrides.items():
        config.validate_limits(limits, f"overrides.{tenant}")
    return config.RuntimeConfig(defaults=cfg.limits, overrides=overrides)


def _header(stack: Stack, what: str) -> str:
    return (
        f"# {what} of LokiStack {stack.namespace}/{stack.name}, rendered by "
        f"{common.MANAGED_BY}; edits are overwritten.\n"
    )


def config_hash(config_yaml: str) -> str:
    return hashlib.sha256(config_yaml.encode("utf-8")).hexdigest()


def build_config_maps(stack: Stack, settings: Settings) -> RenderedConfig:
    cfg = build_config(stack, settings)
    config_yaml = _header(stack, "Configuration") + config.to_yaml(cfg)
    runtime = build_runtime_config(stack, cfg)
    runtime_yaml = _header(stack, "Per-tenant limits") + config.runtime_config_to_yaml(runtime)
    return RenderedConfig(
        config=cfg,
        config_yaml=config_yaml,
        runtime_config_yaml=runtime_yaml,
        config_hash=config_hash(config_yaml),
        config_map=common.manifest(
            "v1", "ConfigMap", stack, common.config_map_name(stack), data={CONFIG_KEY: config_yaml}
        ),
        runtime_config_map=common.manifest(
            "v1",
            "ConfigMap",
            stack,
            common.runtime_config_map_name(stack),
            data={RUNTIME_CONFIG_KEY: runtime_yaml},
        ),
    )
