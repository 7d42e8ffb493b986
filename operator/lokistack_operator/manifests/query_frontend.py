"""The query frontend: a Deployment that splits queries and queues them per tenant.

Queriers connect to every frontend pod through the headless gRPC Service, which publishes pods
that are not ready yet; a frontend's ``/ready`` can therefore wait for a querier without the
deadlock the Loki Operator works around by probing another path.
"""

from __future__ import annotations

from typing import Any

from lokistack_operator.manifests import pods
from lokistack_operator.manifests.common import Settings, Stack


def build(stack: Stack, settings: Settings, config_hash: str) -> list[dict[str, Any]]:
    return [pods.deployment(stack, settings, "query-frontend", config_hash)]
