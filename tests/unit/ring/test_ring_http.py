"""The ring status page."""

from __future__ import annotations

import datetime
import json

from lokistack.ring import http, model, ring
from lokistack.ring.kv import memory

NOW = 1_700_000_000.0


def status_of(*members: model.InstanceDesc) -> dict[str, object]:
    store = memory.MemoryRingStore(model.RingDesc.of(members))
    the_ring = ring.Ring(store, 3, datetime.timedelta(minutes=1), name="ingester")
    return http.ring_status(the_ring, NOW)


def test_status_lists_members() -> None:
    status = status_of(
        model.InstanceDesc.create(
            "b", "b:9095", tokens=[10, 20], heartbeat=NOW - 5, registered=NOW - 60
        ),
        model.InstanceDesc.create(
            "a",
            "a:9095",
            zone="z1",
            tokens=[30],
            heartbeat=NOW - 120,
            state=model.InstanceState.LEAVING,
        ),
    )
    json.dumps(status)  # JSON-able
    assert status["tokens_total"] == 3
    assert status["healthy_instances"] == 1
    instances = status["instances"]
    assert isinstance(instances, list)
    assert [i["id"] for i in instances] == ["a", "b"]
    a, b = instances
    assert a == {
        "id": "a",
        "addr": "a:9095",
        "zone": "z1",
        "state": "LEAVING",
        "tokens": 1,
        "ownership_percent": a["ownership_percent"],
        "heartbeat": "2023-11-14T22:11:20Z",
        "heartbeat_ago_seconds": 120.0,
        "registered": "",
        "healthy": False,
    }
    assert b["healthy"] is True and b["heartbeat_ago_seconds"] == 5.0
    assert a["ownership_percent"] + b["ownership_percent"] == 100.0


def test_html_escapes_everything() -> None:
    status = status_of(model.InstanceDesc.create("<script>x</script>", "a&b:1", heartbeat=NOW))
    page = http.ring_status_html(status)
    assert "<script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert "a&amp;b:1" in page
    assert "ingester ring status" in page


def test_html_of_an_empty_ring() -> None:
    page = http.ring_status_html(status_of())
    assert "no members" in page
    assert page.startswith("<!DOCTYPE html>")
