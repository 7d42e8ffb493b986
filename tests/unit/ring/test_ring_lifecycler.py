"""A member's life in the ring, on the in-memory store."""

from __future__ import annotations

import asyncio
import datetime
import logging
import pathlib
import random

import pytest
from lokistack.ring import lifecycler, model, tokens
from lokistack.ring.kv import memory

S = model.InstanceState
PERIOD = datetime.timedelta(milliseconds=50)


class RecordingStore(memory.MemoryRingStore):
    """Remembers every state written, and can fail a number of writes."""

    def __init__(self, initial: model.RingDesc | None = None) -> None:
        super().__init__(initial)
        self.states: list[model.InstanceState] = []
        self.failures = 0

    async def put(self, instance: model.InstanceDesc) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("API server unavailable")
        self.states.append(instance.state)
        await super().put(instance)


def new(
    store: memory.MemoryRingStore,
    tokens_file: pathlib.Path | None = None,
    *,
    instance_id: str = "ingester-0",
    num_tokens: int = 128,
    rng: random.Random | None = None,
) -> lifecycler.Lifecycler:
    return lifecycler.Lifecycler(
        store,
        instance_id,
        f"{instance_id}:9095",
        "zone-a",
        num_tokens,
        PERIOD,
        tokens_file,
        rng=rng,
    )


async def eventually(probe: object, within: float = 2.0) -> None:
    assert callable(probe)
    deadline = asyncio.get_running_loop().time() + within
    while not probe():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


async def test_join_goes_pending_then_active_with_tokens(tmp_path: pathlib.Path) -> None:
    store = RecordingStore()
    member = new(store, tmp_path / "tokens.json")
    await member.start()
    try:
        desc = store.snapshot().get("ingester-0")
        assert desc is not None
        assert desc.state is S.ACTIVE and member.is_active() and member.state is S.ACTIVE
        assert len(desc.tokens) == 128 and desc.tokens == member.tokens
        assert (desc.addr, desc.zone) == ("ingester-0:9095", "zone-a")
        assert store.states[:2] == [S.PENDING, S.ACTIVE]
        assert tokens.load_tokens(tmp_path / "tokens.json") == list(desc.tokens)
        with pytest.raises(RuntimeError, match="already started"):
            await member.start()
    finally:
        await member.stop()


async def test_restart_with_tokens_file_keeps_tokens(tmp_path: pathlib.Path) -> None:
    store = RecordingStore()
    first = new(store, tmp_path / "tokens.json")
    await first.start()
    await first.stop()
    assert store.snapshot().get("ingester-0") is None

    store.states.clear()
    second = new(store, tmp_path / "tokens.json")
    await second.start()
    try:
        assert second.tokens == first.tokens
        assert store.states[0] is S.ACTIVE, "registers directly ACTIVE"
    finally:
        await second.stop(delete_tokens_file=True)
    assert not (tmp_path / "tokens.json").exists()


async def test_short_tokens_file_is_completed(tmp_path: pathlib.Path) -> None:
    tokens.save_tokens(tmp_path / "tokens.json", [1, 2, 3])
    store = RecordingStore()
    member = new(store, tmp_path / "tokens.json", num_tokens=8)
    await member.start()
    try:
        assert len(member.tokens) == 8 and {1, 2, 3} <= set(member.tokens)
        assert store.states[:2] == [S.PENDING, S.ACTIVE]
        assert tokens.load_tokens(tmp_path / "tokens.json") == list(member.tokens)
    finally:
        await member.stop()


async def test_leave_then_stop() -> None:
    store = memory.MemoryRingStore()
    member = new(store)
    await member.start()
    await member.leave()
    left = store.snapshot().get("ingester-0")
    assert left is not None and left.state is S.LEAVING and not member.is_active()
    await eventually(lambda: store.snapshot().instances["ingester-0"].heartbeat > left.heartbeat)
    assert store.snapshot().instances["ingester-0"].state is S.LEAVING, "heartbeats keep LEAVING"
    await member.stop()
    assert store.snapshot().get("ingester-0") is None


