"""The lokistack-operator Helm chart: lint, render, schema, RBAC and CRD packaging.

These run the pinned helm binary (``make tools`` builds it) as a subprocess; none needs a cluster.
``tests/integration/operator/test_helm_install.py`` installs the chart on the real control plane.
"""

from __future__ import annotations

import base64
import collections
import os
import pathlib
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from testinfra import binaries

REPO = pathlib.Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "lokistack-operator"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
SOURCE_CRD = REPO / "crds" / "lokistack.yaml"
CHART_CRD = CHART / "crds" / "lokistack.yaml"
RELEASE = "lso"
NAMESPACE = "lokistack-operator"

Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def helm_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment for helm with its cache, config and data under a temporary directory."""
    home = tmp_path_factory.mktemp("helm-home")
    env = dict(os.environ)
    for variable in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        env[variable] = str(home / variable.lower())
    env.pop("KUBECONFIG", None)
    yield env


def _helm(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binaries.binary_path("helm")), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _template(env: dict[str, str], *args: str) -> list[Manifest]:
    """``helm template`` of the chart, as the list of rendered objects."""
    result = _helm(env, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
    assert result.returncode == 0, f"helm template {' '.join(args)} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


def _template_error(env: dict[str, str], *args: str) -> str:
    result = _helm(env, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
    assert result.returncode != 0, f"helm template {' '.join(args)} rendered:\n{result.stdout}"
    return result.stderr


def _kinds(objects: list[Manifest]) -> collections.Counter[str]:
    return collections.Counter(obj["kind"] for obj in objects)


def _one(objects: list[Manifest], kind: str, name: str) -> Manifest:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def _operator_container(objects: list[Manifest]) -> Manifest:
    deployment = _one(objects, "Deployment", f"{RELEASE}-lokistack-operator")
    container: Manifest = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def _env(container: Manifest) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


# -- lint and render --------------------------------------------------------------------------


def test_ci_value_sets_exist() -> None:
    assert {path.name for path in CI_VALUES} >= {"default-values.yaml", "with-minio-values.yaml"}


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda path: path.name)
def test_helm_lint_is_clean(helm_env: dict[str, str], values: pathlib.Path) -> None:
    result = _helm(helm_env, "lint", "--strict", str(CHART), "--values", str(values))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_default_values_render_the_operator_alone(helm_env: dict[str, str]) -> None:
    objects = _template(helm_env, "--values", str(CHART / "ci" / "default-values.yaml"))
    assert _kinds(objects) == {
        "ServiceAccount": 1,
        "ClusterRole": 2,
        "ClusterRoleBinding": 2,
        "Deployment": 1,
    }
    for obj in objects:
        assert obj["apiVersion"] and obj["metadata"]["name"]
        if obj["kind"] in {"ServiceAccount", "Deployment"}:
            assert obj["metadata"]["namespace"] == NAMESPACE


def test_with_minio_values_render_a_stack_to_try(helm_env: dict[str, str]) -> None:
    objects = _template(helm_env, "--values", str(CHART / "ci" / "with-minio-values.yaml"))
    assert _kinds(objects) == {
        "ServiceAccount": 1,
        "ClusterRole": 2,
        "ClusterRoleBinding": 2,
        "Deployment": 2,  # the operator and MinIO
        "Secret": 2,  # MinIO's root credentials and the LokiStack storage secret
        "PersistentVolumeClaim": 1,
        "Service": 1,
        "Job": 1,  # creates the bucket
        "LokiStack": 1,
        "Pod": 1,  # helm test
    }
    stack = _one(objects, "LokiStack", "lokistack-demo")
    assert stack["apiVersion"] == "lokistack.dev/v1"
    assert stack["spec"]["size"] == "1x.demo"
    assert stack["spec"]["storage"]["secret"] == {
        "name": f"{RELEASE}-lokistack-operator-minio-storage",
        "type": "s3",
    }


def test_crd_comes_from_the_crds_directory_only(helm_env: dict[str, str]) -> None:
    assert "CustomResourceDefinition" not in _kinds(_template(helm_env))
    with_crds = _kinds(_template(helm_env, "--include-crds"))
    assert with_crds["CustomResourceDefinition"] == (1 if CHART_CRD.exists() else 0)


# -- values.schema.json -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("replicas=two", "/replicas"),
        ("replicas=2", "/replicas"),  # standalone kopf: never two operators
        ("logLevel=verbose", "/logLevel"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("watchNamespaces={Not_A_Namespace}", "/watchNamespaces/0"),
        ("minio.rootPassword=short", "/minio/rootPassword"),
        ("health.port=0", "/health/port"),
        ("replica=1", "replica"),  # a misspelt key is an error, not ignored
        ("minio.persistance.size=1Gi", "persistance"),
        ("example.size=2x.huge", "/example/size"),
        ("example.name=9lives", "/example/name"),  # LokiStack names start with a letter
        ("test.stackName=Bad_Name", "/test/stackName"),
    ],
)
def test_schema_rejects_bad_values(helm_env: dict[str, str], setting: str, complaint: str) -> None:
    stderr = _template_error(helm_env, "--set", setting)
    assert complaint in stderr, stderr


def test_every_default_value_is_described_by_the_schema() -> None:
    schema = yaml.safe_load((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(value: Any, node: dict[str, Any], path: str) -> None:
        while "$ref" in node:
            node = {**schema["definitions"][node["$ref"].rsplit("/", 1)[-1]], **node}
            node.pop("$ref")
        if isinstance(value, dict) and "properties" in node:
            for key, child in value.items():
                assert key in node["properties"], f"{path}.{key} has no schema"
                walk(child, node["properties"][key], f"{path}.{key}")

    walk(values, schema, "values")


def test_schema_knows_the_operator_sizes_and_stack_names() -> None:
    from lokistack_operator import specmodel  # noqa: PLC0415 - the contract under test

    schema = yaml.safe_load((CHART / "values.schema.json").read_text())
    example = schema["properties"]["example"]["properties"]
    assert tuple(example["size"]["enum"]) == specmodel.SIZE_NAMES
    assert example["name"]["pattern"] == specmodel.STACK_NAME
    assert example["name"]["maxLength"] == specmodel.MAX_STACK_NAME


# -- cross-value checks -----------------------------------------------------------------------


def test_example_without_a_storage_secret_is_refused(helm_env: dict[str, str]) -> None:
    stderr = _template_error(helm_env, "--set", "example.enabled=true")
    assert "example.enabled needs a storage secret" in stderr


def test_example_outside_the_watched_namespaces_is_refused(helm_env: dict[str, str]) -> None:
    stderr = _template_error(
        helm_env,
        "--set",
        "example.enabled=true,example.storageSecretName=s3,watchNamespaces={elsewhere}",
    )
    assert "leaves unwatched" in stderr


# -- the operator Deployment ------------------------------------------------------------------


def test_operator_runs_its_command_non_root_with_a_liveness_probe(
    helm_env: dict[str, str],
) -> None:
    objects = _template(helm_env)
    deployment = _one(objects, "Deployment", f"{RELEASE}-lokistack-operator")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == f"{RELEASE}-lokistack-operator"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    container = _operator_container(objects)
    assert container["command"] == ["lokistack-operator"]
    assert container["image"] == "localhost/lokistack/lokistack-operator:0.1.0"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    probe = container["livenessProbe"]["httpGet"]
    assert probe == {"path": "/healthz", "port": "health"}
    assert {"name": "health", "containerPort": 8080, "protocol": "TCP"} in container["ports"]
    env = _env(container)
    assert env["LOKISTACK_IMAGE"] == "localhost/lokistack/lokistack:0.1.0"
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    # The operator Deployment must not select the MinIO or test Pods of the same release.
    selector = spec["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/component"] == "operator"


def test_operator_arguments_are_accepted_by_its_command_line(helm_env: dict[str, str]) -> None:
    """The chart and lokistack-operator agree on its flags: the real parser reads the args."""
    from lokistack_operator import main  # noqa: PLC0415 - the contract under test

    objects = _template(
        helm_env,
        "--set",
        "watchNamespaces={team-a,team-b},logLevel=debug,health.port=9090,health.path=/alive",
        "--set",
        "extraArgs={--status-interval=60}",
    )
    parsed = main.build_parser().parse_args(_operator_container(objects)["args"])
    assert parsed.namespace == ["team-a", "team-b"]
    assert parsed.log_level == "debug"
    assert parsed.log_format == "json"
    assert parsed.liveness == "http://0.0.0.0:9090/alive"
    assert parsed.status_interval == 60
    probe = _operator_container(objects)["livenessProbe"]["httpGet"]
    assert probe == {"path": "/alive", "port": "health"}
    assert {"name": "health", "containerPort": 9090, "protocol": "TCP"} in (
        _operator_container(objects)["ports"]
    )


def test_default_arguments_match_the_operator_defaults(helm_env: dict[str, str]) -> None:
    from lokistack_operator import main  # noqa: PLC0415 - the contract under test

    parsed = main.build_parser().parse_args(_operator_container(_template(helm_env))["args"])
    defaults = main.build_parser().parse_args([])
    assert parsed.liveness == defaults.liveness  # the probe checks what kopf serves by default
    assert parsed.namespace == []  # every namespace


# -- RBAC -------------------------------------------------------------------------------------


def _rules(objects: list[Manifest], name: str) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs of a rendered ClusterRole."""
    rules: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for rule in _one(objects, "ClusterRole", name)["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                rules[group, resource] |= set(rule["verbs"])
    return rules


def test_operator_role_is_least_privilege(helm_env: dict[str, str]) -> None:
    objects = _template(helm_env)
    rules = _rules(objects, f"{RELEASE}-lokistack-operator")
    manage = {"get", "list", "watch", "create", "update", "patch", "delete"}
    read = {"get", "list", "watch"}
    assert rules == {
        ("lokistack.dev", "lokistacks"): read | {"patch"},
        ("lokistack.dev", "lokistacks/status"): {"get", "patch", "update"},
        ("lokistack.dev", "lokistacks/finalizers"): {"update"},
        ("", "configmaps"): manage,
        ("", "services"): manage,
        ("", "serviceaccounts"): manage,
        ("", "secrets"): read,
        ("", "pods"): read,
        ("", "events"): {"create", "patch"},
        ("apps", "deployments"): manage,
        ("apps", "statefulsets"): manage,
        ("policy", "poddisruptionbudgets"): manage,
        ("rbac.authorization.k8s.io", "roles"): manage,
        ("rbac.authorization.k8s.io", "rolebindings"): manage,
        ("coordination.k8s.io", "leases"): manage,
    }
    assert _rules(objects, f"{RELEASE}-lokistack-operator-cluster") == {
        ("apiextensions.k8s.io", "customresourcedefinitions"): read,
        ("", "namespaces"): read,
    }


def test_all_namespaces_are_bound_cluster_wide(helm_env: dict[str, str]) -> None:
    objects = _template(helm_env)
    binding = _one(objects, "ClusterRoleBinding", f"{RELEASE}-lokistack-operator")
    assert binding["roleRef"]["name"] == f"{RELEASE}-lokistack-operator"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{RELEASE}-lokistack-operator", "namespace": NAMESPACE}
    ]
    assert "RoleBinding" not in _kinds(objects)


