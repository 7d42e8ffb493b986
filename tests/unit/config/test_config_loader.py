"""Loading YAML and flags: strict keys and types, errors that name the key, exact round trips."""

from __future__ import annotations

import dataclasses
import datetime
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lokistack import config


def write(tmp_path: pathlib.Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def error_of(text: str) -> config.ConfigError:
    with pytest.raises(config.ConfigError) as info:
        config.parse(text)
    return info.value


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "server:\n", "limits: {}\n"])
def test_empty_means_defaults(text: str) -> None:
    assert config.parse(text) == config.Config()


def test_values_take_effect() -> None:
    cfg = config.parse(
        """
target: ingester
server: {http_listen_port: 8080, grpc_server_max_recv_msg_size: 100MiB}
ingester:
  chunk_encoding: zstd
  max_chunk_age: 1h30m
  wal: {fsync: always}
limits:
  ingestion_rate_mb: 8.5
  max_line_size: 1.5MB
  discover_service_name: [app, job]
querier:
  frontend_addresses: ["frontend-0:9095", "frontend-1:9095"]
"""
    )
    assert cfg.target == "ingester"
    assert cfg.server.http_listen_port == 8080
    assert cfg.server.grpc_server_max_recv_msg_size == 100 * 2**20
    assert cfg.ingester.chunk_encoding == "zstd"
    assert cfg.ingester.max_chunk_age == datetime.timedelta(minutes=90)
    assert cfg.ingester.wal.fsync == "always"
    assert cfg.limits.ingestion_rate_mb == 8.5
    assert cfg.limits.max_line_size == 1572864
    assert cfg.limits.discover_service_name == ("app", "job")
    assert cfg.querier.frontend_addresses == ("frontend-0:9095", "frontend-1:9095")
    assert cfg.ingester.chunk_idle_period == datetime.timedelta(minutes=30)  # untouched default


def test_quoted_scalars_are_accepted() -> None:
    cfg = config.parse('server: {http_listen_port: "3101"}\nauth_enabled: "true"\n')
    assert cfg.server.http_listen_port == 3101
    assert cfg.auth_enabled is True


def test_numeric_strings_stay_strings() -> None:
    assert config.parse("storage: {s3: {bucket: 2024}}").storage.s3.bucket == "2024"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "ingester:\n  chunk_encodng: gzip\n",
            "config error: ingester.chunk_encodng: unknown key (did you mean chunk_encoding?)",
        ),
        (
            "limits:\n  ingestion_rate_mb: fast\n",
            "config error: limits.ingestion_rate_mb: expected a number, got 'fast'",
        ),
        (
            "ring: {kvstore: {kubernetes: {lease_prefx: x}}}",
            "config error: ring.kvstore.kubernetes.lease_prefx: unknown key"
            " (did you mean lease_prefix?)",
        ),
        ("bogus: 1", "config error: bogus: unknown key"),
        (
            "limits_config: {}",
            "config error: limits_config: unknown key (Lokistack calls this limits)",
        ),
        (
            "server: {http_listen_port: abc}",
            "config error: server.http_listen_port: expected an integer, got 'abc'",
        ),
        (
            "server: {http_listen_port: 3.5}",
            "config error: server.http_listen_port: expected an integer, got 3.5",
        ),
        (
            "server: {http_listen_port: -1}",
            "config error: server.http_listen_port: must not be negative, got -1",
        ),
        ("auth_enabled: maybe", "config error: auth_enabled: expected true or false, got 'maybe'"),
        (
            "ingester: {max_chunk_age: 2}",
            "config error: ingester.max_chunk_age: expected a duration like 30s or 1h30m, got 2",
        ),
        (
            "ingester: {max_chunk_age: -5m}",
            "config error: ingester.max_chunk_age: expected a duration like 30s or 1h30m,"
            " got '-5m': durations cannot be negative",
        ),
        (
            "ingester: {chunk_block_size: big}",
            "config error: ingester.chunk_block_size: expected a size like 262144 or 256KB,"
            " got 'big': expected a whole number of bytes or a number with a unit (KB, MB, GB, TB)",
        ),
        (
            "target: everything",
            "config error: target: expected one of all, distributor, ingester, querier,"
            " query-frontend, compactor; got 'everything'",
        ),
        (
            "ingester: {chunk_encoding: snapy}",
            "config error: ingester.chunk_encoding: expected one of snappy, gzip, lz4, zstd, none;"
            " got 'snapy' (did you mean snappy?)",
        ),
        (
            "querier: {frontend_addresses: {a: b}}",
            "config error: querier.frontend_addresses: expected a list of strings, got a mapping",
        ),
        (
            "querier: {frontend_addresses: [[x]]}",
            "config error: querier.frontend_addresses[0]: expected a string, got a list",
        ),
        (
            "ring: {instance_zone: no}",
            "config error: ring.instance_zone: expected a string, got false"
            " (put the value in quotes)",
        ),
        ("server: 3", "config error: server: expected a block of keys, got 3"),
        ("- a\n- b\n", "config error: (top level): expected a block of keys, got a list"),
        (
            "limits: {ingestion_rate_mb: .nan}",
            "config error: limits.ingestion_rate_mb: expected a number, got nan",
        ),
        (
            "ingester: {wal: {flush_on_shutdown: true}}",
            "config error: ingester.wal.flush_on_shutdown: unknown key"
            " (Lokistack calls this ingester.flush_on_shutdown)",
        ),
    ],
)
def test_errors_name_the_key(text: str, message: str) -> None:
    assert str(error_of(text)) == message


