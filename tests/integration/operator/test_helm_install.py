"""``helm install`` of the lokistack-operator chart on the real control plane.

kwok runs no containers, so the operator Pod is only marked Running: these tests prove what Helm
and Kubernetes do with the chart (CRD established, objects created and removed, the RBAC the
operator gets), not what the operator does.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from kubernetes import client as kube_client
from testinfra import binaries

from tests.support import crd, polling

REPO = pathlib.Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "lokistack-operator"
CRD_NAME = crd.CRD_NAME


class Helm:
    """The pinned helm binary pointed at the test cluster, with its own cache and config."""

    def __init__(self, kubeconfig: pathlib.Path, home: pathlib.Path) -> None:
        self.env = dict(os.environ, KUBECONFIG=str(kubeconfig))
        for variable in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            self.env[variable] = str(home / variable.lower())

    def __call__(self, *args: str, timeout: float = 180) -> str:
        result = subprocess.run(
            [str(binaries.binary_path("helm")), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}{result.stderr}"
        return result.stdout


def _kubectl(kubeconfig: pathlib.Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(binaries.binary_path("kubectl")), "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture
def helm(kubeconfig: pathlib.Path, tmp_path: pathlib.Path) -> Helm:
    return Helm(kubeconfig, tmp_path / "helm")


@pytest.fixture
def release(helm: Helm, namespace: str) -> Iterator[str]:
    """A unique release name; whatever a test installed under it is uninstalled afterwards, so no
    cluster-scoped object (ClusterRole, ClusterRoleBinding) outlives the test."""
    name = f"lso-{uuid.uuid4().hex[:8]}"
    yield name
    if name in helm("list", "--namespace", namespace, "--short"):
        helm("uninstall", name, "--namespace", namespace, "--wait")


def _ready_pods(core: kube_client.CoreV1Api, namespace: str, selector: str) -> list[str]:
    return [
        str(pod.metadata.name)
        for pod in core.list_namespaced_pod(namespace, label_selector=selector).items
        if pod.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    ]


def _can(
    kube_api: kube_client.ApiClient,
    service_account: tuple[str, str],
    verb: str,
    resource: str,
    namespace: str,
) -> bool:
    """Whether the API server's RBAC authorizer lets the ServiceAccount do ``verb`` on
    ``resource``, written as ``kubectl auth can-i`` does: ``name[.group][/subresource]``."""
    sa_namespace, sa_name = service_account
    resource, _, subresource = resource.partition("/")
    resource, _, group = resource.partition(".")
    review = kube_client.V1SubjectAccessReview(
        spec=kube_client.V1SubjectAccessReviewSpec(
            user=f"system:serviceaccount:{sa_namespace}:{sa_name}",
            groups=[
                "system:serviceaccounts",
                f"system:serviceaccounts:{sa_namespace}",
                "system:authenticated",
            ],
            resource_attributes=kube_client.V1ResourceAttributes(
                namespace=namespace,
                verb=verb,
                group=group,
                resource=resource,
                subresource=subresource or None,
            ),
        )
    )
    answer = kube_client.AuthorizationV1Api(kube_api).create_subject_access_review(review)
    return bool(answer.status.allowed)


def _gone(read: Callable[..., object], *args: str) -> bool:
    try:
        read(*args)
    except kube_client.ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def test_install_runs_the_operator_and_uninstall_removes_it(
    helm: Helm, release: str, namespace: str, kube_api: kube_client.ApiClient
) -> None:
    helm("install", release, str(CHART), "--namespace", namespace, "--wait", "--timeout", "120s")

    polling.wait_until(
        lambda: crd.established(kube_api), timeout=30, describe=f"{CRD_NAME} not Established"
    )
    definition = kube_client.ApiextensionsV1Api(kube_api).read_custom_resource_definition(CRD_NAME)
    assert definition.spec.names.kind == "LokiStack"
    assert [v.name for v in definition.spec.versions if v.served and v.storage] == ["v1"]

    fullname = f"{release}-lokistack-operator"
    apps = kube_client.AppsV1Api(kube_api)
    core = kube_client.CoreV1Api(kube_api)
    deployment = apps.read_namespaced_deployment(fullname, namespace)
    container = deployment.spec.template.spec.containers[0]
    assert container.command == ["lokistack-operator"]
    assert deployment.spec.template.spec.service_account_name == fullname
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=operator"
    pods = polling.wait_until(
        lambda: _ready_pods(core, namespace, selector),
        timeout=60,
        describe="the operator Pod never became Running and Ready on a kwok node",
    )
    assert len(pods) == 1
    pod = core.read_namespaced_pod(pods[0], namespace)
    assert pod.spec.node_name.startswith("kwok-node-")

    # The RBAC the operator gets, as the API server's authorizer sees it.
    sa = (namespace, fullname)
    elsewhere = "default"
    assert _can(kube_api, sa, "watch", "lokistacks.lokistack.dev", elsewhere)
    assert _can(kube_api, sa, "patch", "lokistacks.lokistack.dev/status", elsewhere)
    assert _can(kube_api, sa, "create", "statefulsets.apps", elsewhere)
    assert _can(kube_api, sa, "create", "roles.rbac.authorization.k8s.io", elsewhere)
    assert _can(kube_api, sa, "patch", "leases.coordination.k8s.io", elsewhere)
    assert _can(kube_api, sa, "get", "secrets", elsewhere)
    assert not _can(kube_api, sa, "create", "secrets", elsewhere)
    assert not _can(kube_api, sa, "delete", "pods", elsewhere)
    assert not _can(kube_api, sa, "delete", "lokistacks.lokistack.dev", elsewhere)

    helm("uninstall", release, "--namespace", namespace, "--wait")

    rbac = kube_client.RbacAuthorizationV1Api(kube_api)
    polling.wait_until(
        lambda: _gone(apps.read_namespaced_deployment, fullname, namespace),
        timeout=30,
        describe="the operator Deployment outlived helm uninstall",
    )
    assert _gone(core.read_namespaced_service_account, fullname, namespace)
    for name in (fullname, f"{fullname}-cluster"):
        assert _gone(rbac.read_cluster_role, name)
        assert _gone(rbac.read_cluster_role_binding, name)
    # Helm never deletes what it installed from crds/: LokiStacks elsewhere survive.
    assert crd.established(kube_api)


def test_watched_namespaces_limit_the_operator_to_them(
    helm: Helm, release: str, namespace: str, kube_api: kube_client.ApiClient
) -> None:
    helm(
        "install",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--set",
        f"watchNamespaces={{{namespace}}}",
        "--wait",
        "--timeout",
        "120s",
    )
    fullname = f"{release}-lokistack-operator"
    deployment = kube_client.AppsV1Api(kube_api).read_namespaced_deployment(fullname, namespace)
    args = deployment.spec.template.spec.containers[0].args or []
    assert f"--namespace={namespace}" in args

    sa = (namespace, fullname)
    assert _can(kube_api, sa, "create", "deployments.apps", namespace)
    assert _can(kube_api, sa, "list", "lokistacks.lokistack.dev", namespace)
    assert not _can(kube_api, sa, "create", "deployments.apps", "default")
    assert not _can(kube_api, sa, "list", "lokistacks.lokistack.dev", "default")
    # kopf's cluster-scoped reads stay.
    assert _can(kube_api, sa, "list", "customresourcedefinitions.apiextensions.k8s.io", "")


def test_example_stack_is_accepted_by_the_installed_crd(
    helm: Helm, release: str, namespace: str, kube_api: kube_client.ApiClient
) -> None:
    """crds/ is installed before the templates, so the example LokiStack of the same release is
    created on first install and validated by the real CRD schema."""
    helm(
        "install",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--set",
        "example.enabled=true,example.storageSecretName=demo-storage",
        "--timeout",
        "120s",
    )
    stack = cast(
        dict[str, Any],
        kube_client.CustomObjectsApi(kube_api).get_namespaced_custom_object(
            "lokistack.dev", "v1", namespace, "lokistacks", "lokistack-demo"
        ),
    )
    assert stack["spec"]["size"] == "1x.demo"
    assert stack["spec"]["storage"]["secret"]["name"] == "demo-storage"


def test_every_rendered_object_passes_server_side_validation(
    helm: Helm, namespace: str, kubeconfig: pathlib.Path, kube_api: kube_client.ApiClient
) -> None:
    """Everything the try-it-out values render, hooks and the helm test Pod included, is valid
    for the real API server (schemas, CRD validation rules, RBAC objects): a server-side dry
    run, which creates nothing."""
    _kubectl(kubeconfig, "apply", "--server-side", "-f", str(CHART / "crds" / "lokistack.yaml"))
    polling.wait_until(
        lambda: crd.established(kube_api), timeout=30, describe=f"{CRD_NAME} not Established"
    )
    manifest = helm(
        "template",
        "lso-dry-run",
        str(CHART),
        "--namespace",
        namespace,
        "--values",
        str(CHART / "ci" / "with-minio-values.yaml"),
        "--set",
        f"watchNamespaces={{{namespace}}}",
    )
    applied = _kubectl(kubeconfig, "apply", "--dry-run=server", "-f", "-", stdin=manifest)
    for expected in (
        "deployment.apps/lso-dry-run-lokistack-operator",
        "rolebinding.rbac.authorization.k8s.io/lso-dry-run-lokistack-operator",
        "job.batch/lso-dry-run-lokistack-operator-minio-bucket",
        "pod/lso-dry-run-lokistack-operator-test-push-query",
        "lokistack.lokistack.dev/lokistack-demo",
    ):
        assert expected in applied, applied
