"""The distributor: a Deployment that validates pushes and fans them out to the ingesters.

Distributors register in their own ring (Leases ``<stack>-distributor-*``) so the global
ingestion rate limit is divided among the healthy ones; they hold no data and read no object
storage, so they get no credentials and an emptyDir for the data directory.
"""

from __future__ import annotations

from typing import Any

from lokistack_operator.manifests import pods
from lokistack_operator.manifests.common import Settings, Stack


def build(stack: Stack, settings: Settings, config_hash: str) -> list[dict[str, Any]]:
    return [pods.deployment(stack, settings, "distributor", config_hash)]