def test_error_carries_key_reason_and_source(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "limits:\n  ingestion_rate_mb: fast\n")
    with pytest.raises(config.ConfigError) as info:
        config.load(path)
    err = info.value
    assert (err.key, err.source) == ("limits.ingestion_rate_mb", path)
    assert err.reason == "expected a number, got 'fast'"
    assert str(err).endswith(f"(in {path})")


def test_yaml_syntax_error_names_the_line() -> None:
    err = error_of("server:\n  http_listen_port: [3100\n")
    assert "invalid YAML" in str(err)
    assert "line 3" in str(err)


def test_duplicate_keys_are_refused() -> None:
    assert "duplicate key 'server' at line 3" in str(
        error_of("server: {}\nlimits: {}\nserver: {}\n")
    )


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("storage: {type: s3, s3: {bucket: b}}", "storage.s3.endpoint", "must be set"),
        ("storage: {type: s3, s3: {endpoint: 'minio:9000'}}", "storage.s3.bucket", "must be set"),
        (
            "storage: {type: s3, s3: {endpoint: 'http://minio:9000', bucket: b}}",
            "storage.s3.endpoint",
            "without a scheme",
        ),
        ("storage: {filesystem: {directory: ''}}", "storage.filesystem.directory", "must be set"),
        ("ring: {replication_factor: 0}", "ring.replication_factor", "greater than zero"),
        ("ring: {num_tokens: 0}", "ring.num_tokens", "greater than zero"),
        ("ring: {heartbeat_timeout: 5s}", "ring.heartbeat_timeout", "longer than"),
        (
            "ring: {kvstore: {store: kubernetes, kubernetes: {forget_after: 30s}}}",
            "ring.kvstore.kubernetes.forget_after",
            "at least the heartbeat_timeout",
        ),
        (
            "distributor: {ring: {heartbeat_period: 0s}}",
            "distributor.ring.heartbeat_period",
            "greater than zero",
        ),
        ("server: {http_listen_port: 70000}", "server.http_listen_port", "port number"),
        ("server: {grpc_listen_port: 3100}", "server.grpc_listen_port", "must differ"),
        ("ingester: {chunk_block_size: 0}", "ingester.chunk_block_size", "greater than zero"),
        ("ingester: {concurrent_flushes: 0}", "ingester.concurrent_flushes", "greater than zero"),
        ("ingester: {wal: {fsync_period: 0s}}", "ingester.wal.fsync_period", "greater than zero"),
        ("ingester: {wal: {segment_size: 64KB}}", "ingester.wal.segment_size", "at least 1MB"),
        ("limits: {max_query_parallelism: -1}", "limits.max_query_parallelism", "not be negative"),
        ("limits: {query_timeout: 0s}", "limits.query_timeout", "greater than zero"),
        ("frontend: {tail_proxy_url: 'q:3100'}", "frontend.tail_proxy_url", "http://host:port"),
        (
            "frontend: {tail_proxy_url: 'http://q:3100/loki'}",
            "frontend.tail_proxy_url",
            "http://host:port",
        ),
        (
            "querier: {frontend_addresses: ['a:9095'], frontend_dns: 'b:9095'}",
            "querier.frontend_dns",
            "not both",
        ),
        ("querier: {frontend_addresses: [frontend]}", "querier.frontend_addresses[0]", "host:port"),
        ("querier: {max_concurrent: 0}", "querier.max_concurrent", "greater than zero"),
        (
            "frontend: {max_outstanding_per_tenant: 0}",
            "frontend.max_outstanding_per_tenant",
            "zero",
        ),
        ("runtime_config: {period: 0s}", "runtime_config.period", "greater than zero"),
    ],
)
def test_cross_field_validation(text: str, key: str, reason: str) -> None:
    err = error_of(text)
    assert err.key == key
    assert reason in err.reason


def test_rules_apply_only_when_relevant() -> None:
    config.parse("ingester: {wal: {fsync: always, fsync_period: 0s}}")
    config.parse("ingester: {wal: {enabled: false, dir: ''}}")
    config.parse("storage: {type: s3, s3: {endpoint: 'minio:9000', bucket: logs}}")


