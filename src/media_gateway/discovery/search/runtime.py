"""The keyword index's part of the discovery app's lifespan."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from media_gateway.core.app import ServiceContext
from media_gateway.core.events import make_event_bus
from media_gateway.discovery.search.catalog_feed import CatalogFeed
from media_gateway.discovery.search.keyword import KeywordIndex

# Offers start and expire by the date, with no event to say so.
REFRESH_SEC = 6 * 3600.0


def consumer_name() -> str:
    """Unique per process, so two discovery processes never share a consumer's pending list."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@asynccontextmanager
async def keyword_runtime(ctx: ServiceContext) -> AsyncIterator[None]:
    """Build the index from the catalog, publish it as `ctx.extras["keyword_index"]`, and keep it
    current from catalog events until shutdown."""
    index = KeywordIndex(ctx.settings.keyword_index_path)
    bus = make_event_bus(ctx.settings, ctx.redis)
    feed = CatalogFeed(index, ctx.engine, bus, consumer=consumer_name(), refresh_sec=REFRESH_SEC)
    try:
        await feed.ensure_groups()
        await feed.rebuild()
        ctx.extras.update(keyword_index=index, keyword_feed=feed)
        await feed.start()
        yield
    finally:
        await feed.stop()
        await bus.aclose()
        await index.aclose()
