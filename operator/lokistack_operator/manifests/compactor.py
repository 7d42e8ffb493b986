"""The compactor: a one-replica StatefulSet that merges index files and applies retention.

Exactly one compactor may run per stack (two would merge the same files), so the size preset
and the template cannot change its replica count, and it has no PodDisruptionBudget.  Its
``data`` PersistentVolumeClaim is scratch space for downloading and merging index files.
"""

from __future__ import annotations

from typing import Any

from lokistack_operator import spec as spec_mod
from lokistack_operator.manifests import pods
from lokistack_operator.manifests.common import Settings, Stack


def build(stack: Stack, settings: Settings, config_hash: str) -> list[dict[str, Any]]:
    return [
        pods.statefulset(
            stack,
            settings,
            "compactor",
            config_hash,
            volume_size=spec_mod.SIZES[stack.spec.size].compactor_volume_size,
            pod_management_policy="OrderedReady",
            termination_grace_seconds=30,
        )
    ]
