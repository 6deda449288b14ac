"""The per-app sync machinery: clock, repository, group committer, outbox relay and tombstone GC."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import asyncpg

from media_gateway.core.app import ServiceContext
from media_gateway.core.events import make_event_bus
from media_gateway.core.events.outbox import OutboxRelay
from media_gateway.sync.committer import CommitMetrics, GroupCommitter
from media_gateway.sync.crdt.hlc import HybridLogicalClock
from media_gateway.sync.models import outbox
from media_gateway.sync.mutations import Mutation
from media_gateway.sync.oplog import SyncOperation, publish_committed
from media_gateway.sync.repository import BatchOutcome, PostgresSyncRepository
from media_gateway.sync.service import SyncService

logger = logging.getLogger(__name__)

SERVICE_KEY = "sync_service"
# One hybrid logical clock per process stamps every operation, watchlist and device alike.
CLOCK_KEY = "sync_clock"


def sync_clock(ctx: ServiceContext) -> HybridLogicalClock:
    clock = ctx.extras.get(CLOCK_KEY)
    if not isinstance(clock, HybridLogicalClock):
        raise RuntimeError("the sync runtime is not running (app started without its lifespan?)")
    return clock


def sync_service(ctx: ServiceContext) -> SyncService:
    service = ctx.extras.get(SERVICE_KEY)
    if not isinstance(service, SyncService):
        raise RuntimeError("the sync runtime is not running (app started without its lifespan?)")
    return service


@asynccontextmanager
async def sync_runtime(ctx: ServiceContext) -> AsyncIterator[None]:
    settings = ctx.settings.sync
    # Each process has its own node id; replicas' clocks meet through the timestamps they store.
    clock = HybridLogicalClock(
        f"srv-{uuid.uuid4().hex[:12]}", max_drift_ms=settings.max_clock_drift_sec * 1000
    )
    repository = PostgresSyncRepository(ctx.engine, settings.completion_threshold)
    bus = make_event_bus(ctx.settings, ctx.redis)
    relay = OutboxRelay(
        ctx.engine, outbox, bus, interval_sec=settings.outbox_relay_interval_sec, name="sync-outbox-relay"
    )

    async def apply(conn: asyncpg.Connection, mutations: Sequence[Mutation]) -> BatchOutcome:
        return await repository.apply(conn, mutations, clock)

    async def after_commit(operations: list[SyncOperation]) -> None:
        relay.wake()
        await publish_committed(ctx.redis, ctx.settings, operations)

    committer = GroupCommitter(
        ctx.engine,
        apply,
        window_ms=settings.group_commit_window_ms,
        max_ops=settings.group_commit_max_ops,
        metrics=CommitMetrics.of(ctx.registry),
        after_commit=after_commit,
    )
    service = SyncService(settings, repository, committer)
    await committer.start()
    await relay.start()
    relay.wake()  # what a crashed process left in the outbox goes out now
    gc_task = asyncio.create_task(_collect_tombstones(service, settings.gc_interval_sec), name="sync-gc")
    ctx.extras[SERVICE_KEY] = service
    ctx.extras[CLOCK_KEY] = clock
    try:
        yield
    finally:
        ctx.extras.pop(SERVICE_KEY, None)
        ctx.extras.pop(CLOCK_KEY, None)
        gc_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gc_task
        await committer.aclose()
        await relay.aclose()
        await bus.aclose()


async def _collect_tombstones(service: SyncService, interval_sec: float) -> None:
    if interval_sec <= 0:
        return
    while True:
        try:
            dropped = await service.collect_tombstones()
            if dropped:
                logger.info("collected watchlist tombstones", extra={"count": dropped})
        except Exception:
            logger.warning("tombstone collection failed", exc_info=True)
        await asyncio.sleep(interval_sec)
