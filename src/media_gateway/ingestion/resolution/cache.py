"""Redis cache of external id -> entity id, in front of `catalog.entity_mappings`.

Key `<prefix>:ingestion:entity:<id_type>:<external_id>`, value `<entity UUID> <entity kind>`, always with
a TTL. The kind rides along so a hit can be checked against the record's kind without PostgreSQL.
The cache is an accelerator, never the truth: a Redis error reads as a miss and a failed write is
dropped (PostgreSQL still has the mapping), so resolution keeps working while Redis is down.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncConnection

from media_gateway.core.breaker import CircuitBreaker, CircuitOpenError
from media_gateway.core.redis import redis_key
from media_gateway.core.settings import Settings
from media_gateway.ingestion.resolution import repository

logger = logging.getLogger(__name__)

DEFAULT_TTL_SEC = 7 * 24 * 3600
# Spread expiries over the last 10 % of the TTL so a warm-up's keys do not all lapse in one second
# and send every lookup to PostgreSQL at once.
TTL_JITTER = 0.10
CHUNK = 1000

IdPair = tuple[str, str]
# (id_type, external_id, entity_id, entity kind)
CacheEntry = tuple[str, str, uuid.UUID, str]
READ_TIMEOUT_SEC = 0.25
_ERRORS = (RedisError, OSError, TimeoutError)
T = TypeVar("T")


class EntityCache:
    def __init__(self, redis: aioredis.Redis, settings: Settings, *, ttl_sec: int = DEFAULT_TTL_SEC) -> None:
        self.redis = redis
        self.settings = settings
        self.ttl_sec = ttl_sec
        # A cache slower than the database it fronts is worse than none: reads get a tight budget,
        # and after repeated failures the breaker skips Redis entirely for a cool-down, so a hung
        # Redis costs one timeout per cool-down instead of one per record.
        self.read_timeout_sec = min(READ_TIMEOUT_SEC, settings.redis.socket_timeout_sec)
        self.write_timeout_sec = settings.redis.socket_timeout_sec
        self.breaker = CircuitBreaker(
            "redis:entity-cache",
            failure_threshold=settings.http.breaker_failure_threshold,
            cooldown_sec=settings.http.breaker_cooldown_sec,
        )

    def key(self, id_type: str, external_id: str) -> str:
        return redis_key(self.settings, "ingestion", "entity", id_type, external_id)

    def _ttl(self) -> int:
        # Not security-relevant: only spreads expiry times.
        return max(1, int(self.ttl_sec * (1 - TTL_JITTER * random.random())))  # noqa: S311

    async def _guarded(self, what: str, budget_sec: float, call: Callable[[], Awaitable[T]]) -> T | None:
        """Run one Redis call under the breaker and a timeout; None when skipped or failed."""
        try:
            permit = self.breaker.acquire()
        except CircuitOpenError:
            return None
        try:
            async with asyncio.timeout(budget_sec):
                result = await call()
        except _ERRORS as exc:
            self.breaker.record_failure(permit)
            logger.warning("entity cache %s failed", what, extra={"error": repr(exc)})
            return None
        except BaseException:
            self.breaker.release(permit)
            raise
        self.breaker.record_success(permit)
        return result

    async def get_many(self, ids: Sequence[IdPair]) -> dict[IdPair, tuple[uuid.UUID, str | None]]:
        """One MGET for all ids -> (entity, kind or None if the entry has none); missing, unreadable
        or unreachable entries are simply absent."""
        if not ids:
            return {}
        keys = [self.key(t, v) for t, v in ids]
        values = await self._guarded("read", self.read_timeout_sec, lambda: self.redis.mget(keys))
        if values is None:
            return {}
        found: dict[IdPair, tuple[uuid.UUID, str | None]] = {}
        for pair, raw in zip(ids, values, strict=True):
            if raw is None:
                continue
            entity, _, kind = (raw.decode() if isinstance(raw, bytes) else str(raw)).partition(" ")
            try:
                found[pair] = (uuid.UUID(entity), kind or None)
            except ValueError:
                continue
        return found

    async def set_many(self, entries: Iterable[CacheEntry]) -> int:
        """SET ... EX for each entry, pipelined in chunks (MSET cannot carry a TTL); returns how many
        were written (fewer than given when Redis failed: the rest are dropped, not retried)."""
        written = 0
        batch: list[CacheEntry] = []
        for entry in entries:
            batch.append(entry)
            if len(batch) >= CHUNK:
                if not await self._write(batch):
                    return written
                written += len(batch)
                batch = []
        if batch and await self._write(batch):
            written += len(batch)
        return written

    async def _write(self, batch: Sequence[CacheEntry]) -> bool:
        async def call() -> bool:
            async with self.redis.pipeline(transaction=False) as pipe:
                for id_type, external_id, entity_id, kind in batch:
                    pipe.set(self.key(id_type, external_id), f"{entity_id} {kind}", ex=self._ttl())
                await pipe.execute()
            return True

        return await self._guarded("write", self.write_timeout_sec, call) is not None

    async def delete_many(self, ids: Sequence[IdPair]) -> None:
        if ids:
            keys = [self.key(t, v) for t, v in ids]
            await self._guarded("delete", self.write_timeout_sec, lambda: self.redis.delete(*keys))

    async def warm(self, conn: AsyncConnection, page_size: int = 5000) -> int:
        """Load every mapping from PostgreSQL; returns how many entries were written."""
        written = 0
        async for page in repository.iter_all_mappings(conn, page_size):
            n = await self.set_many(page)
            written += n
            if n < len(page):
                # Redis is failing: stop rather than fail once per page; lookups fall back to PG.
                break
        return written
