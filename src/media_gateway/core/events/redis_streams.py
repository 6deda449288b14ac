"""`EventBus` on Redis Streams: one stream per topic, consumer groups, XAUTOCLAIM redelivery.

A message stays pending in its consumer group until acked, and one left unacked longer than
`settings.events.redelivery_idle_ms` is handed to another consumer of the group.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from media_gateway.core.events.base import Delivery, Event, describe_decode_error, topic_name
from media_gateway.core.redis import redis_key
from media_gateway.core.settings import Settings

logger = logging.getLogger(__name__)

DEAD_LETTER_SUFFIX = ":dead"

# Stream entries are laid out like a Kafka record: `key` for partitioning/inspection and `value`,
# the full event as JSON, which is the only field read back.
_KEY_FIELD = "key"
_TYPE_FIELD = "type"
_VALUE_FIELD = "value"


def stream_key(settings: Settings, topic: str) -> str:
    return redis_key(settings, "events", topic_name(settings, topic))


def _text(value: object) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _decode_fields(fields: Mapping[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in fields.items()}


class RedisStreamsEventBus:
    """`EventBus` on Redis Streams: one stream per topic, consumer groups, XAUTOCLAIM redelivery.

    The Redis client is borrowed, not owned: the caller closes it.
    """

    def __init__(
        self, redis: aioredis.Redis, settings: Settings, *, max_deliveries: int | None = None
    ) -> None:
        """`max_deliveries`: a message reclaimed more often than this is dead-lettered instead of
        being handed out again, so one poison message cannot cycle forever. None disables it."""
        self._redis = redis
        self._settings = settings
        self._max_deliveries = max_deliveries
        # XAUTOCLAIM scans the pending list from a cursor; resuming where the last scan stopped
        # keeps a long list of not-yet-idle entries at its head from hiding idle ones behind it.
        self._claim_cursors: dict[tuple[str, str], str] = {}
        # A blocking read longer than the client's socket timeout would fail as a timeout.
        self._max_block_ms = max(0, int(settings.redis.socket_timeout_sec * 1000) - 500)

    def topic(self, name: str) -> str:
        return topic_name(self._settings, name)

    async def aclose(self) -> None:
        """Nothing to release: the Redis client belongs to the caller."""

    def stream_key(self, topic: str) -> str:
        return stream_key(self._settings, topic)

    def dead_letter_key(self, topic: str) -> str:
        return self.stream_key(topic) + DEAD_LETTER_SUFFIX

    async def publish(self, topic: str, event: Event) -> str:
        message_id = await self._redis.xadd(
            self.stream_key(topic), self._fields(event), maxlen=self._max_length, approximate=True
        )
        return _text(message_id)

    async def publish_many(self, events: Sequence[tuple[str, Event]]) -> list[str]:
        if not events:
            return []
        # Not a MULTI: a pipeline keeps the order and needs one round trip, which is what matters.
        async with self._redis.pipeline(transaction=False) as pipe:
            for topic, event in events:
                pipe.xadd(
                    self.stream_key(topic), self._fields(event), maxlen=self._max_length, approximate=True
                )
            return [_text(message_id) for message_id in await pipe.execute()]

    @property
    def _max_length(self) -> int:
        return self._settings.events.max_stream_length

    @staticmethod
    def _fields(event: Event) -> dict[FieldT, EncodableT]:
        return {_KEY_FIELD: event.key, _TYPE_FIELD: event.type, _VALUE_FIELD: event.model_dump_json()}

    async def ensure_group(self, topic: str, group: str, start_id: str = "$") -> None:
        """Create the group if missing. `start_id="$"` reads only later messages, `"0"` the history."""
        try:
            await self._redis.xgroup_create(self.stream_key(topic), group, id=start_id, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def consume(
        self, topic: str, group: str, consumer: str, count: int = 10, block_ms: int | None = 1000
    ) -> list[Delivery]:
        """Up to `count` deliveries: first messages other consumers left unacked too long, then new
        ones, blocking up to `block_ms` for new ones only when nothing was reclaimed."""
        if count < 1:
            raise ValueError("count must be at least 1")
        try:
            return await self._consume(topic, group, consumer, count, block_ms)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
        # The group was never created, or vanished when its stream key was deleted; either way no
        # message now in the stream was seen by this group, so it starts from the beginning.
        logger.warning("consumer group %s missing on %s; recreating it", group, self.topic(topic))
        await self.ensure_group(topic, group, start_id="0")
        return await self._consume(topic, group, consumer, count, block_ms)

    async def ack(self, delivery: Delivery) -> None:
        await self._redis.xack(self.stream_key(delivery.topic), delivery.group, delivery.message_id)

    async def _consume(
        self, topic: str, group: str, consumer: str, count: int, block_ms: int | None
    ) -> list[Delivery]:
        deliveries = await self._reclaim(topic, group, consumer, count)
        if len(deliveries) >= count:
            return deliveries
        block = None
        if not deliveries and block_ms is not None and block_ms > 0 and self._max_block_ms > 0:
            block = min(block_ms, self._max_block_ms)
        response = await self._redis.xreadgroup(
            group, consumer, {self.stream_key(topic): ">"}, count=count - len(deliveries), block=block
        )
        for message_id, fields in self._messages_of(response):
            delivery = await self._to_delivery(topic, group, message_id, fields, 1)
            if delivery is not None:
                deliveries.append(delivery)
        return deliveries

    async def _reclaim(self, topic: str, group: str, consumer: str, count: int) -> list[Delivery]:
        key = self.stream_key(topic)
        cursor = self._claim_cursors.get((key, group), "0-0")
        response = await self._redis.xautoclaim(
            key, group, consumer, self._settings.events.redelivery_idle_ms, start_id=cursor, count=count
        )
        self._claim_cursors[(key, group)] = _text(response[0])
        claimed: list[tuple[str, Mapping[Any, Any] | None]] = [
            (_text(message_id), fields) for message_id, fields in response[1]
        ]
        if not claimed:
            return []
        counts = await self._delivery_counts(key, group, consumer, [message_id for message_id, _ in claimed])
        deliveries: list[Delivery] = []
        for message_id, fields in claimed:
            if not fields:
                # Redis 6.2 hands back entries trimmed from the stream as empty; nothing to deliver.
                await self._redis.xack(key, group, message_id)
                continue
            delivery_count = counts.get(message_id, 2)
            if self._max_deliveries is not None and delivery_count > self._max_deliveries:
                await self._dead_letter(
                    topic, group, message_id, fields, f"gave up after {delivery_count - 1} deliveries"
                )
                continue
            delivery = await self._to_delivery(topic, group, message_id, fields, delivery_count)
            if delivery is not None:
                deliveries.append(delivery)
        return deliveries

    async def _delivery_counts(
        self, key: str, group: str, consumer: str, message_ids: Sequence[str]
    ) -> dict[str, int]:
        # XAUTOCLAIM does not report delivery counts; XPENDING over just the claimed id range does.
        entries = await self._redis.xpending_range(
            key,
            group,
            min=min(message_ids, key=_id_order),
            max=max(message_ids, key=_id_order),
            count=len(message_ids),
            consumername=consumer,
        )
        return {_text(entry["message_id"]): int(entry["times_delivered"]) for entry in entries}

    @staticmethod
    def _messages_of(response: Any) -> list[tuple[str, Mapping[Any, Any]]]:
        # redis-py answers [[stream, entries]] over RESP2 and {stream: [entries]} over RESP3.
        if not response:
            return []
        if isinstance(response, dict):
            per_stream = [entries for wrapped in response.values() for entries in wrapped]
        else:
            per_stream = [entries for _, entries in response]
        return [(_text(message_id), fields or {}) for entries in per_stream for message_id, fields in entries]

    async def _to_delivery(
        self, topic: str, group: str, message_id: str, fields: Mapping[Any, Any], delivery_count: int
    ) -> Delivery | None:
        decoded = _decode_fields(fields)
        raw = decoded.get(_VALUE_FIELD)
        try:
            if raw is None:
                raise ValueError(f"no {_VALUE_FIELD!r} field")
            event = Event.model_validate_json(raw)
        except (ValidationError, ValueError) as exc:
            # Only the error kind is logged: the entry itself may carry user data.
            reason = describe_decode_error(exc)
            logger.warning(
                "malformed event %s on %s (group %s): %s; dead-lettered",
                message_id,
                self.topic(topic),
                group,
                reason,
            )
            await self._dead_letter(topic, group, message_id, fields, reason)
            return None
        return Delivery(
            topic=self.topic(topic),
            group=group,
            message_id=message_id,
            event=event,
            delivery_count=delivery_count,
        )

    async def _dead_letter(
        self, topic: str, group: str, message_id: str, fields: Mapping[Any, Any], reason: str
    ) -> None:
        entry: dict[FieldT, EncodableT] = {
            "original_id": message_id,
            "group": group,
            "reason": reason,
        }
        # Original fields keep their names under a prefix so they cannot clobber the ones above.
        for name, value in fields.items():
            field_name = b"orig." + name if isinstance(name, bytes) else "orig." + str(name)
            entry[field_name] = value
        # Both or neither: an ack without the copy would lose the message, a copy without the ack
        # would dead-letter it again on the next reclaim.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                self.dead_letter_key(topic),
                entry,
                maxlen=self._settings.events.max_stream_length,
                approximate=True,
            )
            pipe.xack(self.stream_key(topic), group, message_id)
            await pipe.execute()


def _id_order(message_id: str) -> tuple[int, int]:
    millis, _, seq = message_id.partition("-")
    return int(millis), int(seq or 0)