def test_watched_namespaces_are_bound_one_by_one(helm_env: dict[str, str]) -> None:
    objects = _template(helm_env, "--set", "watchNamespaces={team-a,team-b}")
    bindings = [o for o in objects if o["kind"] == "RoleBinding"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    assert {b["roleRef"]["name"] for b in bindings} == {f"{RELEASE}-lokistack-operator"}
    cluster_bindings = [o for o in objects if o["kind"] == "ClusterRoleBinding"]
    assert [b["roleRef"]["name"] for b in cluster_bindings] == [
        f"{RELEASE}-lokistack-operator-cluster"
    ]


def test_rbac_and_service_account_can_be_left_to_the_user(helm_env: dict[str, str]) -> None:
    objects = _template(
        helm_env, "--set", "rbac.create=false,serviceAccount.create=false,serviceAccount.name=ops"
    )
    assert _kinds(objects) == {"Deployment": 1}
    pod = _one(objects, "Deployment", f"{RELEASE}-lokistack-operator")["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == "ops"


# Kubernetes resource names of the kinds the operator's manifest builders render.
_RESOURCES = {
    "ConfigMap": "configmaps",
    "Service": "services",
    "ServiceAccount": "serviceaccounts",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "PodDisruptionBudget": "poddisruptionbudgets",
}


def _resource(api_version: str, kind: str) -> tuple[str, str]:
    group = api_version.rpartition("/")[0]
    assert kind in _RESOURCES, (
        f"the operator now renders {kind} objects: grant the operator rights on them in "
        f"{(CHART / 'templates' / 'clusterrole.yaml').relative_to(REPO)} and name the resource "
        f"in this test's _RESOURCES"
    )
    return group, _RESOURCES[kind]


def test_operator_may_manage_everything_it_renders_for_the_example_stack(
    helm_env: dict[str, str],
) -> None:
    """The chart's example stack and MinIO storage secret, fed through the operator's own spec
    parser, secret validator and manifest builders: the ClusterRole must cover every object the
    operator then applies or prunes, and every right its Roles grant (RBAC forbids granting
    more than one holds)."""
    from lokistack_operator import manifests, reconcile, spec, storage  # noqa: PLC0415

    objects = _template(helm_env, "--values", str(CHART / "ci" / "with-minio-values.yaml"))
    example = _one(objects, "LokiStack", "lokistack-demo")
    secret_name = example["spec"]["storage"]["secret"]["name"]
    data = storage.decode_secret_data(_one(objects, "Secret", secret_name)["data"])
    stack = manifests.Stack(
        name="lokistack-demo",
        namespace=NAMESPACE,
        uid="00000000-0000-0000-0000-000000000000",
        spec=spec.parse_spec(example["spec"]),
        storage=storage.parse_storage_secret(data),
        secret_name=secret_name,
        secret_hash=storage.secret_hash(data),
    )
    rendered = manifests.build_all(stack, manifests.Settings())
    rules = _rules(objects, f"{RELEASE}-lokistack-operator")
    # Server-side apply (create or patch), status reads, and pruning (list, delete).
    needed = {"get", "list", "watch", "create", "patch", "delete"}
    kinds = {(obj["apiVersion"], obj["kind"]) for obj in rendered} | set(reconcile.PRUNED_KINDS)
    for api_version, kind in sorted(kinds):
        missing = needed - rules.get(_resource(api_version, kind), set())
        assert not missing, f"the operator may not {sorted(missing)} {kind} objects"
    for role in (obj for obj in rendered if obj["kind"] == "Role"):
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    missing = set(rule["verbs"]) - rules.get((group, resource), set())
                    assert not missing, (
                        f"Role {role['metadata']['name']} grants {sorted(missing)} on "
                        f"{resource}.{group}, which the operator does not hold"
                    )


# -- MinIO and helm test ----------------------------------------------------------------------


def test_minio_storage_secret_points_at_the_bundled_minio(helm_env: dict[str, str]) -> None:
    objects = _template(helm_env, "--set", "minio.enabled=true,minio.rootPassword=dev-password")
    name = f"{RELEASE}-lokistack-operator-minio"
    storage = _one(objects, "Secret", f"{name}-storage")["data"]
    root = _one(objects, "Secret", name)["data"]
    assert set(storage) == {
        "endpoint",
        "bucketnames",
        "access_key_id",
        "access_key_secret",
        "region",
        "forcepathstyle",
    }
    assert storage["access_key_id"] == root["rootUser"]
    assert storage["access_key_secret"] == root["rootPassword"]
    decoded = {key: _b64(value) for key, value in storage.items()}
    assert decoded["endpoint"] == f"http://{name}.{NAMESPACE}.svc:9000"
    assert decoded["bucketnames"] == "loki"
    assert decoded["forcepathstyle"] == "true"
    job = _one(objects, "Job", f"{name}-bucket")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    script = job["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert "mc mb --ignore-existing" in script


def test_a_generated_minio_password_is_shared_by_both_secrets(helm_env: dict[str, str]) -> None:
    objects = _template(helm_env, "--set", "minio.enabled=true")
    name = f"{RELEASE}-lokistack-operator-minio"
    password = _b64(_one(objects, "Secret", name)["data"]["rootPassword"])
    assert len(password) == 32
    assert _b64(_one(objects, "Secret", f"{name}-storage")["data"]["access_key_secret"]) == (
        password
    )


def test_helm_test_pushes_to_the_distributor_and_queries_the_frontend(
    helm_env: dict[str, str],
) -> None:
    objects = _template(
        helm_env, "--set", "test.stackName=logs,test.stackNamespace=obs,test.timeoutSeconds=90"
    )
    pod = _one(objects, "Pod", f"{RELEASE}-lokistack-operator-test-push-query")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    container = pod["spec"]["containers"][0]
    assert container["image"] == "curlimages/curl:8.11.1"
    env = _env(container)
    assert env["PUSH_URL"] == "http://logs-distributor-http.obs.svc:3100/loki/api/v1/push"
    assert env["QUERY_URL"] == (
        "http://logs-query-frontend-http.obs.svc:3100/loki/api/v1/query_range"
    )
    assert env["TIMEOUT_SECONDS"] == "90"
    assert pod["spec"]["activeDeadlineSeconds"] == 150


def test_no_helm_test_without_a_stack(helm_env: dict[str, str]) -> None:
    assert "Pod" not in _kinds(_template(helm_env))


def _b64(value: str) -> str:
    return base64.b64decode(value).decode()


# -- CRD packaging ----------------------------------------------------------------------------


def test_chart_crd_is_a_copy_of_the_source_crd() -> None:
    """Helm installs the chart's crds/ on first install; it must be the CRD the operator serves."""
    sync = f"cp {SOURCE_CRD.relative_to(REPO)} {CHART_CRD.relative_to(REPO)}"
    assert SOURCE_CRD.is_file(), f"{SOURCE_CRD.relative_to(REPO)} is missing"
    assert CHART_CRD.is_file(), f"the chart has no CRD; copy it in with: {sync}"
    identical = CHART_CRD.read_bytes() == SOURCE_CRD.read_bytes()
    assert identical, (
        f"{CHART_CRD.relative_to(REPO)} differs from {SOURCE_CRD.relative_to(REPO)}, the one "
        f"source of the CRD (generated by tools/gencrd.py); sync the chart's copy with: {sync}"
    )
