"""LokiStack specs and stacks shared by the operator's unit and integration tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lokistack_operator import manifests, spec, storage

SECRET_DATA: Mapping[str, str] = {
    "endpoint": "http://minio.minio.svc:9000",
    "bucketnames": "lokistack",
    "access_key_id": "minio",
    "access_key_secret": "minio123",
}

DEMO_SPEC: Mapping[str, Any] = {
    "size": "1x.demo",
    "storage": {"secret": {"name": "lokistack-demo-storage"}},
}

MEDIUM_SPEC: Mapping[str, Any] = {
    "size": "1x.medium",
    "storage": {
        "secret": {"name": "logs-storage", "type": "s3"},
        "schemas": [{"version": "v13", "effectiveDate": "2024-01-01"}],
    },
    "storageClassName": "fast-ssd",
    "replication": {
        "factor": 3,
        "zones": [{"topologyKey": "topology.kubernetes.io/zone", "maxSkew": 1}],
    },
    "limits": {
        "global": {
            "ingestion": {"ingestionRate": 40, "maxGlobalStreamsPerTenant": 50000},
            "queries": {"queryTimeout": "5m"},
        },
        "tenants": {
            "team-a": {"ingestion": {"ingestionRate": 80, "perStreamRateLimit": 10}},
            "team-b": {"queries": {"maxQuerySeries": 1000, "queryTimeout": "10m"}},
        },
    },
    "template": {
        "ingester": {
            "replicas": 4,
            "resources": {"limits": {"memory": "24Gi"}},
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "logs", "effect": "NoSchedule"}
            ],
            "nodeSelector": {"node-role/logs": "true"},
        },
        "querier": {
            "replicas": 5,
            "resources": {"requests": {"cpu": "3", "memory": "8Gi"}},
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {
                            "matchLabels": {"app.kubernetes.io/component": "querier"}
                        },
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            },
        },
        "compactor": {"replicas": 3},
    },
}

StackFactory = Callable[..., manifests.Stack]


def make_stack(
    raw_spec: Mapping[str, Any],
    *,
    name: str = "logs",
    namespace: str = "observability",
    secret: Mapping[str, str] = SECRET_DATA,
) -> manifests.Stack:
    parsed = spec.parse_spec(raw_spec)
    return manifests.Stack(
        name=name,
        namespace=namespace,
        uid="0b6f3c1e-5d0a-4f59-9a43-1c2d3e4f5a6b",
        spec=parsed,
        storage=storage.parse_storage_secret(secret),
        secret_name=parsed.storage.secret.name,
        secret_hash=storage.secret_hash(secret),
    )
