"""Viewing events in: from apps (`POST /events`) and from the event bus (sync, playback), both
idempotent on the event id; and catalog events, which make the trainer rebuild the graph."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

from media_gateway.core.errors import ProblemError
from media_gateway.core.events import Event, EventBus, run_consumer
from media_gateway.sona.repository import catalog, interactions
from media_gateway.sona.runtime import SonaRuntime
from media_gateway.sona.schemas import EventBatch, EventBatchResult, EventIn
from media_gateway.sona.signals import InteractionRow, bus_interaction, completion_of

logger = logging.getLogger(__name__)

GROUP: Final = "sona"
ACTIVITY_TOPICS: Final = (
    "user.activity",
    "playback.session_started",
    "playback.position_updated",
    "playback.session_ended",
)
CATALOG_GROUP: Final = "sona-catalog"
CATALOG_TOPICS: Final = ("content.ingested", "content.updated", "content.availability_changed")
# A bulk ingest sends thousands of catalog events; one rebuild after it goes quiet is enough.
CATALOG_QUIET_SEC: Final = 5.0
# Clocks disagree a little; an event from further in the future is a client bug.
MAX_CLOCK_SKEW: Final = timedelta(minutes=5)


def _api_row(user_id: uuid.UUID, event: EventIn, now: datetime) -> InteractionRow:
    occurred = event.occurred_at.astimezone(UTC) if event.occurred_at is not None else now
    value: float | None = None
    if event.type == "rated":
        value = float(event.rating) if event.rating is not None else None
    elif event.type in ("progress", "completed", "started"):
        value = completion_of(
            {
                "completion": event.completion,
                "position_seconds": event.position_seconds,
                "duration_seconds": event.duration_seconds,
            }
        )
        if event.type == "completed" and value is None:
            value = 1.0
    return InteractionRow(
        user_id=user_id,
        event_id=event.event_id,
        content_id=event.content_id,
        kind=event.type,
        value=value,
        occurred_at=occurred,
        source="api",
    )


async def record_api_events(runtime: SonaRuntime, user_id: uuid.UUID, batch: EventBatch) -> EventBatchResult:
    """All events of the batch or none: unknown titles or future timestamps refuse the whole batch."""
    now = datetime.now(UTC)
    rows = [_api_row(user_id, event, now) for event in batch.events]
    late = [str(r.event_id) for r in rows if r.occurred_at > now + MAX_CLOCK_SKEW]
    if late:
        raise ProblemError(422, f"events from the future: {', '.join(late[:10])}")
    async with runtime.engine.begin() as conn:
        known = await catalog.existing_ids(conn, [r.content_id for r in rows])
        unknown = sorted({str(r.content_id) for r in rows if r.content_id not in known})
        if unknown:
            raise ProblemError(422, f"unknown content ids: {', '.join(unknown[:10])}")
        new = await interactions.record_interactions(conn, rows)
    runtime.invalidate_users({str(user_id)})
    runtime.note_events(len(new))
    runtime.metrics.events.labels(source="api", outcome="recorded").inc(len(new))
    runtime.metrics.events.labels(source="api", outcome="duplicate").inc(len(rows) - len(new))
    return EventBatchResult(accepted=len(new), duplicates=len(rows) - len(new))


def consumer_name() -> str:
    return f"sona-{socket.gethostname()}-{os.getpid()}"


class EventConsumers:
    def __init__(self, runtime: SonaRuntime, bus: EventBus) -> None:
        self._runtime = runtime
        self._bus = bus
        self._stop = asyncio.Event()
        self._catalog_dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        name = consumer_name()
        for topic in ACTIVITY_TOPICS:
            # From the beginning of the stream: a new deployment learns from history it missed.
            consumer = run_consumer(
                self._bus, topic, GROUP, name, self.handle_activity, self._stop, count=200, start_id="0"
            )
            self._tasks.append(asyncio.create_task(consumer, name=f"sona-{topic}"))
        for topic in CATALOG_TOPICS:
            consumer = run_consumer(
                self._bus, topic, CATALOG_GROUP, name, self._handle_catalog, self._stop, count=500
            )
            self._tasks.append(asyncio.create_task(consumer, name=f"sona-catalog-{topic}"))
        self._tasks.append(asyncio.create_task(self._catalog_loop(), name="sona-catalog-refresh"))

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def handle_activity(self, event: Event) -> None:
        row = bus_interaction(event.id, event.type, event.payload, event.occurred_at)
        if row is None:
            return
        async with self._runtime.engine.begin() as conn:
            new = await interactions.record_interactions(conn, [row])
        self._runtime.metrics.events.labels(source="bus", outcome="recorded" if new else "duplicate").inc()
        if new:
            self._runtime.invalidate_users({str(row.user_id)})
            self._runtime.note_events(len(new))

    async def _handle_catalog(self, event: Event) -> None:
        self._catalog_dirty.set()

    async def _catalog_loop(self) -> None:
        while True:
            await self._catalog_dirty.wait()
            await asyncio.sleep(CATALOG_QUIET_SEC)
            self._catalog_dirty.clear()
            await self._runtime.refresh_catalog()
