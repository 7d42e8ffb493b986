"""Whole write paths as separate processes: a distributor and N ingesters on the Lease ring."""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
from collections.abc import Iterator, Mapping
from typing import Any

from tests.support import component_logs, lokistack_process, polling


@dataclasses.dataclass(frozen=True)
class WritePath:
    distributor: lokistack_process.LokistackProcess
    ingesters: list[lokistack_process.LokistackProcess]


@contextlib.contextmanager
def replicated_write_path(
    workdir: pathlib.Path,
    kubeconfig: pathlib.Path,
    namespace: str,
    settings: Mapping[str, Any],
    ingesters: int = 3,
) -> Iterator[WritePath]:
    """Start ``ingesters`` ingesters, then a distributor, all sharing rings stored as Leases in
    ``namespace``; yields once the distributor sees every ingester ACTIVE, stops them all after.
    ``settings`` (config keys) apply to every process."""
    kvstore = {"store": "kubernetes", "kubernetes": {"namespace": namespace}}
    common = lokistack_process.deep_merge(
        {
            "ring": {"kvstore": kvstore, "heartbeat_period": "1s"},
            "distributor": {"ring": {"kvstore": kvstore, "heartbeat_period": "1s"}},
        },
        settings,
    )
    env = {"KUBECONFIG": str(kubeconfig)}
    stack = WritePath(
        distributor=lokistack_process.LokistackProcess(
            "distributor-0",
            workdir / "distributor-0",
            lokistack_process.deep_merge(common, {"target": "distributor"}),
            env=env,
        ),
        ingesters=[
            lokistack_process.LokistackProcess(
                f"ingester-{i}",
                workdir / f"ingester-{i}",
                lokistack_process.deep_merge(common, {"target": "ingester"}),
                env=env,
            )
            for i in range(ingesters)
        ],
    )
    component_logs.register(
        "stack", {p.name: p.log_path for p in (stack.distributor, *stack.ingesters)}
    )
    try:
        for ingester in stack.ingesters:
            ingester.start()
        stack.distributor.start()
        polling.wait_until(
            lambda: (
                stack.distributor.metric("loki_ring_members", name="ingester", state="ACTIVE")
                == ingesters
            ),
            timeout=30,
            describe=f"the distributor never saw {ingesters} ACTIVE ingesters",
        )
        yield stack
    finally:
        for process in (stack.distributor, *stack.ingesters):
            process.stop()
