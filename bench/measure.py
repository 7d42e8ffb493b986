"""Timing helpers shared by the benchmarks: best-of-N wall time and a printable result."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Measurement:
    name: str
    seconds: float
    items: int
    item_unit: str
    nbytes: int

    def __str__(self) -> str:
        rate = self.items / self.seconds
        mbps = self.nbytes / self.seconds / 1e6
        return (
            f"{self.name:<40} {rate / 1e6:8.2f} M {self.item_unit}/s "
            f"{mbps:9.1f} MB/s  ({self.seconds * 1e3:.1f} ms)"
        )


def best_of(repeats: int, work: Callable[[], object]) -> float:
    """The fastest of ``repeats`` runs of ``work``, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


@dataclasses.dataclass(frozen=True)
class Reading:
    """A measured quantity that is not a rate, such as bytes of memory per stream."""

    name: str
    value: float
    unit: str

    def __str__(self) -> str:
        return f"{self.name:<40} {self.value:12,.0f} {self.unit}"
