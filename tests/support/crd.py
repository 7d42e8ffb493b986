"""The LokiStack CRD on a test API server: installing it and waiting until it is served."""

from __future__ import annotations

import pathlib
import time
from typing import Any

import yaml
from kubernetes import client as kube_client

CRD_PATH = pathlib.Path(__file__).resolve().parents[2] / "crds" / "lokistack.yaml"
CRD_NAME = "lokistacks.lokistack.dev"


def established(kube_api: kube_client.ApiClient, name: str = CRD_NAME) -> bool:
    """Whether the CRD exists and the API server serves its resources."""
    try:
        crd = kube_client.ApiextensionsV1Api(kube_api).read_custom_resource_definition(name)
    except kube_client.ApiException as error:
        if error.status == 404:
            return False
        raise
    conditions = (crd.status.conditions if crd.status else None) or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def install(kube_api: kube_client.ApiClient, field_manager: str) -> dict[str, Any]:
    """Server-side apply crds/lokistack.yaml and wait until it is Established."""
    body: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    name = body["metadata"]["name"]
    kube_client.ApiextensionsV1Api(kube_api).patch_custom_resource_definition(
        name,
        body,
        field_manager=field_manager,
        force=True,
        _content_type="application/apply-patch+yaml",
    )
    deadline = time.monotonic() + 30
    while not established(kube_api, name):
        assert time.monotonic() < deadline, f"CRD {name} never became Established"
        time.sleep(0.2)
    # A new schema takes a moment to reach the validating handlers.
    time.sleep(1)
    return body
