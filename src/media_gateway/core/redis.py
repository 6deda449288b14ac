"""The shared `redis.asyncio` client and the key naming rule `<prefix>:<service>:...`."""

from __future__ import annotations

import redis.asyncio as aioredis

from media_gateway.core.settings import Settings


def make_redis(settings: Settings) -> aioredis.Redis:
    return aioredis.from_url(
        settings.effective_redis_url,
        socket_timeout=settings.redis.socket_timeout_sec,
        socket_connect_timeout=settings.redis.socket_timeout_sec,
        max_connections=settings.redis.max_connections,
        health_check_interval=30,
    )


def redis_key(settings: Settings, service: str, *parts: str) -> str:
    return ":".join((settings.redis.prefix, service, *parts))
