"""Hybrid search's part of the discovery app's lifespan, and the Redis cache in front of it.

Cached responses are keyed `search:<generation>:<sha256 of the normalized request and region>`.
Catalog events bump the generation, which orphans every entry at once (they expire by TTL); no
key scan is ever needed. The bump waits until this process's keyword feed has applied what it
queued, plus a settle delay, so a search computed on the old index cannot be stored under the new
generation. With several discovery processes, only the one that received the event waits for its
own index; the others may cache an answer that is at most `search_cache_ttl_sec` stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import orjson
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter
from redis.exceptions import RedisError

from media_gateway.catalog.vectors import catalog_vector_replica
from media_gateway.core.app import ServiceContext
from media_gateway.core.embeddings import get_embedder
from media_gateway.core.events import Event, EventBus, make_event_bus, run_consumer
from media_gateway.core.redis import redis_key
from media_gateway.core.settings import Settings
from media_gateway.discovery.intent import CatalogTitleResolver, IntentParser, normalize_query
from media_gateway.discovery.search.catalog_feed import TOPICS, CatalogFeed
from media_gateway.discovery.search.hybrid import HybridSearch
from media_gateway.discovery.search.keyword import KeywordIndex
from media_gateway.discovery.search.runtime import consumer_name
from media_gateway.discovery.search_schemas import SearchRequest

logger = logging.getLogger(__name__)

GROUP: Final = "discovery-search-cache"
CACHE_TIMEOUT_SEC: Final = 0.25
# How long a replica trusts the cache generation it last read. Saves a Redis round trip on nearly
# every search; a catalog change reaches the cache this much later (well inside the 5 s the issue
# allows for new content to become searchable).
GENERATION_TRUST_SEC: Final = 0.25
# Events of one burst (a bulk ingest) collapse into one bump after this quiet time.
QUIET_SEC: Final = 0.5
# How long after the keyword feed's queue drained its last batch may still be committing.
SETTLE_SEC: Final = 1.0
MAX_DRAIN_WAIT_SEC: Final = 10.0
_REDIS_ERRORS = (RedisError, OSError, TimeoutError)


@dataclass(frozen=True)
class SearchMetrics:
    cache_hits: Counter
    cache_misses: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> SearchMetrics:
        return cls(
            cache_hits=Counter("mg_search_cache_hits", "Searches answered from Redis.", registry=registry),
            cache_misses=Counter("mg_search_cache_misses", "Searches computed afresh.", registry=registry),
        )


def generation_key(settings: Settings) -> str:
    return redis_key(settings, "discovery", "search", "generation")


def request_digest(request: SearchRequest, region: str) -> str:
    """sha256 of the request as far as it affects the answer: equivalent spellings share an entry.
    The user is deliberately not part of it; personalization applies after the cache."""
    body = {
        "q": normalize_query(request.query),
        "f": request.filters.model_dump(mode="json"),
        "r": region,
        "p": request.page,
        "s": request.page_size,
    }
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


class CachedSearch:
    """`HybridSearch` behind the Redis cache. Redis being slow or down means computing afresh."""

    def __init__(
        self, engine: HybridSearch, redis: aioredis.Redis, settings: Settings, metrics: SearchMetrics
    ) -> None:
        self.engine = engine
        self._redis = redis
        self._settings = settings
        self.metrics = metrics
        self._generation: tuple[float, str] | None = None

    async def search(self, request: SearchRequest) -> dict[str, Any]:
        """The `SearchOutcome` of `request` as JSON-ready data: `{"response": ..., "ranking": ...}`.

        Plain data rather than the model: a cache hit for an anonymous caller goes from Redis to
        the wire through orjson alone, without validating and serializing the models again."""
        started = time.perf_counter()
        key = await self._key(request, self.engine.region(request.region))
        if key is not None:
            raw = await self._get(key)
            if raw is not None:
                self.metrics.cache_hits.inc()
                hit: dict[str, Any] = orjson.loads(raw)
                hit["response"]["cached"] = True
                hit["response"]["took_ms"] = round((time.perf_counter() - started) * 1000, 3)
                return hit
        self.metrics.cache_misses.inc()
        outcome = (await self.engine.search(request)).model_dump(mode="json")
        if key is not None:
            await self._set(key, orjson.dumps(outcome))
        return outcome

    async def bump(self) -> None:
        await self._redis.incr(generation_key(self._settings))
        self._generation = None

    async def _key(self, request: SearchRequest, region: str) -> str | None:
        gen = await self._current_generation()
        if gen is None:
            return None
        return redis_key(self._settings, "discovery", "search", gen, request_digest(request, region))

    async def _current_generation(self) -> str | None:
        now = time.monotonic()
        known = self._generation
        if known is not None and now - known[0] < GENERATION_TRUST_SEC:
            return known[1]
        try:
            async with asyncio.timeout(CACHE_TIMEOUT_SEC):
                generation = await self._redis.get(generation_key(self._settings))
        except _REDIS_ERRORS as exc:
            logger.warning("search cache unavailable", extra={"error": repr(exc)})
            return None
        gen = generation.decode() if isinstance(generation, bytes) else str(generation or 0)
        self._generation = (now, gen)
        return gen

    async def _get(self, key: str) -> bytes | str | None:
        try:
            async with asyncio.timeout(CACHE_TIMEOUT_SEC):
                raw: bytes | str | None = await self._redis.get(key)
                return raw
        except _REDIS_ERRORS as exc:
            logger.warning("search cache read failed", extra={"error": repr(exc)})
            return None

    async def _set(self, key: str, body: bytes) -> None:
        try:
            async with asyncio.timeout(CACHE_TIMEOUT_SEC):
                await self._redis.set(key, body, ex=self._settings.discovery.search_cache_ttl_sec)
        except _REDIS_ERRORS as exc:
            logger.warning("search cache write failed", extra={"error": repr(exc)})


class CacheInvalidator:
    """Bumps the cache generation after catalog events, once the keyword index has caught up."""

    def __init__(self, cache: CachedSearch, bus: EventBus, feed: CatalogFeed | None) -> None:
        self._cache = cache
        self._bus = bus
        self._feed = feed
        self._consumer = consumer_name()
        self._dirty = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for topic in TOPICS:
            try:
                await self._bus.ensure_group(topic, GROUP, start_id="$")
            except Exception:
                logger.exception("could not create consumer group %s on %s", GROUP, topic)
            consumer = run_consumer(
                self._bus, topic, GROUP, self._consumer, self._handle, self._stop, count=500
            )
            self._tasks.append(asyncio.create_task(consumer, name=f"search-cache-{topic}"))
        self._tasks.append(asyncio.create_task(self._bump_loop(), name="search-cache-bump"))

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def _handle(self, event: Event) -> None:
        self._dirty.set()

    async def _bump_loop(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(QUIET_SEC)
            self._dirty.clear()
            deadline = time.monotonic() + MAX_DRAIN_WAIT_SEC
            # Polled: the feed exposes how much it has queued, not an event for "drained".
            while self._feed is not None and self._feed.pending and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            await asyncio.sleep(SETTLE_SEC)
            try:
                await self._cache.bump()
            except _REDIS_ERRORS as exc:
                # Entries still expire by TTL; the next event tries again.
                logger.warning("search cache generation bump failed", extra={"error": repr(exc)})


@asynccontextmanager
async def search_runtime(ctx: ServiceContext) -> AsyncIterator[None]:
    """Publish `ctx.extras["hybrid_search"]` (a `CachedSearch`); needs `keyword_runtime` before it."""
    keywords = ctx.extras.get("keyword_index")
    if not isinstance(keywords, KeywordIndex):
        raise RuntimeError("search_runtime needs keyword_runtime to run first")
    feed = ctx.extras.get("keyword_feed")
    embedder = get_embedder(ctx.settings)
    # A replica of the catalog's vectors private to this process: any number of discovery
    # processes run beside ingestion, and queries never leave the process.
    vectors = catalog_vector_replica(ctx.settings, ctx.engine, embedder, ctx.registry)
    intents = IntentParser(ctx.settings, ctx.redis, ctx.http, ctx.registry, CatalogTitleResolver(ctx.engine))
    bus = make_event_bus(ctx.settings, ctx.redis)
    invalidator: CacheInvalidator | None = None
    try:
        await vectors.open()
        engine = HybridSearch(ctx.settings, keywords, embedder, vectors, intents)
        cache = CachedSearch(engine, ctx.redis, ctx.settings, SearchMetrics.create(ctx.registry))
        invalidator = CacheInvalidator(cache, bus, feed if isinstance(feed, CatalogFeed) else None)
        # The keyword index was just rebuilt from the catalog; answers cached before it may be stale.
        with contextlib.suppress(*_REDIS_ERRORS):
            await cache.bump()
        await invalidator.start()
        ctx.extras.update(hybrid_search=cache)
        yield
    finally:
        if invalidator is not None:
            await invalidator.stop()
        await bus.aclose()
        await intents.aclose()
        await vectors.aclose()
        await embedder.aclose()
