"""Whole write paths as separate processes: a distributor and N ingesters on the Lease ring,
optionally with a querier reading the same ring and storage."""

from __future__ import annotations

import concurrent.futures
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
    querier: lokistack_process.LokistackProcess | None = None


@contextlib.contextmanager
def replicated_write_path(
    workdir: pathlib.Path,
    kubeconfig: pathlib.Path,
    namespace: str,
    settings: Mapping[str, Any],
    ingesters: int = 3,
    *,
    querier: bool = False,
) -> Iterator[WritePath]:
    """Start ``ingesters`` ingesters, then a distributor, all sharing rings stored as Leases in
    ``namespace``; yields once the distributor sees every ingester ACTIVE, stops them all after.
    ``settings`` (config keys) apply to every process.

    With ``querier``, a ``target: querier`` process with the same settings (so the same ring
    and storage) starts last, and the stack is yielded once it, too, sees every ingester ACTIVE.
    """
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
        querier=(
            lokistack_process.LokistackProcess(
                "querier-0",
                workdir / "querier-0",
                lokistack_process.deep_merge(common, {"target": "querier"}),
                env=env,
            )
            if querier
            else None
        ),
    )
    ring_clients = [stack.distributor]
    if stack.querier is not None:
        ring_clients.append(stack.querier)
    everyone = [*stack.ingesters, *ring_clients]
    component_logs.register("stack", {p.name: p.log_path for p in everyone})
    try:
        # Each start waits for /ready; starting side by side saves seconds per process.
        with concurrent.futures.ThreadPoolExecutor(len(everyone)) as pool:
            list(pool.map(lokistack_process.LokistackProcess.start, stack.ingesters))
            list(pool.map(lokistack_process.LokistackProcess.start, ring_clients))
        for client in ring_clients:

            def sees_all(client: lokistack_process.LokistackProcess = client) -> bool:
                active = client.metric("loki_ring_members", name="ingester", state="ACTIVE")
                return active == ingesters

            polling.wait_until(
                sees_all,
                timeout=30,
                describe=f"{client.name} never saw {ingesters} ACTIVE ingesters",
            )
        yield stack
    finally:
        for process in (*ring_clients, *stack.ingesters):
            process.stop()
