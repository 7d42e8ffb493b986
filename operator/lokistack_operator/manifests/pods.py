"""Pod templates: one container running ``lokistack --target=<component>``, hardened and probed.

Every component runs the same image with the same ``config.yaml`` and ``runtime-config.yaml``;
only ``--target``, the data volume and the credentials differ.

- Security: non-root (UID/GID 10001, which the image must own its files as), read-only root
  filesystem, no privilege escalation, every capability dropped, RuntimeDefault seccomp;
  ``/tmp`` and the data directory are writable volumes.
- Probes: readiness on ``/ready`` (ring joined, WAL replayed, dependencies up); liveness on
  ``/metrics``, which answers as soon as the HTTP server runs, so a long WAL replay never gets a
  pod killed; a startup probe holds liveness off while the process starts (30 minutes for
  ingesters, whose WAL replay can be long).
- Annotations: the config hash on every pod template (a ``config.yaml`` change rolls every
  component), the storage Secret hash on pods that read object storage (new credentials roll
  exactly those pods).
- Scheduling: the template's nodeSelector and tolerations; its podAntiAffinity, else a
  preferred one-pod-per-node spread of the component; one DoNotSchedule topology spread
  constraint per ``replication.zones`` entry.
"""

from __future__ import annotations

from typing import Any, Final

from lokistack_operator import spec as spec_mod
from lokistack_operator import storage
from lokistack_operator.manifests import common, config
from lokistack_operator.manifests.common import Settings, Stack
from lokistack_operator.spec import Component
from lokistack_operator.specfields import thaw

RUN_AS_USER: Final = 10001
DATA_VOLUME: Final = "data"
WAL_VOLUME: Final = "wal"  # the ingester's data volume: WAL, index head and ring tokens

# Components that read or write object storage get its credentials.
USES_STORAGE: Final[frozenset[Component]] = frozenset({"ingester", "querier", "compactor"})


def pod_security_context() -> dict[str, Any]:
    return {
        "fsGroup": RUN_AS_USER,
        "fsGroupChangePolicy": "OnRootMismatch",
        "runAsGroup": RUN_AS_USER,
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _http_get(path: str) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": common.HTTP_PORT_NAME, "scheme": "HTTP"}}


def probes(component: Component) -> dict[str, dict[str, Any]]:
    """``readinessProbe``, ``livenessProbe`` and ``startupProbe`` of a component's container."""
    # Ingesters replay their WAL before the process is fully up: allow 30 minutes to start.
    startup_failures = 180 if component == "ingester" else 60
    return {
        "readinessProbe": {
            **_http_get("/ready"),
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            **_http_get("/metrics"),
            "periodSeconds": 30,
            "timeoutSeconds": 5,
            "successThreshold": 1,
            "failureThreshold": 5,
        },
        "startupProbe": {
            **_http_get("/metrics"),
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "successThreshold": 1,
            "failureThreshold": startup_failures,
        },
    }


def credentials_env(stack: Stack) -> list[dict[str, Any]]:
    """``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` from the storage Secret's keys."""
    pairs = (
        ("AWS_ACCESS_KEY_ID", storage.KEY_ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", storage.KEY_ACCESS_KEY_SECRET),
    )
    return [
        {"name": env, "valueFrom": {"secretKeyRef": {"name": stack.secret_name, "key": key}}}
        for env, key in pairs
    ]


def data_volume_name(component: Component) -> str:
    return WAL_VOLUME if component == "ingester" else DATA_VOLUME


def container(stack: Stack, settings: Settings, component: Component) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": component,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "args": [
            f"--target={component}",
            f"--config.file={config.CONFIG_FILE}",
            f"--runtime-config.file={config.RUNTIME_CONFIG_FILE}",
        ],
        "ports": [
            {"name": common.HTTP_PORT_NAME, "containerPort": common.HTTP_PORT, "protocol": "TCP"},
            {"name": common.GRPC_PORT_NAME, "containerPort": common.GRPC_PORT, "protocol": "TCP"},
        ],
    }
    if component in USES_STORAGE:
        body["env"] = credentials_env(stack)
    resources = spec_mod.effective_resources(stack.spec, component)
    if resources:
        body["resources"] = resources
    body["volumeMounts"] = [
        {"name": "config", "mountPath": config.CONFIG_DIR, "readOnly": True},
        {"name": "runtime-config", "mountPath": config.RUNTIME_CONFIG_DIR, "readOnly": True},
        {"name": data_volume_name(component), "mountPath": config.DATA_DIR},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    body.update(probes(component))
    body["securityContext"] = container_security_context()
    body["terminationMessagePolicy"] = "FallbackToLogsOnError"
    return body


def _affinity(stack: Stack, component: Component) -> dict[str, Any]:
    template = stack.spec.template.for_component(component)
    if template.pod_anti_affinity is not None:
        return {"podAntiAffinity": thaw(template.pod_anti_affinity)}
    term = {
        "labelSelector": {"matchLabels": common.selector_labels(stack, component)},
        "topologyKey": "kubernetes.io/hostname",
    }
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": term}
            ]
        }
    }