def test_load_without_file_is_defaults() -> None:
    assert config.load(None) == config.Config()


def test_load_missing_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(config.ConfigError, match=r"cannot read .*missing\.yaml"):
        config.load(str(tmp_path / "missing.yaml"))


def test_overrides_win_over_file(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "target: ingester\nserver: {http_listen_port: 8080}\n")
    cfg = config.load(
        path, {"server.http_listen_port": "3101", "limits.discover_service_name": "a, b"}
    )
    assert cfg.target == "ingester"
    assert cfg.server.http_listen_port == 3101
    assert cfg.limits.discover_service_name == ("a", "b")


def test_overrides_can_repair_the_file(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "storage: {type: s3}\n")
    cfg = config.load(path, {"storage.s3.endpoint": "minio:9000", "storage.s3.bucket": "logs"})
    assert cfg.storage.s3.bucket == "logs"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("server.http_port", "1", "server.http_port: unknown key (did you mean http_listen_port?)"),
        ("auth_enabled", "perhaps", "auth_enabled: expected true or false, got 'perhaps'"),
        ("server", "x", "server: expected a block of keys, got 'x'"),
    ],
)
def test_override_errors(key: str, value: str, message: str) -> None:
    with pytest.raises(config.ConfigError) as info:
        config.load(None, {key: value})
    assert str(info.value) == f"config error: {message} (in command line)"


def test_to_yaml_renders_defaults_canonically() -> None:
    text = config.to_yaml(config.Config())
    assert "  chunk_block_size: 256KB\n" in text
    assert "  reject_old_samples_max_age: 168h\n" in text
    assert "  max_decompressed_size: 0B\n" in text
    assert text.startswith("target: all\nauth_enabled: false\nserver:\n")
    assert config.parse(text) == config.Config()


def test_to_dict_redacts_secrets_only_when_asked() -> None:
    s3 = dataclasses.replace(config.S3(), access_key_id="AKID", secret_access_key="hunter2")
    cfg = dataclasses.replace(config.Config(), storage=config.Storage(s3=s3))
    plain = config.to_dict(cfg)["storage"]
    redacted = config.to_dict(cfg, redact=True)["storage"]
    assert isinstance(plain, dict)
    assert isinstance(redacted, dict)
    assert plain["s3"]["secret_access_key"] == "hunter2"
    assert redacted["s3"]["secret_access_key"] == config.REDACTED
    assert redacted["s3"]["access_key_id"] == "AKID"
    assert "hunter2" not in config.to_yaml(cfg, redact=True)


def test_empty_secret_is_not_redacted() -> None:
    assert "secret_access_key: ''" in config.to_yaml(config.Config(), redact=True)


printable = st.text(st.characters(codec="utf-8"), max_size=20)
positive_durations = st.timedeltas(
    min_value=datetime.timedelta(microseconds=1), max_value=datetime.timedelta(days=3650)
)


@st.composite
def configs(draw: st.DrawFn) -> config.Config:
    base = config.Config()
    http_port = draw(st.integers(1, 65535))
    grpc_port = draw(st.integers(1, 65535).filter(lambda port: port != http_port))
    server = dataclasses.replace(
        base.server,
        http_listen_port=http_port,
        grpc_listen_port=grpc_port,
        log_level=draw(st.sampled_from(["debug", "info", "warn", "error"])),
    )
    s3 = dataclasses.replace(base.storage.s3, bucket=draw(printable), endpoint=draw(printable))
    ring = dataclasses.replace(base.ring, instance_zone=draw(printable))
    ingester = dataclasses.replace(
        base.ingester,
        chunk_encoding=draw(st.sampled_from(["snappy", "gzip", "lz4", "zstd", "none"])),
        max_chunk_age=draw(positive_durations),
        chunk_retain_period=draw(st.timedeltas(min_value=datetime.timedelta(0))),
    )
    limits = dataclasses.replace(
        base.limits,
        ingestion_rate_mb=draw(st.floats(0, 1e12, allow_nan=False, allow_infinity=False)),
        max_line_size=draw(st.integers(0, 2**50)),
        discover_service_name=tuple(draw(st.lists(printable.filter(bool), max_size=4))),
    )
    return dataclasses.replace(
        base,
        target=draw(st.sampled_from(config.TARGETS)),
        server=server,
        storage=dataclasses.replace(base.storage, s3=s3),
        ring=ring,
        ingester=ingester,
        limits=limits,
    )


@settings(max_examples=30, deadline=None)  # each example renders and parses a whole config
@given(configs())
def test_yaml_round_trip(cfg: config.Config) -> None:
    text = config.to_yaml(cfg)
    parsed = config.parse(text)
    assert parsed == cfg
    assert config.to_yaml(parsed) == text
