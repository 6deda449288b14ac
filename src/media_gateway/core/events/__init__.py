"""Domain events: the `EventBus` interface, its Redis Streams and Kafka implementations, and
`make_event_bus`, which picks one from `settings.events.backend`.

Delivery is at-least-once on both: consumers must be idempotent on `Event.id`.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from media_gateway.core.events.base import (
    ClosableEventBus,
    Delivery,
    Event,
    EventBus,
    EventHandler,
    describe_decode_error,
    run_consumer,
    topic_name,
)
from media_gateway.core.events.kafka import KAFKA_DEAD_LETTER_SUFFIX, KafkaEventBus, kafka_topic
from media_gateway.core.events.redis_streams import DEAD_LETTER_SUFFIX, RedisStreamsEventBus, stream_key
from media_gateway.core.settings import Settings

__all__ = [
    "DEAD_LETTER_SUFFIX",
    "KAFKA_DEAD_LETTER_SUFFIX",
    "ClosableEventBus",
    "Delivery",
    "Event",
    "EventBus",
    "EventHandler",
    "KafkaEventBus",
    "RedisStreamsEventBus",
    "describe_decode_error",
    "kafka_topic",
    "make_event_bus",
    "run_consumer",
    "stream_key",
    "topic_name",
]


def make_event_bus(settings: Settings, redis: aioredis.Redis | None) -> ClosableEventBus:
    """The bus `settings.events.backend` names. The caller closes it with `aclose()`; a Redis bus
    only borrows `redis` (required for it, ignored by Kafka), which the caller closes as well."""
    backend = settings.events.backend
    if backend == "kafka":
        return KafkaEventBus(settings)
    if redis is None:
        raise ValueError("the redis event bus needs a Redis client")
    return RedisStreamsEventBus(redis, settings)