def _tolerations(stack: Stack, component: Component) -> list[dict[str, Any]]:
    result = []
    for toleration in stack.spec.template.for_component(component).tolerations:
        item = {
            "key": toleration.key,
            "operator": toleration.operator,
            "value": toleration.value,
            "effect": toleration.effect,
            "tolerationSeconds": toleration.toleration_seconds,
        }
        result.append({key: value for key, value in item.items() if value is not None})
    return result


def pod_template(
    stack: Stack,
    settings: Settings,
    component: Component,
    config_hash: str,
    *,
    data_volume: dict[str, Any] | None,
    termination_grace_seconds: int = 30,
) -> dict[str, Any]:
    """The ``spec.template`` of a component's Deployment or StatefulSet.

    ``data_volume`` is the pod volume mounted at the data directory, or None when a
    volumeClaimTemplate of the same name provides it.
    """
    annotations = {common.ANNOTATION_CONFIG_HASH: config_hash}
    if component in USES_STORAGE:
        annotations[common.ANNOTATION_STORAGE_SECRET_HASH] = stack.secret_hash
    template = stack.spec.template.for_component(component)
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": common.config_map_name(stack)}},
        {"name": "runtime-config", "configMap": {"name": common.runtime_config_map_name(stack)}},
        {"name": "tmp", "emptyDir": {}},
    ]
    if data_volume is not None:
        volumes.append({"name": data_volume_name(component), **data_volume})
    pod: dict[str, Any] = {
        "serviceAccountName": common.service_account_name(stack),
        "securityContext": pod_security_context(),
        "terminationGracePeriodSeconds": termination_grace_seconds,
        "affinity": _affinity(stack, component),
        "containers": [container(stack, settings, component)],
        "volumes": volumes,
    }
    if template.node_selector:
        pod["nodeSelector"] = dict(sorted(template.node_selector.items()))
    tolerations = _tolerations(stack, component)
    if tolerations:
        pod["tolerations"] = tolerations
    if stack.spec.replication.zones:
        pod["topologySpreadConstraints"] = [
            {
                "maxSkew": zone.max_skew,
                "topologyKey": zone.topology_key,
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": common.selector_labels(stack, component)},
            }
            for zone in stack.spec.replication.zones
        ]
    return {
        "metadata": {
            "labels": common.labels(stack, component),
            "annotations": dict(sorted(annotations.items())),
        },
        "spec": pod,
    }


def deployment(
    stack: Stack, settings: Settings, component: Component, config_hash: str
) -> dict[str, Any]:
    """A stateless component: a Deployment that rolls one new pod in before an old one goes."""
    return common.manifest(
        "apps/v1",
        "Deployment",
        stack,
        common.object_name(stack, component),
        component,
        spec={
            "replicas": spec_mod.effective_replicas(stack.spec, component),
            "selector": {"matchLabels": common.selector_labels(stack, component)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": pod_template(
                stack, settings, component, config_hash, data_volume={"emptyDir": {}}
            ),
        },
    )


def statefulset(
    stack: Stack,
    settings: Settings,
    component: Component,
    config_hash: str,
    *,
    volume_size: str,
    pod_management_policy: str,
    termination_grace_seconds: int,
) -> dict[str, Any]:
    """A component with a PersistentVolumeClaim per pod, mounted at the data directory."""
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": volume_size}},
        "volumeMode": "Filesystem",
    }
    if stack.spec.storage_class_name is not None:
        claim["storageClassName"] = stack.spec.storage_class_name
    return common.manifest(
        "apps/v1",
        "StatefulSet",
        stack,
        common.object_name(stack, component),
        component,
        spec={
            "replicas": spec_mod.effective_replicas(stack.spec, component),
            "serviceName": common.grpc_service_name(stack, component),
            "podManagementPolicy": pod_management_policy,
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": common.selector_labels(stack, component)},
            "template": pod_template(
                stack,
                settings,
                component,
                config_hash,
                data_volume=None,
                termination_grace_seconds=termination_grace_seconds,
            ),
            # Kubernetes refuses changes to volumeClaimTemplates: a new size preset's volume
            # size or a new storageClassName needs the StatefulSet recreated (orphaning pods).
            "volumeClaimTemplates": [
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {
                        "name": data_volume_name(component),
                        "labels": common.selector_labels(stack, component),
                    },
                    "spec": claim,
                }
            ],
        },
    )
