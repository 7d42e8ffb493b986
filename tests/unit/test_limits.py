"""Per-tenant overrides reload while running; the token bucket admits what Loki's would."""

from __future__ import annotations

import os
import pathlib

import prometheus_client
import pytest
from lokistack import config, limits


def _write(path: pathlib.Path, text: str) -> None:
    path.write_text(text)
    # Make the change visible even within the filesystem's timestamp granularity.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def _reload_gauge() -> float | None:
    return prometheus_client.REGISTRY.get_sample_value("loki_runtime_config_last_reload_successful")


def test_tenants_without_overrides_get_the_defaults() -> None:
    overrides = limits.Overrides(config.Limits(ingestion_rate_mb=7))
    assert overrides.limits_for("anyone").ingestion_rate_mb == 7
    assert overrides.reload() is False


def test_reload_applies_a_changed_file(tmp_path: pathlib.Path) -> None:
    runtime = tmp_path / "runtime.yaml"
    _write(runtime, "overrides:\n  team-a:\n    ingestion_rate_mb: 10\n")
    overrides = limits.Overrides(config.Limits(), str(runtime))
    assert overrides.limits_for("team-a").ingestion_rate_mb == 10
    assert overrides.limits_for("team-b").ingestion_rate_mb == 4

    assert overrides.reload() is False  # unchanged file: nothing to do
    _write(runtime, "overrides:\n  team-b:\n    max_line_size: 1KB\n")
    assert overrides.reload() is True
    assert overrides.limits_for("team-a").ingestion_rate_mb == 4
    assert overrides.limits_for("team-b").max_line_size == 1024
    assert _reload_gauge() == 1


def test_a_bad_file_keeps_the_last_good_overrides(tmp_path: pathlib.Path) -> None:
    runtime = tmp_path / "runtime.yaml"
    _write(runtime, "overrides:\n  team-a:\n    ingestion_rate_mb: 10\n")
    overrides = limits.Overrides(config.Limits(), str(runtime))

    _write(runtime, "overrides:\n  team-a:\n    ingestion_rate_megabytes: 1\n")
    assert overrides.reload() is False
    assert overrides.limits_for("team-a").ingestion_rate_mb == 10
    assert _reload_gauge() == 0

    runtime.unlink()
    assert overrides.reload() is False
    assert overrides.limits_for("team-a").ingestion_rate_mb == 10


def test_an_unreadable_file_at_start_is_an_error(tmp_path: pathlib.Path) -> None:
    runtime = tmp_path / "runtime.yaml"
    runtime.write_text("overrides: [1, 2]\n")
    with pytest.raises(config.ConfigError):
        limits.Overrides(config.Limits(), str(runtime))


def test_token_bucket_admits_up_to_the_burst_then_refills() -> None:
    bucket = limits.TokenBucket(rate=100, burst=300, updated=1000.0)
    assert bucket.allow(200, now=1000.0)
    assert bucket.allow(100, now=1000.0)
    assert not bucket.allow(1, now=1000.0)
    assert bucket.allow(50, now=1000.5)  # 0.5 s refilled 50 bytes
    assert not bucket.allow(1, now=1000.5)
    assert bucket.allow(300, now=1010.0)  # refill caps at the burst


def test_token_bucket_never_admits_more_than_the_burst() -> None:
    bucket = limits.TokenBucket(rate=1e9, burst=10, updated=5.0)
    assert not bucket.allow(11, now=100.0)
    assert bucket.allow(10, now=100.0)


def test_token_bucket_follows_new_limits() -> None:
    bucket = limits.TokenBucket(rate=10, burst=100, updated=0.5)
    bucket.set_limits(rate=10, burst=20)
    assert not bucket.allow(21, now=0.5)
    assert bucket.allow(20, now=0.5)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (9, "9 B"),
        (512, "512 B"),
        (1500, "1.5 kB"),
        (3 * 1024 * 1024, "3.1 MB"),
        (15 * 1024 * 1024, "16 MB"),
        (2_000_000_000, "2.0 GB"),
    ],
)
def test_humanize_bytes(size: int, text: str) -> None:
    assert limits.humanize_bytes(size) == text
