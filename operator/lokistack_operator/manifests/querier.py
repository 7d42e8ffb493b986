"""The querier: a Deployment whose workers pull sub-queries from the query frontends.

Queriers find the frontends through the headless ``<stack>-query-frontend-grpc`` Service
(``querier.frontend_dns``), ask the ingesters for recent data and read older data from object
storage, so they get the storage credentials; downloaded index files are cached in an emptyDir.
"""

from __future__ import annotations

from typing import Any

from lokistack_operator.manifests import pods
from lokistack_operator.manifests.common import Settings, Stack


def build(stack: Stack, settings: Settings, config_hash: str) -> list[dict[str, Any]]:
    return [pods.deployment(stack, settings, "querier", config_hash)]
