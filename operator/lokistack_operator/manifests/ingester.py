"""The ingester: a StatefulSet whose pods keep their WAL, index head and ring tokens on a PVC.

- One ``wal`` PersistentVolumeClaim per pod (``wal-<stack>-ingester-<n>``, the size preset's
  volume size, ``spec.storageClassName``), mounted at the data directory.
- ``terminationGracePeriodSeconds: 300``: on SIGTERM an ingester flushes every chunk and leaves
  the ring (``ingester.flush_on_shutdown``), which must not be cut short.
- ``podManagementPolicy: Parallel``: scaling starts or stops pods together; rolling updates
  still replace one pod at a time, highest ordinal first, each waiting for ``/ready``.
- The ring instance ID is left empty in the config, so each pod uses its hostname, which a
  StatefulSet makes the stable pod name: a restarted pod takes its place in the ring back.
"""

from __future__ import annotations

from typing import Any, Final

from lokistack_operator import spec as spec_mod
from lokistack_operator.manifests import pods
from lokistack_operator.manifests.common import Settings, Stack

TERMINATION_GRACE_SECONDS: Final = 300


def build(stack: Stack, settings: Settings, config_hash: str) -> list[dict[str, Any]]:
    return [
        pods.statefulset(
            stack,
            settings,
            "ingester",
            config_hash,
            volume_size=spec_mod.SIZES[stack.spec.size].wal_volume_size,
            pod_management_policy="Parallel",
            termination_grace_seconds=TERMINATION_GRACE_SECONDS,
        )
    ]
