"""A small dict-based Kubernetes REST layer over the official client, safe for the event loop.

The official ``kubernetes`` client only supplies the configuration (kubeconfig or in-cluster
service account) and the HTTP connection pool; requests are made with ``ApiClient.call_api`` and
plain dicts, in a worker thread (:func:`asyncio.to_thread`), so a slow API server never blocks
kopf's loop. Writes of desired state use server-side apply with the field manager
``lokistack-operator``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import kopf
from kubernetes import client as kube_client
from kubernetes import config as kube_config

FIELD_MANAGER: Final = "lokistack-operator"
REQUEST_TIMEOUT: Final = 30.0

# (apiVersion, kind) -> resource plural, for every kind the operator reads or writes.
PLURALS: Final[Mapping[tuple[str, str], str]] = {
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Secret"): "secrets",
    ("v1", "Service"): "services",
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("v1", "Pod"): "pods",
    ("apps/v1", "Deployment"): "deployments",
    ("apps/v1", "StatefulSet"): "statefulsets",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("rbac.authorization.k8s.io/v1", "Role"): "roles",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rolebindings",
    ("coordination.k8s.io/v1", "Lease"): "leases",
    ("networking.k8s.io/v1", "NetworkPolicy"): "networkpolicies",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("lokistack.dev/v1", "LokiStack"): "lokistacks",
}


class KubeError(RuntimeError):
    """An API request failed; ``status`` is the HTTP status (0 when no answer came)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def load_configuration(kubeconfig: str | None) -> kube_client.Configuration:
    """The client configuration: ``kubeconfig`` if given, else in-cluster, else ~/.kube/config."""
    configuration = kube_client.Configuration()
    if kubeconfig:
        kube_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration
        )
        return configuration
    try:
        kube_config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
    except kube_config.ConfigException:
        kube_config.load_kube_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
    return configuration


def connection_info(configuration: kube_client.Configuration) -> kopf.ConnectionInfo:
    """kopf's credentials taken from the same configuration the operator's client uses."""
    header = configuration.get_api_key_with_prefix(
        "BearerToken"
    ) or configuration.get_api_key_with_prefix("authorization")
    scheme: str | None = None
    token: str | None = None
    if header:
        parts = str(header).split(" ", 1)
        scheme, token = (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        username=configuration.username or None,
        password=configuration.password or None,
        scheme=scheme,
        token=token,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


def resource_path(
    api_version: str, kind: str, namespace: str | None, name: str | None = None
) -> str:
    plural = PLURALS.get((api_version, kind))
    if plural is None:
        raise KubeError(0, f"the operator does not know the resource of {api_version} {kind}")
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    return f"{path}/{name}" if name else path


@dataclasses.dataclass
class Kube:
    """Typed-enough access to the API for the reconciler; every method is a coroutine."""

    api: kube_client.ApiClient
    field_manager: str = FIELD_MANAGER

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: object = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        method, url, headers, serialized, _ = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query) or None,
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(
                method,
                url,
                header_params=headers,
                body=serialized,
                _request_timeout=REQUEST_TIMEOUT,
            )
            data = response.read()  # type: ignore[no-untyped-call]
        except kube_client.ApiException as error:
            raise KubeError(int(error.status or 0), str(error.body or error.reason)) from error
        except OSError as error:
            raise KubeError(0, str(error)) from error
        status = int(response.status)
        text = data.decode(errors="replace") if isinstance(data, bytes) else str(data or "")
        if not 200 <= status < 300:
            message = text
            with contextlib.suppress(ValueError, AttributeError):
                message = str(json.loads(text).get("message", text))
            raise KubeError(status, message)
        if not text:
            return {}
        decoded = json.loads(text)
        return decoded if isinstance(decoded, dict) else {}

    async def get(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        path = resource_path(api_version, kind, namespace, name)
        try:
            return await asyncio.to_thread(self._request, "GET", path)
        except KubeError as error:
            if error.status == 404:
                return None
            raise

    async def list(
        self, api_version: str, kind: str, namespace: str, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)] if label_selector else []
        path = resource_path(api_version, kind, namespace)
        answer = await asyncio.to_thread(self._request, "GET", path, query=query)
        return [item for item in answer.get("items") or () if isinstance(item, dict)]

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply of the whole object (force: the operator owns these fields)."""
        metadata = obj.get("metadata") or {}
        path = resource_path(
            str(obj.get("apiVersion")), str(obj.get("kind")), metadata.get("namespace"),
            str(metadata.get("name")),
        )  # fmt: skip
        query = [("fieldManager", self.field_manager), ("force", "true")]
        return await asyncio.to_thread(
            self._request,
            "PATCH",
            path,
            query=query,
            body=dict(obj),
            content_type="application/apply-patch+yaml",
        )

    async def merge_patch(
        self,
        api_version: str,
        /,
        kind: str,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str = "",
    ) -> dict[str, Any]:
        return await self._patch(
            resource_path(api_version, kind, namespace, name),
            subresource,
            dict(patch),
            "application/merge-patch+json",
        )

    async def _patch(
        self, path: str, subresource: str, body: object, content_type: str
    ) -> dict[str, Any]:
        if subresource:
            path = f"{path}/{subresource}"
        return await asyncio.to_thread(
            self._request,
            "PATCH",
            path,
            query=[("fieldManager", self.field_manager)],
            body=body,
            content_type=content_type,
        )

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete in the background (dependents are garbage-collected); False if already gone."""
        path = resource_path(api_version, kind, namespace, name)
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        try:
            await asyncio.to_thread(self._request, "DELETE", path, body=body)
        except KubeError as error:
            if error.status == 404:
                return False
            raise
        return True

    async def json_patch(
        self,
        api_version: str,
        /,
        kind: str,
        namespace: str,
        name: str,
        operations: Sequence[Mapping[str, Any]],
        *,
        subresource: str = "",
    ) -> dict[str, Any]:
        return await self._patch(
            resource_path(api_version, kind, namespace, name),
            subresource,
            [dict(operation) for operation in operations],
            "application/json-patch+json",
        )
