"""The LokiStack status: pod maps, the main condition, ring health, condition merging."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from lokistack_operator import status

T0 = datetime.datetime(2026, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)
T1 = T0 + datetime.timedelta(minutes=5)
COMPONENTS = ("distributor", "ingester", "querier", "query-frontend", "compactor")


def pod(
    name: str,
    component: str,
    phase: str = "Running",
    ready: bool | None = True,
    **metadata: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": name, "labels": {status.COMPONENT_LABEL: component}, **metadata},
        "status": {"phase": phase},
    }
    if ready is not None:
        body["status"]["containerStatuses"] = [{"name": "lokistack", "ready": ready}]
    return body


def lease(
    holder: str, state: str = "ACTIVE", renewed: datetime.datetime = T0, duration: int = 60
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"lokistack-ring-ingester-{holder}",
            "annotations": {status.RING_STATE_ANNOTATION: state},
        },
        "spec": {
            "holderIdentity": holder,
            "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "leaseDurationSeconds": duration,
        },
    }


# Pods ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "ready", "expected"),
    [
        ("Pending", None, "Pending"),
        ("Failed", None, "Failed"),
        ("Running", True, "Ready"),
        ("Running", False, "Running"),
        ("Running", None, "Running"),  # no container statuses yet: not known to be ready
        ("Succeeded", None, "Unknown"),
        ("", None, "Unknown"),
    ],
)
def test_pod_state_follows_phase_and_readiness(
    phase: str, ready: bool | None, expected: str
) -> None:
    assert status.pod_state(pod("p", "ingester", phase, ready)) == expected


def test_pod_not_ready_when_one_container_is_not() -> None:
    body = pod("p", "ingester")
    body["status"]["containerStatuses"].append({"name": "sidecar", "ready": False})
    assert status.pod_state(body) == "Running"


def test_component_pods_lists_every_component_with_four_keys() -> None:
    pods = [
        pod("s-ingester-1", "ingester"),
        pod("s-ingester-0", "ingester"),
        pod("s-query-frontend-abc", "query-frontend", "Pending", None),
        pod("s-querier-x", "querier", "Running", False),
        pod("s-querier-y", "querier", "Failed", None),
        pod("s-ingester-2", "ingester", deletionTimestamp="2026-05-01T12:00:00Z"),
        {"metadata": {"name": "unlabelled"}, "status": {"phase": "Running"}},
    ]
    components = status.component_pods(pods, COMPONENTS)
    assert set(components) == {"distributor", "ingester", "querier", "queryFrontend", "compactor"}
    assert components["distributor"] == {"Pending": [], "Running": [], "Ready": [], "Failed": []}
    assert components["ingester"]["Ready"] == ["s-ingester-0", "s-ingester-1"]  # sorted
    assert components["queryFrontend"]["Pending"] == ["s-query-frontend-abc"]
    assert components["querier"]["Running"] == ["s-querier-x"]
    assert components["querier"]["Failed"] == ["s-querier-y"]


def test_unknown_pods_get_their_own_list() -> None:
    components = status.component_pods([pod("x", "compactor", "Succeeded", None)], COMPONENTS)
    assert components["compactor"]["Unknown"] == ["x"]
    assert "Unknown" not in components["ingester"]


def test_status_key_is_camel_case() -> None:
    assert status.status_key("query-frontend") == "queryFrontend"
    assert status.status_key("ingester") == "ingester"


def _components(**states: dict[str, list[str]]) -> dict[str, dict[str, list[str]]]:
    empty: dict[str, list[str]] = {"Pending": [], "Running": [], "Ready": [], "Failed": []}
    return {key: {**empty, **states.get(key, {})} for key in ("ingester", "querier")}


def test_failed_outranks_pending_outranks_not_ready() -> None:
    failed = _components(ingester={"Failed": ["a"], "Pending": ["b"]}, querier={"Running": ["c"]})
    assert status.components_condition(failed, {}) == status.Condition(
        status.FAILED, status.REASON_FAILED, status.MESSAGE_FAILED
    )
    pending = _components(ingester={"Pending": ["b"]}, querier={"Running": ["c"]})
    assert status.components_condition(pending, {}).message == status.MESSAGE_PENDING
    running = _components(querier={"Running": ["c"]})
    condition = status.components_condition(running, {})
    assert (condition.type, condition.reason) == (status.PENDING, status.REASON_PENDING)
    assert condition.message == status.MESSAGE_NOT_READY


def test_ready_needs_the_desired_number_of_ready_pods() -> None:
    components = _components(ingester={"Ready": ["a", "b"]}, querier={"Ready": ["q"]})
    assert status.components_condition(components, {"ingester": 3}).type == status.PENDING
    ready = status.components_condition(components, {"ingester": 2, "querier": 1})
    assert ready == status.Condition(status.READY, status.REASON_READY, "All components ready")
    # Desired counts may use label values (query-frontend) as keys.
    assert status.components_condition(components, {"query-frontend": 1}).type == status.PENDING


def test_degraded_replaces_the_component_condition_and_keeps_warnings() -> None:
    ready = status.Condition(status.READY, status.REASON_READY, status.MESSAGE_READY)
    warning = status.insufficient_ingesters(2, 2)
    active = status.active_conditions(
        degraded=status.missing_secret(), components=ready, warnings=[warning, None]
    )
    assert active == [status.missing_secret(), warning]
    assert status.active_conditions(degraded=None, components=ready) == [ready]


def test_condition_messages_match_the_loki_operator() -> None:
    assert status.missing_secret() == status.Condition(
        "Degraded", "MissingObjectStorageSecret", "Missing object storage secret"
    )
    assert status.invalid_secret("missing secret field: endpoint") == status.Condition(
        "Degraded",
        "InvalidObjectStorageSecret",
        "Invalid object storage secret contents: missing secret field: endpoint",
    )
    unreachable = status.unreachable_storage("bucket 'x' does not exist")
    assert (unreachable.type, unreachable.reason) == ("Degraded", "ObjectStorageUnreachable")
    assert "bucket 'x' does not exist" in unreachable.message
    insufficient = status.insufficient_ingesters(1, 1)
    assert (insufficient.type, insufficient.reason) == ("Warning", "InsufficientIngesterReplicas")
    assert "ingester replicas (1)" in insufficient.message
    assert "replication factor (1)" in insufficient.message
    scaling = status.scaling_down("s-ingester-2", 3, 2)
    assert (scaling.type, scaling.reason) == ("Warning", "ScalingDownIngesters")
    assert "s-ingester-2" in scaling.message
    assert "from 3 to 2" in scaling.message
    assert status.invalid_spec("spec.size: bad").reason == "InvalidLokiStackSpec"
    assert status.unmanaged().reason == "ManagementStateUnmanaged"


# Ring ------------------------------------------------------------------------------------------


def test_ring_health_groups_members_and_finds_stale_heartbeats() -> None:
    now = T0 + datetime.timedelta(seconds=90)
    leases = [
        lease("s-ingester-0", renewed=now - datetime.timedelta(seconds=5)),
        lease("s-ingester-1", "LEAVING", renewed=now - datetime.timedelta(seconds=5)),
        lease("s-ingester-2", renewed=T0),  # 90 s old with a 60 s timeout
        lease("s-ingester-3", renewed=T0, duration=120),  # 90 s old with a 120 s timeout
        {"metadata": {"name": "empty"}, "spec": {}},  # no holder: ignored
    ]
    ring = status.ring_health(leases, now, pods=["s-ingester-0", "s-ingester-1", "s-ingester-3"])
    assert ring == {
        "members": 4,
        "states": {
            "ACTIVE": ["s-ingester-0", "s-ingester-2", "s-ingester-3"],
            "LEAVING": ["s-ingester-1"],
        },
        "unhealthy": ["s-ingester-2"],
        "withoutPod": ["s-ingester-2"],
    }
    condition = status.ring_condition(ring)
    assert condition is not None
    assert (condition.type, condition.reason) == ("Warning", "UnhealthyRingMembers")
    assert "s-ingester-2" in condition.message


def test_ring_health_of_a_healthy_or_empty_ring() -> None:
    ring = status.ring_health([lease("a", renewed=T0)], T0)
    assert ring["unhealthy"] == []
    assert ring["withoutPod"] == []  # no pods given: nothing to compare with
    assert status.ring_condition(ring) is None
    assert status.ring_health([], T0) == {
        "members": 0,
        "states": {},
        "unhealthy": [],
        "withoutPod": [],
    }


def test_a_lease_without_a_valid_renew_time_is_unhealthy() -> None:
    broken = lease("a")
    broken["spec"]["renewTime"] = "yesterday"
    assert status.ring_health([broken], T0)["unhealthy"] == ["a"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-01T12:00:00.000000Z", T0),
        ("2026-05-01T12:00:00Z", T0),
        ("2026-05-01T12:00:00", T0),
        ("", None),
        (None, None),
        ("not a time", None),
    ],
)
def test_parse_time(text: str | None, expected: datetime.datetime | None) -> None:
    assert status.parse_time(text) == expected


# Conditions ------------------------------------------------------------------------------------


def test_new_conditions_are_true_with_the_current_time_and_generation() -> None:
    merged = status.merge_conditions([], [status.missing_secret()], T0, generation=3)
    assert merged == [
        {
            "type": "Degraded",
            "status": "True",
            "reason": "MissingObjectStorageSecret",
            "message": "Missing object storage secret",
            "lastTransitionTime": "2026-05-01T12:00:00Z",
            "observedGeneration": 3,
        }
    ]


def test_unchanged_conditions_keep_their_transition_time() -> None:
    first = status.merge_conditions([], [status.missing_secret()], T0, generation=1)
    again = status.merge_conditions(first, [status.missing_secret()], T1, generation=2)
    assert again[0]["lastTransitionTime"] == "2026-05-01T12:00:00Z"
    assert again[0]["observedGeneration"] == 2


def test_earlier_conditions_flip_to_false_and_stay_as_history() -> None:
    ready = status.Condition(status.READY, status.REASON_READY, status.MESSAGE_READY)
    first = status.merge_conditions([], [status.missing_secret()], T0, 1)
    second = status.merge_conditions(first, [ready], T1, 1)
    by_reason = {item["reason"]: item for item in second}
    assert by_reason["MissingObjectStorageSecret"]["status"] == "False"
    assert by_reason["MissingObjectStorageSecret"]["lastTransitionTime"] == "2026-05-01T12:05:00Z"
    assert by_reason["ReadyComponents"]["status"] == "True"
    # A later merge with the same active set changes nothing.
    third = status.merge_conditions(second, [ready], T1 + datetime.timedelta(hours=1), 1)
    assert third == second
    # Back to degraded: the old entry turns True again with a new transition time.
    later = T1 + datetime.timedelta(hours=2)
    fourth = {
        item["reason"]: item
        for item in status.merge_conditions(third, [status.missing_secret()], later, 1)
    }
    assert fourth["MissingObjectStorageSecret"]["status"] == "True"
    assert fourth["MissingObjectStorageSecret"]["lastTransitionTime"] == "2026-05-01T14:05:00Z"
    assert fourth["ReadyComponents"]["status"] == "False"


def test_message_updates_without_a_transition() -> None:
    first = status.merge_conditions([], [status.scaling_down("s-ingester-2", 3, 1)], T0, 1)
    second = status.merge_conditions(first, [status.scaling_down("s-ingester-1", 3, 1)], T1, 1)
    assert len(second) == 1
    assert "s-ingester-1" in second[0]["message"]
    assert second[0]["lastTransitionTime"] == "2026-05-01T12:00:00Z"


def test_several_warnings_can_be_active_at_once() -> None:
    warnings = [status.insufficient_ingesters(1, 1), status.scaling_down("p", 2, 1)]
    merged = status.merge_conditions([], warnings, T0, 1)
    assert [item["reason"] for item in merged] == [
        "InsufficientIngesterReplicas",
        "ScalingDownIngesters",
    ]
    assert all(item["status"] == "True" for item in merged)


def test_build_status_carries_components_ring_and_generation() -> None:
    components = status.component_pods([pod("s-ingester-0", "ingester")], COMPONENTS)
    ring = status.ring_health([lease("s-ingester-0")], T0)
    ready = status.Condition(status.READY, status.REASON_READY, status.MESSAGE_READY)
    built = status.build_status(
        None, active=[ready], generation=4, now=T0, components=components, ring=ring
    )
    assert built["observedGeneration"] == 4
    assert built["components"]["ingester"]["Ready"] == ["s-ingester-0"]
    assert built["ring"] == {"ingester": ring}
    assert [item["reason"] for item in built["conditions"]] == ["ReadyComponents"]
    # Without new observations the earlier components and ring are kept.
    kept = status.build_status(built, active=[ready], generation=5, now=T1)
    assert kept["components"] == built["components"]
    assert kept["ring"] == built["ring"]
    assert kept["observedGeneration"] == 5


def test_same_status_detects_no_op_writes() -> None:
    ready = status.Condition(status.READY, status.REASON_READY, status.MESSAGE_READY)
    built = status.build_status(None, active=[ready], generation=1, now=T0, components={})
    again = status.build_status(built, active=[ready], generation=1, now=T1, components={})
    assert status.same_status(built, again)
    assert not status.same_status(None, again)
    moved = status.build_status(built, active=[ready], generation=2, now=T1, components={})
    assert not status.same_status(built, moved)


def test_with_condition_adds_one_and_leaves_the_rest() -> None:
    ready = status.Condition(status.READY, status.REASON_READY, status.MESSAGE_READY)
    built = status.build_status(None, active=[ready], generation=1, now=T0, components={})
    unmanaged = status.with_condition(built, status.unmanaged(), 2, T1)
    by_reason = {item["reason"]: item for item in unmanaged["conditions"]}
    assert by_reason["ReadyComponents"] == built["conditions"][0]  # untouched
    assert by_reason["ManagementStateUnmanaged"]["status"] == "True"
    assert by_reason["ManagementStateUnmanaged"]["lastTransitionTime"] == "2026-05-01T12:05:00Z"
    assert unmanaged["components"] == {}
    # Setting it again keeps its transition time, so nothing changes.
    again = status.with_condition(unmanaged, status.unmanaged(), 2, T1 + T1.resolution * 10**6)
    assert status.same_status(unmanaged, again)
    assert status.with_condition(None, status.unmanaged(), 1, T0)["conditions"][0]["status"] == (
        "True"
    )
