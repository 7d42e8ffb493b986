"""Per-tenant limits with hot-reloaded overrides, and the token bucket that enforces rates.

A tenant's limits are the config's ``limits`` block with the tenant's entry from the runtime
config file (``runtime_config.file``) laid over it. The file is re-read every
``runtime_config.period`` while the process runs, so changing a limit restarts nothing (the
operator keeps this file out of the config hash for the same reason). A file that fails to load
leaves the last good overrides in force, logs why, and sets
``loki_runtime_config_last_reload_successful`` to 0, as Loki does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import pathlib
import time

import prometheus_client

from lokistack import config

log = logging.getLogger(__name__)

RELOAD_SUCCESSFUL = prometheus_client.Gauge(
    "loki_runtime_config_last_reload_successful",
    "Whether the last runtime-config reload attempt succeeded (1) or not (0).",
)


class Overrides:
    """The limits of every tenant: defaults plus the runtime config file's overrides."""

    def __init__(
        self,
        defaults: config.Limits,
        runtime_file: str = "",
        period: datetime.timedelta = datetime.timedelta(seconds=10),
    ) -> None:
        self.defaults = defaults
        self.runtime_file = runtime_file
        self.period = period
        self._runtime = config.RuntimeConfig(defaults=defaults)
        self._file_stamp: tuple[float, int, int] | None = None
        if runtime_file:
            # The first load must succeed: a process should not start on limits it cannot read.
            self._runtime = config.load_runtime_config(runtime_file, defaults)
            self._file_stamp = _stamp(runtime_file)
        RELOAD_SUCCESSFUL.set(1)

    @classmethod
    def from_config(cls, cfg: config.Config) -> Overrides:
        return cls(cfg.limits, cfg.runtime_config.file, cfg.runtime_config.period)

    def limits_for(self, tenant: str) -> config.Limits:
        return self._runtime.limits_for(tenant)

    def reload(self) -> bool:
        """Re-read the runtime config file if it changed; returns whether new overrides apply."""
        if not self.runtime_file:
            return False
        try:
            stamp = _stamp(self.runtime_file)
            if stamp == self._file_stamp:
                return False
            runtime = config.load_runtime_config(self.runtime_file, self.defaults)
        except (OSError, config.ConfigError) as error:
            log.warning("runtime config reload failed; keeping the previous overrides: %s", error)
            RELOAD_SUCCESSFUL.set(0)
            return False
        self._runtime = runtime
        self._file_stamp = stamp
        RELOAD_SUCCESSFUL.set(1)
        log.info(
            "runtime config reloaded from %s (%d tenants)",
            self.runtime_file,
            len(runtime.overrides),
        )
        return True

    async def run(self) -> None:
        """Reload every period until cancelled."""
        while True:
            await asyncio.sleep(self.period.total_seconds())
            await asyncio.to_thread(self.reload)


def _stamp(path: str) -> tuple[float, int, int]:
    # mtime, size and inode: a ConfigMap update swaps a symlink, which changes the inode even
    # when the new file has the same size and a coarse mtime.
    status = pathlib.Path(path).stat()
    return (status.st_mtime, status.st_size, status.st_ino)


@dataclasses.dataclass
class TokenBucket:
    """A token bucket over bytes: ``rate`` bytes per second, holding at most ``burst``.

    ``allow(n)`` admits n bytes only when all n tokens are there now (Loki's AllowN), so a
    request larger than the burst is always refused. Rate and burst may change between calls
    (limits are hot-reloaded); the bucket keeps its level, capped at the new burst.
    """

    rate: float
    burst: float
    tokens: float = dataclasses.field(default=-1.0)
    updated: float = dataclasses.field(default=0.0)

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.burst
        if not self.updated:
            self.updated = time.monotonic()

    def allow(self, n: float, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        elapsed = max(0.0, now - self.updated)
        self.updated = now
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        if n > self.tokens:
            return False
        self.tokens -= n
        return True

    def set_limits(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = min(self.tokens, burst)


def humanize_bytes(size: float) -> str:
    """Bytes in SI units as Loki's messages print them (go-humanize: ``3.1 MB``, ``512 B``)."""
    if size < 10:
        return f"{int(size)} B"
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB")
    exponent = 0
    value = float(size)
    while value >= 1000 and exponent < len(units) - 1:
        value /= 1000
        exponent += 1
    if exponent == 0:
        return f"{int(value)} B"
    text = f"{value:.0f}" if value >= 10 else f"{value:.1f}"
    return f"{text} {units[exponent]}"
