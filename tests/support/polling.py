"""Waiting for eventually-true conditions in tests, with a message that says what never happened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T | None],
    timeout: float,
    describe: Callable[[], str] | str,
    interval: float = 0.2,
) -> T:
    """Call ``probe`` until it returns a truthy value and return that value.

    On timeout, fail with ``describe`` (a string, or a callable giving the current state).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = describe() if callable(describe) else describe
            raise AssertionError(f"not true after {timeout:.0f}s: {detail}")
        time.sleep(interval)


async def eventually(
    probe: Callable[[], T | None], describe: Callable[[], str], within: float = 5.0
) -> T:
    """The asyncio form of :func:`wait_until`: polls without blocking the event loop, so the
    loop's own work (watch events, heartbeats) keeps flowing while a test waits for it."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {within}s: {describe()}")
        await asyncio.sleep(0.05)
