"""The transactional outbox: events written in the transaction of the change they describe, relayed
to the event bus after the commit, so an acknowledged write reaches the bus even if the process dies
right after committing.

Any table with a `seq` (identity, relay order), a `topic` (text) and an `event` (JSONB `Event`)
column is an outbox. The relay is woken after each commit, and runs every few seconds anyway to pick
up what a crashed replica left. An event is deleted only after the bus accepted it (at-least-once;
consumers dedupe on the id), and `FOR UPDATE SKIP LOCKED` keeps two replicas from sending the same
row at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from sqlalchemy import Table, Text, cast, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from media_gateway.core.events.base import Event, EventBus

logger = logging.getLogger(__name__)

_FINAL_DRAIN_SEC = 0.5
_COALESCE_SEC = 0.05


async def add_to_outbox(conn: AsyncConnection, outbox: Table, items: Sequence[tuple[str, Event]]) -> None:
    """Queue `(topic, event)` pairs in the caller's transaction."""
    if items:
        await conn.execute(
            insert(outbox),
            [{"topic": topic, "event": event.model_dump(mode="json")} for topic, event in items],
        )


async def take_outbox(conn: AsyncConnection, outbox: Table, limit: int) -> list[tuple[int, str, Event]]:
    """The oldest pending events, locked so that two relays never send the same one concurrently."""
    rows = await conn.execute(
        # As text: validating the JSON once is cheaper than decoding it to a dict first.
        select(outbox.c.seq, outbox.c.topic, cast(outbox.c.event, Text).label("event"))
        .order_by(outbox.c.seq)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [(r.seq, r.topic, Event.model_validate_json(r.event)) for r in rows]


async def delete_from_outbox(conn: AsyncConnection, outbox: Table, seqs: Sequence[int]) -> None:
    if seqs:
        await conn.execute(delete(outbox).where(outbox.c.seq.in_(list(seqs))))


class OutboxRelay:
    """Publishes the rows of one outbox table on the bus, oldest first, in the background."""

    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Table,
        bus: EventBus,
        *,
        interval_sec: float,
        batch_size: int = 500,
        name: str = "outbox-relay",
    ) -> None:
        self.engine = engine
        self.outbox = outbox
        self.bus = bus
        self.interval_sec = interval_sec
        self.batch_size = batch_size
        self.name = name
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def relay(self) -> int:
        """Publish every pending event, oldest first; returns how many were sent."""
        sent = 0
        while True:
            async with self.engine.begin() as conn:
                pending = await take_outbox(conn, self.outbox, self.batch_size)
                if not pending:
                    return sent
                await self.bus.publish_many([(topic, event) for _, topic, event in pending])
                await delete_from_outbox(conn, self.outbox, [seq for seq, _, _ in pending])
            sent += len(pending)
            if len(pending) < self.batch_size:
                return sent

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

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
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
            # arrives as the wait ends, and this loop then never stops (seen: a shutdown hung on it).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_sec):
                    await self._wake.wait()
                # Under load many commits wake the relay; gathering them costs a little latency on
                # the bus and saves a relay transaction per commit.
                await asyncio.sleep(_COALESCE_SEC)
            self._wake.clear()
            try:
                await self.relay()
            except Exception:
                logger.warning("%s failed; retrying later", self.name, exc_info=True)
