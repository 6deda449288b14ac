"""The keyword index's part of the discovery app's lifespan.

Every discovery replica holds its own index in memory, so each must see every catalog event: the
feed reads through a consumer group of its own, `discovery-keyword-<host>-<pid>-<random>`, made
before the start-up build (see `CatalogFeed.ensure_groups`) and destroyed at a clean stop. A replica
that crashed leaves its group behind; on Redis Streams, the next start removes keyword groups whose
every consumer has been idle for `STALE_GROUP_IDLE_SEC` (a live feed polls every second). On Kafka
a group that stops committing expires by the broker's offset retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from media_gateway.core.app import ServiceContext
from media_gateway.core.events import EventBus, make_event_bus
from media_gateway.core.events.redis_streams import RedisStreamsEventBus
from media_gateway.core.process_dirs import claim_private_dir, release_private_dir
from media_gateway.discovery.search.catalog_feed import GROUP, TOPICS, CatalogFeed
from media_gateway.discovery.search.keyword import KeywordIndex

logger = logging.getLogger(__name__)

# Offers start and expire by the date, with no event to say so: a full rebuild this often.
REFRESH_SEC: Final = 6 * 3600.0
STALE_GROUP_IDLE_SEC: Final = 3600.0


def consumer_name() -> str:
    """Unique per process, so two discovery processes never share a consumer's pending list."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def replica_group() -> str:
    return f"{GROUP}-{consumer_name()}"


async def _redis_groups(redis: aioredis.Redis, stream: str) -> list[dict[str, Any]]:
    try:
        groups: list[dict[str, Any]] = await redis.xinfo_groups(stream)
    except RedisError:
        # No stream yet: no groups either.
        return []
    return groups


def _name(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def remove_stale_groups(bus: EventBus, redis: aioredis.Redis, own: str) -> list[str]:
    """Keyword groups of replicas gone for good (Redis Streams only); returns what was removed."""
    if not isinstance(bus, RedisStreamsEventBus):
        return []
    removed: list[str] = []
    for topic in TOPICS:
        stream = bus.stream_key(topic)
        for group in await _redis_groups(redis, stream):
            name = _name(group.get("name"))
            if not name.startswith(f"{GROUP}-") or name == own:
                continue
            consumers = await redis.xinfo_consumers(stream, name)
            if consumers and all(int(c.get("idle", 0)) >= STALE_GROUP_IDLE_SEC * 1000 for c in consumers):
                await redis.xgroup_destroy(stream, name)
                removed.append(f"{topic}:{name}")
    if removed:
        logger.info("removed stale keyword consumer groups", extra={"groups": removed})
    return removed


async def remove_group(bus: EventBus, redis: aioredis.Redis, group: str) -> None:
    if not isinstance(bus, RedisStreamsEventBus):
        return
    for topic in TOPICS:
        with contextlib.suppress(RedisError, OSError):
            await redis.xgroup_destroy(bus.stream_key(topic), group)


@asynccontextmanager
async def keyword_runtime(ctx: ServiceContext) -> AsyncIterator[None]:
    """Build the index from the catalog, publish it as `ctx.extras["keyword_index"]`, and keep it
    current from catalog events until shutdown."""
    # A directory of its own: discovery processes sharing a data dir (workers, containers on one
    # volume) would otherwise delete each other's index generations.
    path = await asyncio.to_thread(claim_private_dir, ctx.settings.keyword_index_path)
    index = KeywordIndex(path)
    bus = make_event_bus(ctx.settings, ctx.redis)
    group = replica_group()
    feed = CatalogFeed(index, ctx.engine, bus, consumer=consumer_name(), group=group, refresh_sec=REFRESH_SEC)
    try:
        try:
            await remove_stale_groups(bus, ctx.redis, group)
        except (RedisError, OSError):
            logger.exception("could not look for stale keyword consumer groups")
        await feed.ensure_groups()
        await feed.rebuild()
        ctx.extras.update(keyword_index=index, keyword_feed=feed)
        await feed.start()
        yield
    finally:
        await feed.stop()
        await remove_group(bus, ctx.redis, group)
        await bus.aclose()
        await index.aclose()
        await asyncio.to_thread(release_private_dir, path)
