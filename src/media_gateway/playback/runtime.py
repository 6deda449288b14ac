"""The per-app playback machinery: the service and the outbox relay that publishes its events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from media_gateway.core.app import ServiceContext
from media_gateway.core.events import make_event_bus
from media_gateway.core.events.outbox import OutboxRelay
from media_gateway.playback.metrics import PlaybackMetrics
from media_gateway.playback.models import outbox
from media_gateway.playback.service import PlaybackService

SERVICE_KEY = "playback_service"


def playback_service(ctx: ServiceContext) -> PlaybackService:
    service = ctx.extras.get(SERVICE_KEY)
    if not isinstance(service, PlaybackService):
        raise RuntimeError("the playback runtime is not running (app started without its lifespan?)")
    return service


@asynccontextmanager
async def playback_runtime(ctx: ServiceContext) -> AsyncIterator[None]:
    settings = ctx.settings.playback
    bus = make_event_bus(ctx.settings, ctx.redis)
    relay = OutboxRelay(
        ctx.engine, outbox, bus, interval_sec=settings.outbox_relay_interval_sec, name="playback-outbox-relay"
    )
    service = PlaybackService(ctx.engine, settings, PlaybackMetrics.for_registry(ctx.registry), relay.wake)
    await relay.start()
    relay.wake()  # what a crashed process left in the outbox goes out now
    ctx.extras[SERVICE_KEY] = service
    try:
        yield
    finally:
        ctx.extras.pop(SERVICE_KEY, None)
        await relay.aclose()
        await bus.aclose()
