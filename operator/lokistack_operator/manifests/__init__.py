"""Pure manifest builders: one LokiStack in, the list of Kubernetes objects it needs out.

:func:`build_all` does no I/O and returns the same objects, in the same order, for the same
input.  Every object is apply-ready for server-side apply: ``apiVersion``, ``kind``, and
``metadata`` with name, namespace, the standard labels and the LokiStack as controlling owner.

Order: ServiceAccount, Role, RoleBinding, the two ConfigMaps, Services (http and grpc per
component), then distributor, ingester, querier, query-frontend and compactor workloads, then
PodDisruptionBudgets, so that whatever a pod needs exists before the pod is created.
"""

from __future__ import annotations

from typing import Any

from lokistack_operator.manifests import (
    compactor,
    config,
    distributor,
    ingester,
    pdb,
    querier,
    query_frontend,
    rbac,
    services,
)
from lokistack_operator.manifests.common import Settings, Stack
from lokistack_operator.manifests.config import RenderedConfig, build_config_maps

__all__ = ["RenderedConfig", "Settings", "Stack", "build_all", "build_config_maps"]


def build_all(stack: Stack, settings: Settings) -> list[dict[str, Any]]:
    """Every object of ``stack``, in apply order."""
    rendered = config.build_config_maps(stack, settings)
    objects = rbac.build(stack)
    objects += [rendered.config_map, rendered.runtime_config_map]
    objects += services.build(stack)
    for module in (distributor, ingester, querier, query_frontend, compactor):
        objects += module.build(stack, settings, rendered.config_hash)
    objects += pdb.build(stack)
    return objects
