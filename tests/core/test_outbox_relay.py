"""The outbox relay stops when closed, even when a wake-up and the stop arrive together."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from media_gateway.core.db import make_engine
from media_gateway.core.events import RedisStreamsEventBus
from media_gateway.core.events.outbox import OutboxRelay
from media_gateway.core.settings import Settings
from media_gateway.sync.models import outbox


async def test_close_wins_over_a_simultaneous_wake_up(migrated_settings: Settings) -> None:
    engine = make_engine(migrated_settings)
    redis = aioredis.from_url(migrated_settings.effective_redis_url)
    try:
        bus = RedisStreamsEventBus(redis, migrated_settings)
        # Each number of loop turns between the wake-up and the stop lands the stop at another point
        # of the relay's wait; the first ones hit the instant the wait has ended but not yet returned,
        # where a stop used to be lost and the relay ran on (a shutdown then hung on it).
        for turns in range(4):
            name = f"relay-under-test-{turns}"
            relay = OutboxRelay(engine, outbox, bus, interval_sec=30, name=name)
            await relay.start()
            await asyncio.sleep(0.05)
            relay.wake()
            for _ in range(turns):
                await asyncio.sleep(0)
            # Bounded, so the old behaviour fails the test instead of hanging the suite: there the
            # close only ended because this bound cancelled it (and with it the relay) a second time.
            async with asyncio.timeout(5) as bound:
                await relay.aclose()
            assert not bound.expired(), f"the relay went on after close ({turns} turns)"
            assert [t for t in asyncio.all_tasks() if t.get_name() == name] == []
    finally:
        await redis.aclose()
        await engine.dispose()
