"""Relays the events the group committer wrote to `sync.outbox` onto the event bus.

Woken after each commit, and every few seconds anyway to pick up what a crashed replica left.
An event is deleted only after the bus accepted it (at-least-once; consumers dedupe on the id), and
`FOR UPDATE SKIP LOCKED` keeps two replicas from sending the same row at once.

The same take-publish-delete loop exists in ingestion (`IngestionPipeline.relay_outbox`); a generic
outbox relay in core would serve both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from media_gateway.core.events import EventBus
from media_gateway.sync.repository import PostgresSyncRepository

logger = logging.getLogger(__name__)

_FINAL_DRAIN_SEC = 0.5
_COALESCE_SEC = 0.05


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        repository: PostgresSyncRepository,
        bus: EventBus,
        *,
        interval_sec: float,
        batch_size: int = 500,
    ) -> None:
        self.engine = engine
        self.repository = repository
        self.bus = bus
        self.interval_sec = interval_sec
        self.batch_size = batch_size
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def relay(self) -> int:
        """Publish every pending event, oldest first; returns how many were sent."""
        sent = 0
        while True:
            async with self.engine.begin() as conn:
                pending = await self.repository.take_outbox(conn, self.batch_size)
                if not pending:
                    return sent
                await self.bus.publish_many([(topic, event) for _, topic, event in pending])
                await self.repository.delete_outbox(conn, [seq for seq, _, _ in pending])
            sent += len(pending)
            if len(pending) < self.batch_size:
                return sent

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sync-outbox-relay")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        # A last drain, bounded: whatever is left goes out with the next process to start.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.relay(), _FINAL_DRAIN_SEC)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_sec)
                # Under load many commits wake the relay; gathering them costs a little latency on
                # the bus and saves a relay transaction per commit.
                await asyncio.sleep(_COALESCE_SEC)
            self._wake.clear()
            try:
                await self.relay()
            except Exception:
                logger.warning("sync outbox relay failed; retrying later", exc_info=True)