async def test_stop_without_unregister_keeps_the_entry() -> None:
    store = memory.MemoryRingStore()
    member = new(store)
    await member.start()
    await member.stop(unregister=False)
    kept = store.snapshot().get("ingester-0")
    assert kept is not None and kept.state is S.ACTIVE
    await asyncio.sleep(PERIOD.total_seconds() * 3)
    assert store.snapshot().instances["ingester-0"].heartbeat == kept.heartbeat, "no heartbeats"


async def test_heartbeat_advances() -> None:
    store = memory.MemoryRingStore()
    member = new(store)
    await member.start()
    try:
        joined = store.snapshot().instances["ingester-0"]
        await eventually(
            lambda: store.snapshot().instances["ingester-0"].heartbeat > joined.heartbeat
        )
        assert store.snapshot().instances["ingester-0"].registered == joined.registered
    finally:
        await member.stop()


async def test_leaving_entry_is_taken_back_with_its_tokens(tmp_path: pathlib.Path) -> None:
    old = model.InstanceDesc.create(
        "ingester-0", "old:9095", state=S.LEAVING, tokens=range(1, 129), registered=123.0
    )
    store = memory.MemoryRingStore(model.RingDesc.of([old]))
    tokens.save_tokens(tmp_path / "tokens.json", range(1000, 1128))
    member = new(store, tmp_path / "tokens.json")
    await member.start()
    assert tokens.load_tokens(tmp_path / "tokens.json") == list(range(1, 129)), "ring wins"
    try:
        desc = store.snapshot().instances["ingester-0"]
        assert desc.state is S.ACTIVE
        assert desc.tokens == old.tokens
        assert desc.registered == 123.0
        assert desc.addr == "ingester-0:9095", "the new address replaces the old one"
    finally:
        await member.stop()


async def test_joining_entry_is_reset_and_joins() -> None:
    old = model.InstanceDesc.create("ingester-0", "x:9095", state=S.JOINING, tokens=[5])
    store = RecordingStore(model.RingDesc.of([old]))
    member = new(store, num_tokens=4)
    await member.start()
    try:
        assert store.states[:2] == [S.PENDING, S.ACTIVE]
        assert len(member.tokens) == 4 and 5 in member.tokens
    finally:
        await member.stop()


async def test_members_avoid_each_others_tokens() -> None:
    store = memory.MemoryRingStore()
    first = new(store, instance_id="a", rng=random.Random(3))
    second = new(store, instance_id="b", rng=random.Random(3))  # same draws
    await first.start()
    await second.start()
    try:
        assert not set(first.tokens) & set(second.tokens)
        assert len(second.tokens) == 128
    finally:
        await first.stop()
        await second.stop()


async def test_failed_heartbeats_are_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    store = RecordingStore()
    member = new(store)
    await member.start()
    try:
        joined = store.snapshot().instances["ingester-0"]
        with caplog.at_level(logging.WARNING, logger="lokistack.ring.lifecycler"):
            store.failures = 2
            await eventually(
                lambda: store.snapshot().instances["ingester-0"].heartbeat > joined.heartbeat
            )
        assert store.failures == 0
        assert sum("heartbeat" in r.getMessage() for r in caplog.records) == 2
    finally:
        await member.stop()


async def test_distributor_style_member_without_tokens() -> None:
    store = memory.MemoryRingStore()
    member = new(store, instance_id="distributor-0", num_tokens=0)
    await member.start()
    try:
        desc = store.snapshot().instances["distributor-0"]
        assert desc.state is S.ACTIVE and desc.tokens == ()
    finally:
        await member.stop()


def test_rejects_bad_settings() -> None:
    store = memory.MemoryRingStore()
    with pytest.raises(ValueError, match="num_tokens"):
        new(store, num_tokens=-1)
    with pytest.raises(ValueError, match="heartbeat_period"):
        lifecycler.Lifecycler(store, "a", "a:1", "", 1, datetime.timedelta(0), None)


async def test_failed_registration_can_be_retried() -> None:
    store = RecordingStore()
    store.failures = 1
    member = new(store)
    with pytest.raises(ConnectionError):
        await member.start()
    await member.start()
    try:
        assert member.is_active()
    finally:
        await member.stop()
