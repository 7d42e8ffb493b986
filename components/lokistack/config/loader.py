"""Loading a config from YAML and flags, checking it as a whole, and rendering it back.

Precedence is defaults < YAML file < command-line overrides; per-tenant runtime overrides layer on
top of the resulting ``limits`` block later (see :mod:`lokistack.config.runtime`).  Validation
runs once, on the combined result, so a flag can repair a value the file got wrong.

:func:`to_yaml` is deterministic (schema order, canonical durations and sizes), so the operator
can hash its output, and ``parse(to_yaml(cfg)) == cfg`` for every valid config.
"""

from __future__ import annotations

import datetime
import pathlib
import urllib.parse
from collections.abc import Mapping
from typing import Any

import yaml

from lokistack.config import decode, schema

_MIN_SEGMENT_SIZE = 1024 * 1024
_MAX_PORT = 65535


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise decode.ConfigError("", f"duplicate key '{key}' at line {line}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(text: str, source: str = "") -> object:
    """Parse YAML text into plain values; a syntax error names the line and column."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except decode.ConfigError as err:
        raise err.with_source(source) from None
    except yaml.YAMLError as err:
        where = ""
        mark = getattr(err, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(err, "problem", None) or "malformed document"
        raise decode.ConfigError("", f"invalid YAML: {problem}{where}", source) from None


def read_file(path: str) -> str:
    """Read a config file, turning I/O failures into a config error that names the file."""
    try:
        return pathlib.Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise decode.ConfigError("", f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise decode.ConfigError("", f"cannot read {path}: not UTF-8 text") from None


def _decode(text: str, source: str) -> schema.Config:
    try:
        return decode.decode_into(schema.Config(), read_yaml(text, source))
    except decode.ConfigError as err:
        raise err.with_source(err.source or source) from None


def parse(text: str, source: str = "") -> schema.Config:
    """Build a validated config from YAML text.  Empty text means all defaults."""
    cfg = _decode(text, source)
    try:
        validate(cfg)
    except decode.ConfigError as err:
        raise err.with_source(source) from None
    return cfg


def apply_overrides(
    cfg: schema.Config, overrides: Mapping[str, str], source: str = "command line"
) -> schema.Config:
    """Set dotted keys (``server.http_listen_port`` to ``"3101"``) on top of ``cfg``."""
    for key, value in overrides.items():
        try:
            cfg = decode.decode_into(cfg, decode.nest(key, value))
        except decode.ConfigError as err:
            raise err.with_source(source) from None
    return cfg


def load(path: str | None = None, overrides: Mapping[str, str] | None = None) -> schema.Config:
    """The effective config of a process: defaults, then the YAML file, then flag overrides."""
    cfg = schema.Config() if not path else _decode(read_file(path), path)
    cfg = apply_overrides(cfg, overrides or {})
    try:
        validate(cfg)
    except decode.ConfigError as err:
        sources = [path] if path else []
        sources += ["command line"] if overrides else []
        raise err.with_source(" + ".join(sources)) from None
    return cfg


def to_dict(cfg: schema.Config, *, redact: bool = False) -> dict[str, object]:
    """The config as plain YAML values; ``redact`` hides secrets for printing and ``/config``."""
    return decode.encode(cfg, redact=redact)


def to_yaml(cfg: schema.Config, *, redact: bool = False) -> str:
    """Render the config as YAML that :func:`parse` reads back to an equal config."""
    return yaml.safe_dump(
        to_dict(cfg, redact=redact), sort_keys=False, default_flow_style=False, width=100
    )


def _require(ok: bool, key: str, reason: str) -> None:
    if not ok:
        raise decode.ConfigError(key, reason)


def _positive(value: datetime.timedelta | int, key: str) -> None:
    ok = value > datetime.timedelta(0) if isinstance(value, datetime.timedelta) else value > 0
    _require(ok, key, "must be greater than zero")


def _host_port(address: str, key: str) -> None:
    host, sep, port = address.rpartition(":")
    ok = bool(sep and host and port.isdigit() and int(port) <= _MAX_PORT)
    _require(ok, key, f"expected host:port, got '{address}'")


def validate(cfg: schema.Config) -> None:
    """Check rules that involve more than one key, or ranges the types cannot express."""
    _validate_server(cfg.server)
    _validate_storage(cfg.storage)
    _validate_ring(cfg.ring)
    _validate_distributor(cfg.distributor)
    _validate_ingester(cfg.ingester)
    validate_limits(cfg.limits, "limits")
    _validate_querier(cfg.querier)
    frontend = cfg.frontend
    _positive(frontend.max_outstanding_per_tenant, "frontend.max_outstanding_per_tenant")
    if frontend.results_cache.enabled:
        _positive(frontend.results_cache.ttl, "frontend.results_cache.ttl")
    if frontend.tail_proxy_url:
        parsed = urllib.parse.urlsplit(frontend.tail_proxy_url)
        _require(
            parsed.scheme in ("http", "https") and bool(parsed.netloc) and parsed.path in ("", "/"),
            "frontend.tail_proxy_url",
            f"expected http://host:port, got '{frontend.tail_proxy_url}'",
        )
    _require(bool(cfg.compactor.working_directory), "compactor.working_directory", "must be set")
    _positive(cfg.compactor.compaction_interval, "compactor.compaction_interval")
    _positive(cfg.runtime_config.period, "runtime_config.period")


def _validate_server(server: schema.Server) -> None:
    for name in ("http_listen_port", "grpc_listen_port"):
        port = getattr(server, name)
        _require(port <= _MAX_PORT, f"server.{name}", f"must be a port number, got {port}")
    same = server.http_listen_port == server.grpc_listen_port != 0
    _require(not same, "server.grpc_listen_port", "must differ from server.http_listen_port")
    _positive(server.grpc_server_max_recv_msg_size, "server.grpc_server_max_recv_msg_size")
    _positive(server.grpc_server_max_send_msg_size, "server.grpc_server_max_send_msg_size")
    _positive(server.grpc_server_keepalive_time, "server.grpc_server_keepalive_time")
    _positive(server.grpc_server_keepalive_timeout, "server.grpc_server_keepalive_timeout")


def _validate_storage(storage: schema.Storage) -> None:
    if storage.type == "filesystem":
        _require(bool(storage.filesystem.directory), "storage.filesystem.directory", "must be set")
        return
    s3 = storage.s3
    _require(bool(s3.endpoint), "storage.s3.endpoint", "must be set when storage.type is s3")
    _require(bool(s3.bucket), "storage.s3.bucket", "must be set when storage.type is s3")
    _require(
        "://" not in s3.endpoint,
        "storage.s3.endpoint",
        "write host[:port] without a scheme (set storage.s3.insecure: true for plain http)",
    )
    _positive(s3.request_timeout, "storage.s3.request_timeout")


def _validate_kvstore(kvstore: schema.KVStore, timeout: datetime.timedelta, path: str) -> None:
    if kvstore.store != "kubernetes":
        return
    kube = kvstore.kubernetes
    _require(bool(kube.lease_prefix), f"{path}.kubernetes.lease_prefix", "must be set")
    _require(
        kube.forget_after >= timeout,
        f"{path}.kubernetes.forget_after",
        "must be at least the heartbeat_timeout, or healthy members would be forgotten",
    )


def _validate_heartbeats(
    period: datetime.timedelta, timeout: datetime.timedelta, path: str
) -> None:
    _positive(period, f"{path}.heartbeat_period")
    _require(
        timeout > period,
        f"{path}.heartbeat_timeout",
        f"must be longer than {path}.heartbeat_period, or healthy members would look unhealthy",
    )


def _validate_ring(ring: schema.Ring) -> None:
    _positive(ring.replication_factor, "ring.replication_factor")
    _positive(ring.num_tokens, "ring.num_tokens")
    _validate_heartbeats(ring.heartbeat_period, ring.heartbeat_timeout, "ring")
    _validate_kvstore(ring.kvstore, ring.heartbeat_timeout, "ring.kvstore")


def _validate_distributor(distributor: schema.Distributor) -> None:
    ring = distributor.ring
    _validate_heartbeats(ring.heartbeat_period, ring.heartbeat_timeout, "distributor.ring")
    _validate_kvstore(ring.kvstore, ring.heartbeat_timeout, "distributor.ring.kvstore")
    _positive(distributor.max_recv_msg_size, "distributor.max_recv_msg_size")
    _positive(distributor.push_timeout, "distributor.push_timeout")


def _validate_ingester(ingester: schema.Ingester) -> None:
    for name in (
        "chunk_block_size",
        "chunk_target_size",
        "chunk_idle_period",
        "max_chunk_age",
        "flush_check_period",
        "concurrent_flushes",
        "flush_op_timeout",
        "index_seal_period",
    ):
        _positive(getattr(ingester, name), f"ingester.{name}")
    backoff = ingester.flush_op_backoff
    _positive(backoff.min_period, "ingester.flush_op_backoff.min_period")
    _positive(backoff.max_retries, "ingester.flush_op_backoff.max_retries")
    _require(
        backoff.max_period >= backoff.min_period,
        "ingester.flush_op_backoff.max_period",
        "must not be shorter than min_period",
    )
    _require(bool(ingester.index_dir), "ingester.index_dir", "must be set")
    wal = ingester.wal
    if not wal.enabled:
        return
    _require(bool(wal.dir), "ingester.wal.dir", "must be set when the WAL is enabled")
    _positive(wal.checkpoint_duration, "ingester.wal.checkpoint_duration")
    _positive(wal.replay_memory_ceiling, "ingester.wal.replay_memory_ceiling")
    if wal.fsync == "group":
        _positive(wal.fsync_period, "ingester.wal.fsync_period")
    _require(
        wal.segment_size >= _MIN_SEGMENT_SIZE, "ingester.wal.segment_size", "must be at least 1MB"
    )


def validate_limits(limits: schema.Limits, path: str) -> None:
    """Checks for one set of limits; ``path`` is ``limits`` or ``overrides.<tenant>``."""
    _positive(limits.query_timeout, f"{path}.query_timeout")
    # max_query_parallelism may be 0, as in Loki: the frontend then refuses the tenant's
    # queries with a 429 (decoding already refuses negative numbers).
    _require(
        all(limits.discover_service_name),
        f"{path}.discover_service_name",
        "label names must not be empty",
    )


def _validate_querier(querier: schema.Querier) -> None:
    _positive(querier.max_concurrent, "querier.max_concurrent")
    _require(
        not (querier.frontend_addresses and querier.frontend_dns),
        "querier.frontend_dns",
        "set either querier.frontend_addresses or querier.frontend_dns, not both",
    )
    for index, address in enumerate(querier.frontend_addresses):
        _host_port(address, f"querier.frontend_addresses[{index}]")
    if querier.frontend_dns:
        _host_port(querier.frontend_dns, "querier.frontend_dns")
    _positive(querier.frontend_dns_refresh_period, "querier.frontend_dns_refresh_period")
    _positive(querier.tail_max_duration, "querier.tail_max_duration")
