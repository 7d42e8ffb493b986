"""Services: ``<stack>-<component>-http`` (ClusterIP, :3100) and ``<stack>-<component>-grpc``.

The HTTP Services are what clients use: push to ``<stack>-distributor-http``, query
``<stack>-query-frontend-http``.  The gRPC Services are headless and publish pods before they
are ready: they are for discovery (the StatefulSets' stable pod DNS names, queriers finding
every frontend), not load balancing, and a pod must be reachable while it joins the ring or
waits for its first querier.
"""

from __future__ import annotations

from typing import Any

from lokistack_operator.manifests import common
from lokistack_operator.manifests.common import Stack
from lokistack_operator.spec import COMPONENTS, Component


def http_service(stack: Stack, component: Component) -> dict[str, Any]:
    return common.manifest(
        "v1",
        "Service",
        stack,
        common.http_service_name(stack, component),
        component,
        spec={
            "type": "ClusterIP",
            "selector": common.selector_labels(stack, component),
            "ports": [
                {
                    "name": common.HTTP_PORT_NAME,
                    "port": common.HTTP_PORT,
                    "targetPort": common.HTTP_PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    )


def grpc_service(stack: Stack, component: Component) -> dict[str, Any]:
    return common.manifest(
        "v1",
        "Service",
        stack,
        common.grpc_service_name(stack, component),
        component,
        spec={
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": common.selector_labels(stack, component),
            "ports": [
                {
                    "name": common.GRPC_PORT_NAME,
                    "port": common.GRPC_PORT,
                    "targetPort": common.GRPC_PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    )


def build(stack: Stack) -> list[dict[str, Any]]:
    services: list[dict[str, Any]] = []
    for component in COMPONENTS:
        services += [http_service(stack, component), grpc_service(stack, component)]
    return services
