"""Member and ring descriptions."""

from __future__ import annotations

import dataclasses

import pytest
from lokistack.ring import model


def test_states_have_lokis_numbers() -> None:
    assert [(s.name, s.value) for s in model.InstanceState] == [
        ("ACTIVE", 0),
        ("LEAVING", 1),
        ("PENDING", 2),
        ("JOINING", 3),
        ("LEFT", 4),
    ]


def test_create_sorts_and_deduplicates_tokens() -> None:
    desc = model.InstanceDesc.create("a", "a:9095", tokens=[3, 1, 3, 2])
    assert desc.tokens == (1, 2, 3)
    with pytest.raises(ValueError, match="32-bit"):
        model.InstanceDesc.create("a", "a:9095", tokens=[2**32])
    with pytest.raises(dataclasses.FrozenInstanceError):
        desc.addr = "b"  # type: ignore[misc]


def test_heartbeat_health() -> None:
    desc = model.InstanceDesc.create("a", "a:9095", heartbeat=100.0)
    assert desc.heartbeat_healthy(60, now=160.0)
    assert not desc.heartbeat_healthy(60, now=160.5)
    assert desc.heartbeat_healthy(0, now=1e12), "a timeout of 0 disables the check"


def test_ring_desc_is_an_immutable_snapshot() -> None:
    a = model.InstanceDesc.create("a", "a:9095", tokens=[1, 2])
    b = model.InstanceDesc.create("b", "b:9095", tokens=[3])
    members = [a, b]
    desc = model.RingDesc.of(members)
    members.clear()
    assert len(desc) == 2
    assert desc.get("a") is a
    assert desc.get("zz") is None
    assert desc.taken_tokens() == {1, 2, 3}
    assert desc.taken_tokens(excluding="a") == {3}
    assert desc.tokens_total() == 3
    with pytest.raises(TypeError):
        desc.instances["c"] = a  # type: ignore[index]
    assert desc == model.RingDesc.of([b, a])
    assert len(model.RingDesc()) == 0
