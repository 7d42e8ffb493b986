"""The tenant ingestion rate limit, with Loki's ``local`` and ``global`` strategies.

``local``: each distributor admits ``ingestion_rate_mb`` per second by itself. ``global`` (the
default): the tenant's rate is shared by the healthy distributors in the distributor ring, so
each admits ``rate / N``; the burst is not divided. Limits are re-read on every request (they
are hot-reloaded), and a request is admitted only if all its bytes fit now: all or nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from lokistack import config, limits

MIB = 1024 * 1024


class IngestionRateLimiter:
    def __init__(
        self, overrides: limits.Overrides, healthy_distributors: Callable[[], int]
    ) -> None:
        self.overrides = overrides
        self.healthy_distributors = healthy_distributors
        self._buckets: dict[str, limits.TokenBucket] = {}

    def limit(self, tenant_limits: config.Limits) -> float:
        """This distributor's share of the tenant's rate, in bytes per second."""
        rate = tenant_limits.ingestion_rate_mb * MIB
        if tenant_limits.ingestion_rate_strategy == "global":
            distributors = self.healthy_distributors()
            if distributors > 0:
                rate /= distributors
        return rate

    def allow(self, tenant: str, nbytes: int, now: float | None = None) -> bool:
        tenant_limits = self.overrides.limits_for(tenant)
        rate = self.limit(tenant_limits)
        burst = tenant_limits.ingestion_burst_size_mb * MIB
        bucket = self._buckets.get(tenant)
        if bucket is None:
            bucket = limits.TokenBucket(rate, burst)
            self._buckets[tenant] = bucket
        else:
            bucket.set_limits(rate, burst)
        return bucket.allow(nbytes, now)


def rate_limited_message(tenant: str, limit: float, lines: int, nbytes: int) -> str:
    return (
        f"ingestion rate limit exceeded for user {tenant} (limit: {int(limit)} bytes/sec) while "
        f"attempting to ingest '{lines}' lines totaling '{nbytes}' bytes, reduce log volume or "
        "contact your Loki administrator to see if the limit can be increased"
    )
