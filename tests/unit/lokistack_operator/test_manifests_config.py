"""The rendered workload config: valid, complete, and hashed so only config changes roll pods."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest
from lokistack import config
from lokistack_operator import manifests, storage
from lokistack_operator.manifests import config as config_mod

from tests.support.operator_stacks import DEMO_SPEC, MEDIUM_SPEC, SECRET_DATA, make_stack

MIB = 1024 * 1024


def pod_templates(stack: manifests.Stack) -> dict[str, Any]:
    objects = manifests.build_all(stack, manifests.Settings())
    return {
        o["metadata"]["name"]: o["spec"]["template"]
        for o in objects
        if o["kind"] in {"Deployment", "StatefulSet"}
    }


def rendered(raw: Any = MEDIUM_SPEC, **options: Any) -> manifests.RenderedConfig:
    return manifests.build_config_maps(make_stack(raw, **options), manifests.Settings())


def test_config_yaml_is_a_valid_workload_config() -> None:
    result = rendered()
    parsed = config.parse(result.config_yaml)
    assert parsed == result.config
    assert result.config_map["data"] == {"config.yaml": result.config_yaml}
    assert result.config_map["metadata"]["name"] == "logs-config"
    assert result.runtime_config_map["metadata"]["name"] == "logs-runtime-config"
    assert result.runtime_config_map["data"] == {"runtime-config.yaml": result.runtime_config_yaml}


def test_storage_comes_from_the_secret_without_credentials() -> None:
    cfg = rendered().config
    assert cfg.storage.type == "s3"
    assert cfg.storage.s3 == config.S3(
        endpoint="minio.minio.svc:9000",
        bucket="lokistack",
        region="us-east-1",
        insecure=True,
        force_path_style=True,
    )
    result = rendered()
    for text in (result.config_yaml, result.runtime_config_yaml):
        assert "minio123" not in text
        assert SECRET_DATA["access_key_id"] not in text.replace("minio.minio.svc", "")


def test_rings_live_in_leases_named_after_the_stack() -> None:
    cfg = rendered().config
    assert cfg.auth_enabled is True
    assert cfg.ring.kvstore.store == "kubernetes"
    assert cfg.ring.kvstore.kubernetes.namespace == "observability"
    assert cfg.ring.kvstore.kubernetes.lease_prefix == "logs-ring"
    assert cfg.ring.instance_id == ""  # the pod name, which a StatefulSet keeps stable
    assert cfg.ring.replication_factor == 3
    distributors = cfg.distributor.ring.kvstore
    assert (distributors.store, distributors.kubernetes.lease_prefix) == (
        "kubernetes",
        "logs-distributor",
    )
    assert cfg.querier.frontend_dns == (
        "logs-query-frontend-grpc.observability.svc.cluster.local:9095"
    )


def test_paths_are_on_the_pod_volumes() -> None:
    cfg = rendered().config
    assert cfg.ingester.wal.dir == "/var/lokistack/wal"
    assert cfg.ingester.index_dir == "/var/lokistack/index"
    assert cfg.querier.index_cache_dir == "/var/lokistack/index-cache"
    assert cfg.compactor.working_directory == "/var/lokistack/compactor"
    assert cfg.ingester.flush_on_shutdown is True


def test_global_limits_are_the_preset_under_the_spec() -> None:
    limits = rendered().config.limits
    assert limits.ingestion_rate_mb == 40.0  # spec
    assert limits.ingestion_burst_size_mb == 20.0  # 1x.medium preset
    assert limits.max_global_streams_per_user == 50000
    assert limits.max_label_names_per_series == 30
    assert limits.max_line_size == 256000
    assert limits.per_stream_rate_limit == 5 * MIB
    assert limits.per_stream_rate_limit_burst == 15 * MIB
    assert limits.query_timeout == datetime.timedelta(minutes=5)
    assert limits.max_entries_limit_per_query == 5000
    assert limits.max_query_series == 500


def test_tenant_overrides_go_to_the_runtime_config() -> None:
    result = rendered()
    runtime = config.parse_runtime_config(result.runtime_config_yaml, result.config.limits)
    assert sorted(runtime.overrides) == ["team-a", "team-b"]
    team_a, team_b = runtime.limits_for("team-a"), runtime.limits_for("team-b")
    assert team_a.ingestion_rate_mb == 80.0
    assert team_a.per_stream_rate_limit == 10 * MIB
    assert team_a.query_timeout == datetime.timedelta(minutes=5)  # inherits the global value
    assert team_b.max_query_series == 1000
    assert team_b.query_timeout == datetime.timedelta(minutes=10)
    assert team_b.ingestion_rate_mb == 40.0
    assert runtime.limits_for("someone-else") == result.config.limits
    assert "ingestion_burst_size_mb" not in result.runtime_config_yaml  # only what differs


def test_demo_has_no_overrides() -> None:
    result = rendered(DEMO_SPEC)
    assert config.parse_runtime_config(result.runtime_config_yaml).overrides == {}


@pytest.mark.parametrize(
    ("template", "ceiling"),
    [
        ({}, 512 * MIB),  # 1x.demo sets no memory: the floor
        ({"ingester": {"resources": {"requests": {"memory": "4Gi"}}}}, 2048 * MIB),
        ({"ingester": {"resources": {"limits": {"memory": "3Gi"}}}}, 1536 * MIB),
        ({"ingester": {"resources": {"requests": {"memory": "512Mi"}}}}, 512 * MIB),
    ],
)
def test_replay_ceiling_is_half_the_memory_with_a_floor(
    template: dict[str, Any], ceiling: int
) -> None:
    raw = {**DEMO_SPEC, "template": template}
    assert rendered(raw).config.ingester.wal.replay_memory_ceiling == ceiling


@pytest.mark.parametrize(
    ("size", "concurrency"), [("1x.demo", 4), ("1x.pico", 1), ("1x.small", 4), ("1x.medium", 6)]
)
def test_querier_concurrency_follows_its_cpu(size: str, concurrency: int) -> None:
    raw = {**DEMO_SPEC, "size": size}
    assert rendered(raw).config.querier.max_concurrent == concurrency


def test_config_hash_is_the_sha256_of_config_yaml() -> None:
    result = rendered()
    assert result.config_hash == config_mod.config_hash(result.config_yaml)
    assert len(result.config_hash) == 64
    assert rendered().config_hash == result.config_hash


def test_changing_a_tenant_limit_rolls_no_pod() -> None:
    changed = copy.deepcopy(dict(MEDIUM_SPEC))
    changed["limits"]["tenants"]["team-a"]["ingestion"]["ingestionRate"] = 99
    changed["limits"]["tenants"]["team-c"] = {"queries": {"maxQuerySeries": 10}}
    before, after = rendered(), rendered(changed)
    assert before.runtime_config_yaml != after.runtime_config_yaml
    assert before.config_yaml == after.config_yaml
    assert before.config_hash == after.config_hash
    assert pod_templates(make_stack(MEDIUM_SPEC)) == pod_templates(make_stack(changed))


def test_changing_a_config_field_rolls_every_pod() -> None:
    changed = copy.deepcopy(dict(MEDIUM_SPEC))
    changed["limits"]["global"]["ingestion"]["ingestionRate"] = 41
    assert rendered().config_hash != rendered(changed).config_hash
    before, after = pod_templates(make_stack(MEDIUM_SPEC)), pod_templates(make_stack(changed))
    for name, template in before.items():
        old = template["metadata"]["annotations"]["lokistack.dev/config-hash"]
        new = after[name]["metadata"]["annotations"]["lokistack.dev/config-hash"]
        assert old != new, name


def test_new_credentials_roll_only_the_pods_that_use_them() -> None:
    rotated = {**SECRET_DATA, "access_key_secret": "rotated"}
    before = pod_templates(make_stack(MEDIUM_SPEC))
    after = pod_templates(make_stack(MEDIUM_SPEC, secret=rotated))
    changed = sorted(name for name in before if before[name] != after[name])
    assert changed == ["logs-compactor", "logs-ingester", "logs-querier"]
    assert rendered().config_hash == rendered(secret=rotated).config_hash
    annotation = after["logs-ingester"]["metadata"]["annotations"]
    assert annotation["lokistack.dev/storage-secret-hash"] == storage.secret_hash(rotated)


def test_a_new_endpoint_changes_the_config() -> None:
    moved = {**SECRET_DATA, "endpoint": "https://minio.other.svc:9000"}
    assert rendered().config_hash != rendered(secret=moved).config_hash
    assert rendered(secret=moved).config.storage.s3.insecure is False
