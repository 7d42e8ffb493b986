"""PodDisruptionBudgets: a drain takes at most one pod of a component at a time.

With a replication factor of 3 and a write quorum of 2, one ingester may be away and every
stream still has a quorum.  The compactor runs a single pod that nothing waits on, so it has no
budget (a budget would block every node drain), as in the Loki Operator.
"""

from __future__ import annotations

from typing import Any, Final

from lokistack_operator.manifests import common
from lokistack_operator.manifests.common import Stack
from lokistack_operator.spec import Component

WITH_BUDGET: Final[tuple[Component, ...]] = (
    "distributor",
    "ingester",
    "querier",
    "query-frontend",
)


def pod_disruption_budget(stack: Stack, component: Component) -> dict[str, Any]:
    return common.manifest(
        "policy/v1",
        "PodDisruptionBudget",
        stack,
        common.object_name(stack, component),
        component,
        spec={
            "maxUnavailable": 1,
            "selector": {"matchLabels": common.selector_labels(stack, component)},
        },
    )


def build(stack: Stack) -> list[dict[str, Any]]:
    return [pod_disruption_budget(stack, component) for component in WITH_BUDGET]
