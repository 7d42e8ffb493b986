"""One member's life in the ring: join, heartbeat, leave, unregister (dskit ``lifecycler.go``).

Joining follows reference/loki-write-path.md section 8 with ``join_after`` and
``observe_period`` at their default of 0:

- an entry already in the ring (a restart with ``unregister_on_shutdown`` off, or a crash) is
  taken over with its tokens; LEAVING goes back to ACTIVE and JOINING is reset to PENDING;
- otherwise, a tokens file holding at least ``num_tokens`` tokens registers the member directly
  as ACTIVE with them, so a restarted ingester keeps its streams;
- otherwise the member registers PENDING, draws the missing tokens (avoiding every token already
  taken) and becomes ACTIVE; the tokens are saved to the tokens file.

Heartbeats rewrite the whole member every ``heartbeat_period`` and continue while LEAVING (the
ingester is still flushing then).  A failed heartbeat is logged and retried at the next period:
a short API outage must not take an ingester out of service, and the ring's heartbeat timeout is
many periods long.  Every write goes through one lock, so a heartbeat can never overwrite a state
change with the old state.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import pathlib
import random
import time
from collections.abc import Callable

from lokistack.ring import kv, model, tokens

_log = logging.getLogger(__name__)
_State = model.InstanceState


class Lifecycler:
    """Registers one instance in a ring store and keeps its entry alive."""

    def __init__(  # noqa: PLR0917 - the positional signature other packages call
        self,
        store: kv.RingStore,
        instance_id: str,
        addr: str,
        zone: str,
        num_tokens: int,
        heartbeat_period: datetime.timedelta,
        tokens_file: pathlib.Path | None,
        *,
        ring_name: str = "ingester",
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        if num_tokens < 0:
            raise ValueError(f"num_tokens must not be negative, got {num_tokens}")
        if heartbeat_period <= datetime.timedelta(0):
            raise ValueError("heartbeat_period must be positive")
        self.instance_id = instance_id
        self.addr = addr
        self.zone = zone
        self.num_tokens = num_tokens
        self.heartbeat_period = heartbeat_period
        self.tokens_file = tokens_file
        self.ring_name = ring_name
        self._store = store
        self._clock = clock
        self._rng = rng
        self._state = _State.PENDING
        self._tokens: tuple[int, ...] = ()
        self._registered = 0.0
        self._lock = asyncio.Lock()
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._started = False

    @property
    def state(self) -> model.InstanceState:
        """The state this member last wrote (or is about to write)."""
        return self._state

    @property
    def tokens(self) -> tuple[int, ...]:
        """This member's tokens, sorted."""
        return self._tokens

    def is_active(self) -> bool:
        """True once joined and until :meth:`leave`."""
        return self._state is _State.ACTIVE

    def desc(self) -> model.InstanceDesc:
        """This member as it is written to the store, with the current time as heartbeat."""
        return model.InstanceDesc(
            id=self.instance_id,
            addr=self.addr,
            zone=self.zone,
            state=self._state,
            tokens=self._tokens,
            heartbeat=self._clock(),
            registered=self._registered,
        )

    async def start(self) -> None:
        """Join the ring (see the module doc) and start heartbeating; the store must be started."""
        if self._started:
            raise RuntimeError(f"lifecycler {self.instance_id!r} already started")
        self._started = True
        try:
            await self._register()
        except BaseException:
            self._started = False
            raise
        self._heartbeat_task = asyncio.create_task(
            self._heartbeat_loop(), name=f"ring-heartbeat-{self.ring_name}-{self.instance_id}"
        )

    async def _register(self) -> None:
        existing = self._store.snapshot().get(self.instance_id)
        from_file: list[int] | None = None
        if self.tokens_file is not None:
            from_file = await asyncio.to_thread(tokens.load_tokens, self.tokens_file)
        if existing is not None:
            await self._resume(existing)
        elif from_file is not None and self.num_tokens > 0 and len(from_file) >= self.num_tokens:
            _log.info(
                "joining %s ring with %d tokens from %s",
                self.ring_name,
                len(from_file),
                self.tokens_file,
            )
            self._tokens = tuple(from_file)
            self._registered = self._clock()
            await self._write(_State.ACTIVE)
        else:
            self._registered = self._clock()
            self._tokens = tuple(from_file or ())
            await self._write(_State.PENDING)
        if self._state is _State.PENDING:
            await self._join()

    async def _resume(self, existing: model.InstanceDesc) -> None:
        _log.info(
            "existing instance %s found in %s ring: state %s, %d tokens",
            self.instance_id,
            self.ring_name,
            existing.state.name,
            len(existing.tokens),
        )
        self._tokens = existing.tokens
        self._registered = existing.registered or self._clock()
        state = existing.state
        if state is _State.LEAVING:
            state = _State.ACTIVE
        elif state in (_State.JOINING, _State.LEFT):
            state = _State.PENDING
        await self._write(state)
        if state is not _State.PENDING and self.tokens_file is not None and self._tokens:
            # Keep the file in step with the ring, which is the authority here.
            await asyncio.to_thread(tokens.save_tokens, self.tokens_file, self._tokens)

    async def _join(self) -> None:
        """PENDING to ACTIVE: draw the missing tokens, save them, announce them."""
        missing = self.num_tokens - len(self._tokens)
        if missing > 0:
            taken = self._store.snapshot().taken_tokens(excluding=self.instance_id)
            taken.update(self._tokens)
            drawn = tokens.generate_tokens(missing, taken, self._rng)
            self._tokens = tuple(sorted((*self._tokens, *drawn)))
        if self.tokens_file is not None and self._tokens:
            await asyncio.to_thread(tokens.save_tokens, self.tokens_file, self._tokens)
        await self._write(_State.ACTIVE)
        _log.info(
            "instance %s is ACTIVE in %s ring with %d tokens",
            self.instance_id,
            self.ring_name,
            len(self._tokens),
        )

    async def _write(self, state: model.InstanceState | None = None) -> None:
        async with self._lock:
            if state is not None:
                self._state = state
            await self._store.put(self.desc())

    async def heartbeat(self) -> None:
        """Write one heartbeat now (the background task calls this every period)."""
        await self._write()

    async def _heartbeat_loop(self) -> None:
        period = self.heartbeat_period.total_seconds()
        while True:
            await asyncio.sleep(period)
            try:
                await self.heartbeat()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # retried at the next period
                _log.warning(
                    "ring heartbeat of %s in %s ring failed: %s",
                    self.instance_id,
                    self.ring_name,
                    error,
                )

    async def leave(self) -> None:
        """Go LEAVING: replicas stop choosing this member for writes; heartbeats continue."""
        await self._write(_State.LEAVING)

    async def stop(self, unregister: bool = True, *, delete_tokens_file: bool = False) -> None:
        """Stop heartbeating and, by default, remove this member from the ring.

        With ``unregister=False`` the entry stays (Loki's ``unregister_on_shutdown: false``) and
        the next start takes it over.  ``delete_tokens_file`` is the shutdown endpoint's
        ``delete_ring_tokens``.
        """
        task, self._heartbeat_task = self._heartbeat_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if unregister:
            async with self._lock:
                await self._store.delete(self.instance_id)
                self._state = _State.LEFT
        if delete_tokens_file and self.tokens_file is not None:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(self.tokens_file.unlink)
        self._started = False
