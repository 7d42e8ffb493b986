"""The tenant ingestion rate limit with Loki's local and global strategies."""

from __future__ import annotations

from lokistack import config, limits
from lokistack.distributor import rate

MIB = 1024 * 1024


def _limiter(distributors: int, **changes: object) -> rate.IngestionRateLimiter:
    overrides = limits.Overrides(config.Limits(**changes))  # type: ignore[arg-type]
    return rate.IngestionRateLimiter(overrides, lambda: distributors)


def test_global_strategy_divides_the_rate_but_not_the_burst() -> None:
    limiter = _limiter(4, ingestion_rate_mb=4, ingestion_burst_size_mb=6)
    assert limiter.limit(limiter.overrides.limits_for("t")) == 1 * MIB
    assert limiter.allow("t", 6 * MIB, now=100.0)  # the whole burst is there at first
    assert not limiter.allow("t", 1, now=100.0)
    assert limiter.allow("t", MIB, now=101.0)  # refills at rate / 4
    assert not limiter.allow("t", 1024, now=101.0)


def test_global_strategy_with_no_healthy_distributor_uses_the_whole_rate() -> None:
    limiter = _limiter(0, ingestion_rate_mb=4)
    assert limiter.limit(limiter.overrides.limits_for("t")) == 4 * MIB


def test_local_strategy_ignores_the_distributor_count() -> None:
    limiter = _limiter(4, ingestion_rate_strategy="local", ingestion_rate_mb=4)
    assert limiter.limit(limiter.overrides.limits_for("t")) == 4 * MIB


def test_tenants_have_separate_buckets() -> None:
    limiter = _limiter(1, ingestion_rate_mb=1, ingestion_burst_size_mb=1)
    assert limiter.allow("a", MIB, now=5.0)
    assert not limiter.allow("a", 1, now=5.0)
    assert limiter.allow("b", MIB, now=5.0)


def test_message_is_lokis() -> None:
    assert rate.rate_limited_message("t", 1048576.0, 3, 300) == (
        "ingestion rate limit exceeded for user t (limit: 1048576 bytes/sec) while attempting "
        "to ingest '3' lines totaling '300' bytes, reduce log volume or contact your Loki "
        "administrator to see if the limit can be increased"
    )
