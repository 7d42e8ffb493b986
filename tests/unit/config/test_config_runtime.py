"""Runtime config: per-tenant subsets of ``limits`` layered on the process's limits block."""

from __future__ import annotations

import dataclasses
import datetime
import pathlib

import pytest
from lokistack import config


def test_empty_file_has_no_overrides() -> None:
    runtime = config.parse_runtime_config("")
    assert runtime.overrides == {}
    assert runtime.limits_for("anyone") == config.Limits()


def test_tenant_inherits_unset_limits_from_the_base_block() -> None:
    base = dataclasses.replace(config.Limits(), max_query_series=1000, ingestion_rate_mb=2)
    runtime = config.parse_runtime_config(
        """
overrides:
  team-a:
    ingestion_rate_mb: 10
    retention_period: 744h
  team-b: {}
""",
        base,
    )
    team_a = runtime.limits_for("team-a")
    assert team_a.ingestion_rate_mb == 10
    assert team_a.retention_period == datetime.timedelta(hours=744)
    assert team_a.max_query_series == 1000  # from the base block, not the schema default
    assert runtime.limits_for("team-b") == base
    assert runtime.limits_for("other") is base


def test_numeric_tenant_ids_are_strings() -> None:
    runtime = config.parse_runtime_config("overrides:\n  12345: {max_query_series: 7}\n")
    assert runtime.limits_for("12345").max_query_series == 7


def test_zero_query_parallelism_is_accepted() -> None:
    """Loki's way to turn a tenant's querying off; the frontend answers its queries with 429."""
    runtime = config.parse_runtime_config("overrides:\n  t1: {max_query_parallelism: 0}\n")
    assert runtime.limits_for("t1").max_query_parallelism == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "overrides:\n  t1:\n    ingestion_rate: 1\n",
            "config error: overrides.t1.ingestion_rate: unknown key"
            " (did you mean ingestion_rate_mb?)",
        ),
        (
            "overrides:\n  t1:\n    max_line_size: huge\n",
            "config error: overrides.t1.max_line_size: expected a size like 262144 or 256KB,"
            " got 'huge': expected a whole number of bytes or a number with a unit"
            " (KB, MB, GB, TB)",
        ),
        (
            "overrides:\n  t1:\n    max_query_parallelism: -1\n",
            "config error: overrides.t1.max_query_parallelism: must not be negative, got -1",
        ),
        (
            "overrides:\n  t1: 5\n",
            "config error: overrides.t1: expected a block of keys, got 5",
        ),
        (
            "overrides:\n  'a/b': {}\n",
            "config error: overrides.a/b: tenant ID may only contain letters, digits and !-_.*'()",
        ),
        ("overrides:\n  '..': {}\n", "config error: overrides...: not a valid tenant ID"),
        (
            "overrides:\n  1: {}\n  '1': {}\n",
            "config error: overrides.1: tenant is listed twice",
        ),
        ("overrides: [a]\n", "config error: overrides: expected tenant IDs as keys, got a list"),
        (
            "configs: {}\n",
            "config error: configs: unknown key (the runtime config holds only overrides)",
        ),
        ("[1]\n", "config error: (top level): expected a block of keys, got a list"),
    ],
)
def test_errors_name_the_tenant_and_key(text: str, message: str) -> None:
    with pytest.raises(config.ConfigError) as info:
        config.parse_runtime_config(text)
    assert str(info.value) == message


def test_tenant_id_length_limit() -> None:
    with pytest.raises(config.ConfigError, match="too long"):
        config.parse_runtime_config(f"overrides:\n  {'a' * 151}: {{}}\n")


def test_load_from_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "runtime.yaml"
    path.write_text("overrides:\n  t1: {max_streams_per_user: 9}\n", encoding="utf-8")
    runtime = config.load_runtime_config(str(path))
    assert runtime.limits_for("t1").max_streams_per_user == 9


def test_load_errors_name_the_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "runtime.yaml"
    path.write_text("overrides:\n  t1: {bogus: 1}\n", encoding="utf-8")
    with pytest.raises(config.ConfigError) as info:
        config.load_runtime_config(str(path))
    assert info.value.key == "overrides.t1.bogus"
    assert info.value.source == str(path)
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load_runtime_config(str(tmp_path / "missing.yaml"))


def test_overrides_are_read_only() -> None:
    runtime = config.parse_runtime_config("overrides:\n  t1: {}\n")
    with pytest.raises(TypeError):
        runtime.overrides["t2"] = config.Limits()  # type: ignore[index]


def test_render_lists_only_changed_keys_and_round_trips() -> None:
    base = dataclasses.replace(config.Limits(), max_query_series=1000)
    runtime = config.parse_runtime_config(
        "overrides:\n  b: {max_line_size: 1MB}\n  a: {reject_old_samples: false}\n  c: {}\n", base
    )
    text = config.runtime_config_to_yaml(runtime)
    assert text == (
        "overrides:\n  a:\n    reject_old_samples: false\n  b:\n    max_line_size: 1MB\n  c: {}\n"
    )
    assert config.parse_runtime_config(text, base) == runtime
