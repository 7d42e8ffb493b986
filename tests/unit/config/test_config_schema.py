"""Defaults match Loki (and DESIGN.md where it decides otherwise); docs cover every key."""

from __future__ import annotations

import dataclasses
import datetime
import pathlib

import pytest
from lokistack import config

REPO = pathlib.Path(__file__).resolve().parents[3]
MIB = 1024 * 1024


def get(cfg: object, dotted: str) -> object:
    for name in dotted.split("."):
        cfg = getattr(cfg, name)
    return cfg


def minutes(n: int) -> datetime.timedelta:
    return datetime.timedelta(minutes=n)


def hours(n: int) -> datetime.timedelta:
    return datetime.timedelta(hours=n)


DEFAULTS: list[tuple[str, object]] = [
    ("target", "all"),
    ("auth_enabled", False),
    ("server.http_listen_port", 3100),
    ("server.grpc_listen_port", 9095),
    ("server.grpc_server_max_recv_msg_size", 4 * MIB),
    ("server.log_level", "info"),
    ("server.log_format", "auto"),
    ("storage.type", "filesystem"),
    ("storage.s3.region", "us-east-1"),
    ("storage.s3.force_path_style", True),
    ("ring.kvstore.store", "memory"),
    ("ring.kvstore.kubernetes.lease_prefix", "lokistack-ring"),
    ("ring.kvstore.kubernetes.forget_after", minutes(2)),
    ("ring.replication_factor", 3),
    ("ring.heartbeat_period", datetime.timedelta(seconds=5)),
    ("ring.heartbeat_timeout", minutes(1)),
    ("ring.num_tokens", 128),
    ("ring.zone_awareness_enabled", False),
    ("ring.instance_id", ""),
    ("distributor.max_recv_msg_size", 100 * MIB),
    ("distributor.max_decompressed_size", 0),
    ("ingester.chunk_block_size", 262144),
    ("ingester.chunk_target_size", 1572864),
    ("ingester.chunk_encoding", "snappy"),
    ("ingester.chunk_idle_period", minutes(30)),
    ("ingester.max_chunk_age", hours(2)),
    ("ingester.chunk_retain_period", datetime.timedelta(0)),
    ("ingester.flush_check_period", datetime.timedelta(seconds=30)),
    ("ingester.concurrent_flushes", 32),
    ("ingester.flush_op_timeout", minutes(10)),
    ("ingester.flush_on_shutdown", True),
    ("ingester.index_seal_period", minutes(15)),
    ("ingester.wal.enabled", True),
    ("ingester.wal.checkpoint_duration", minutes(5)),
    ("ingester.wal.replay_memory_ceiling", 4 * 1024 * MIB),
    ("ingester.wal.fsync", "group"),
    ("limits.ingestion_rate_strategy", "global"),
    ("limits.ingestion_rate_mb", 4.0),
    ("limits.ingestion_burst_size_mb", 6.0),
    ("limits.max_line_size", 262144),
    ("limits.max_line_size_truncate", False),
    ("limits.max_label_names_per_series", 15),
    ("limits.max_label_name_length", 1024),
    ("limits.max_label_value_length", 2048),
    ("limits.reject_old_samples", True),
    ("limits.reject_old_samples_max_age", hours(168)),
    ("limits.creation_grace_period", minutes(10)),
    ("limits.allow_structured_metadata", True),
    ("limits.max_structured_metadata_size", 65536),
    ("limits.max_structured_metadata_entries_count", 128),
    ("limits.max_global_streams_per_user", 5000),
    ("limits.max_streams_per_user", 0),
    ("limits.per_stream_rate_limit", 3 * MIB),
    ("limits.per_stream_rate_limit_burst", 15 * MIB),
    ("limits.discover_log_levels", True),
    ("limits.max_entries_limit_per_query", 5000),
    ("limits.max_query_length", hours(721)),
    ("limits.max_query_lookback", datetime.timedelta(0)),
    ("limits.max_query_series", 500),
    ("limits.query_timeout", minutes(1)),
    ("limits.max_query_parallelism", 32),
    ("limits.split_queries_by_interval", minutes(30)),
    ("limits.max_concurrent_tail_requests", 10),
    ("limits.retention_period", datetime.timedelta(0)),
    ("querier.query_ingesters_within", hours(3)),
    ("querier.max_concurrent", 4),
    ("frontend.max_outstanding_per_tenant", 4096),
    ("frontend.max_retries", 5),
    ("compactor.compaction_interval", minutes(10)),
    ("compactor.retention_enabled", False),
    ("compactor.delete_delay", hours(2)),
    ("runtime_config.file", ""),
    ("runtime_config.period", datetime.timedelta(seconds=10)),
]


@pytest.mark.parametrize(("key", "expected"), DEFAULTS)
def test_default(key: str, expected: object) -> None:
    assert get(config.Config(), key) == expected


def test_discover_service_name_is_lokis_list() -> None:
    names = config.Config().limits.discover_service_name
    assert names[:3] == ("service", "app", "application")
    assert names[-1] == "k8s_job_name"
    assert len(names) == 13


def test_targets() -> None:
    assert config.TARGETS == (
        "all",
        "distributor",
        "ingester",
        "querier",
        "query-frontend",
        "compactor",
    )


def test_blocks_are_frozen() -> None:
    cfg = config.Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.server.http_listen_port = 1  # type: ignore[misc]


def test_defaults_ignore_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    assert config.Config().storage.s3.access_key_id == ""


def test_defaults_are_valid() -> None:
    config.validate(config.Config())


def test_keys_lists_leaves_in_schema_order() -> None:
    keys = list(config.keys(config.Config))
    assert keys[:3] == ["target", "auth_enabled", "server.http_listen_address"]
    assert "ingester.wal.fsync_period" in keys
    assert "ingester.wal" not in keys
    assert len(keys) == len(set(keys))


def test_docs_describe_every_key() -> None:
    docs = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [key for key in config.keys(config.Config) if f"`{key}`" not in docs]
    assert missing == []


def test_docs_show_every_default() -> None:
    """The docs table's default column is the rendered default of each key."""
    docs = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    flat: dict[str, object] = {}

    def walk(block: dict[str, object], path: str) -> None:
        for name, value in block.items():
            key = f"{path}.{name}" if path else name
            if isinstance(value, dict):
                walk(value, key)
            else:
                flat[key] = value

    walk(config.to_dict(config.Config()), "")
    wrong = []
    for key, value in flat.items():
        if isinstance(value, list):
            continue  # lists are described in prose
        row = next(line for line in docs.splitlines() if line.startswith(f"| `{key}` "))
        if shown(value) not in row:
            wrong.append((key, shown(value)))
    assert wrong == []


def shown(value: object) -> str:
    if value == "":
        return "`''`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def test_example_local_config() -> None:
    cfg = config.load(str(REPO / "examples" / "local.yaml"))
    assert cfg.target == "all"
    assert cfg.storage.type == "filesystem"
    assert cfg.storage.filesystem.directory.startswith("./data")
    assert cfg.ring.kvstore.store == "memory"
    assert cfg.ring.replication_factor == 1
    assert (cfg.server.http_listen_port, cfg.server.grpc_listen_port) == (3100, 9095)
