from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from media_gateway.core.events import (
    Delivery,
    Event,
    EventBus,
    RedisStreamsEventBus,
    run_consumer,
    stream_key,
    topic_name,
)
from media_gateway.core.redis import make_redis
from media_gateway.core.settings import Settings
from tests.conftest import make_settings


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = make_redis(make_settings())
    yield client
    await client.aclose()


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def bus(redis_client: aioredis.Redis, settings: Settings) -> RedisStreamsEventBus:
    return RedisStreamsEventBus(redis_client, settings)


@pytest.fixture
def topic() -> str:
    return f"test.{uuid.uuid4().hex}"


def make_event(key: str = "content-1", **payload: object) -> Event:
    return Event(type="content.ingested", key=key, payload=payload or {"title": "Arrival", "year": 2016})


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def pending_ids(client: aioredis.Redis, key: str, group: str) -> dict[str, str]:
    """message id -> consumer that currently holds it."""
    entries = await client.xpending_range(key, group, min="-", max="+", count=100)
    return {text(entry["message_id"]): text(entry["consumer"]) for entry in entries}


async def dead_letters(client: aioredis.Redis, key: str) -> list[dict[str, str]]:
    entries = await client.xrange(key) or []
    return [{text(k): text(v) for k, v in (fields or {}).items()} for _, fields in entries]


async def consume_until(
    bus: RedisStreamsEventBus, topic: str, group: str, consumer: str, want: int
) -> list[Delivery]:
    got: list[Delivery] = []
    async with asyncio.timeout(5):
        while len(got) < want:
            got.extend(await bus.consume(topic, group, consumer, count=want - len(got), block_ms=100))
    return got


# --- the event model and naming ---------------------------------------------------------------


def test_event_mints_a_uuid_and_a_utc_timestamp() -> None:
    before = datetime.now(UTC)
    first, second = make_event(), make_event()
    assert str(uuid.UUID(first.id)) == first.id
    assert first.id != second.id
    assert first.occurred_at.tzinfo is not None
    assert first.occurred_at.utcoffset() == timedelta(0)
    assert before <= first.occurred_at <= datetime.now(UTC)


def test_event_normalizes_id_and_offset() -> None:
    raw = uuid.uuid4()
    paris = timezone(timedelta(hours=2))
    event = Event(
        id=str(raw).upper(),
        type="user.activity",
        key="user-1",
        occurred_at=datetime(2026, 5, 1, 12, 0, tzinfo=paris),
    )
    assert event.id == str(raw)
    assert event.occurred_at == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "fields",
    [
        {"id": "not-a-uuid"},
        {"occurred_at": datetime(2026, 5, 1, 12, 0)},  # naive: which instant?
        {"type": ""},
        {"key": ""},
    ],
)
def test_event_rejects_bad_fields(fields: dict[str, object]) -> None:
    values: dict[str, object] = {"type": "content.updated", "key": "content-1", **fields}
    with pytest.raises(ValidationError):
        Event.model_validate(values)


def test_topic_and_stream_naming(settings: Settings) -> None:
    assert topic_name(settings, "content.ingested") == "media-gateway.content.ingested"
    assert topic_name(settings, "media-gateway.content.ingested") == "media-gateway.content.ingested"
    expected = f"{settings.redis.prefix}:events:media-gateway.content.ingested"
    assert stream_key(settings, "content.ingested") == expected
    assert stream_key(settings, "media-gateway.content.ingested") == expected


def test_redis_bus_satisfies_the_interface(bus: RedisStreamsEventBus) -> None:
    assert isinstance(bus, EventBus)


# --- Redis Streams --------------------------------------------------------------------------------


async def test_published_event_reaches_a_group_consumer_unchanged(
    bus: RedisStreamsEventBus, redis_client: aioredis.Redis, topic: str
) -> None:
    await bus.ensure_group(topic, "indexer")
    event = make_event(genres=["sci-fi"], runtime=116)
    message_id = await bus.publish(topic, event)

    deliveries = await bus.consume(topic, "indexer", "worker-1", count=10, block_ms=100)

    assert len(deliveries) == 1
    delivery = deliveries[0]
    assert delivery.event == event
    assert delivery.event.model_dump() == event.model_dump()
    assert delivery.message_id == message_id
    assert delivery.topic == bus.topic(topic) == f"media-gateway.{topic}"
    assert delivery.group == "indexer"
    assert delivery.delivery_count == 1
    assert await redis_client.exists(bus.stream_key(topic)) == 1


async def test_publish_many_keeps_order_across_topics_in_one_round_trip(
    bus: RedisStreamsEventBus, topic: str
) -> None:
    other = topic + ".other"
    await bus.ensure_group(topic, "indexer")
    await bus.ensure_group(other, "indexer")
    events = [(topic if i % 3 else other, make_event(key=f"k{i % 2}", n=i)) for i in range(9)]

    ids = await bus.publish_many(events)

    assert len(ids) == 9
    got = await consume_until(bus, topic, "indexer", "w", 6) + await consume_until(
        bus, other, "indexer", "w", 3
    )
    assert [d.event for d in got] == [e for t, e in events if t == topic] + [
        e for t, e in events if t == other
    ]
    assert [d.message_id for d in got] == [i for (t, _), i in zip(events, ids, strict=True) if t == topic] + [
        i for (t, _), i in zip(events, ids, strict=True) if t == other
    ]
    assert await bus.publish_many([]) == []


async def test_ensure_group_is_idempotent(bus: RedisStreamsEventBus, topic: str) -> None:
    await bus.ensure_group(topic, "indexer")
    await bus.ensure_group(topic, "indexer")
    await bus.publish(topic, make_event())
    assert len(await consume_until(bus, topic, "indexer", "w", 1)) == 1


async def test_ack_removes_the_message_from_the_pending_list(
    bus: RedisStreamsEventBus, redis_client: aioredis.Redis, topic: str
) -> None:
    await bus.ensure_group(topic, "indexer")
    await bus.publish(topic, make_event())
    [delivery] = await consume_until(bus, topic, "indexer", "worker-1", 1)

    key = bus.stream_key(topic)
    assert await pending_ids(redis_client, key, "indexer") == {delivery.message_id: "worker-1"}

    await bus.ack(delivery)

    assert await pending_ids(redis_client, key, "indexer") == {}
    assert (await redis_client.xpending(key, "indexer"))["pending"] == 0


async def test_unacked_message_is_redelivered_to_another_consumer_after_idle_time(
    redis_client: aioredis.Redis, topic: str
) -> None:
    bus = RedisStreamsEventBus(redis_client, make_settings(events={"redelivery_idle_ms": 50}))
    await bus.ensure_group(topic, "indexer")
    event = make_event()
    await bus.publish(topic, event)
    [first] = await consume_until(bus, topic, "indexer", "crashed-worker", 1)

    await asyncio.sleep(0.15)
    redelivered = await bus.consume(topic, "indexer", "healthy-worker", count=10, block_ms=None)

    assert len(redelivered) == 1
    assert redelivered[0].message_id == first.message_id
    assert redelivered[0].event == event
    assert redelivered[0].delivery_count == 2
    key = bus.stream_key(topic)
    assert await pending_ids(redis_client, key, "indexer") == {first.message_id: "healthy-worker"}

    await bus.ack(redelivered[0])
    await asyncio.sleep(0.15)
    assert await bus.consume(topic, "indexer", "crashed-worker", count=10, block_ms=None) == []


async def test_message_in_progress_is_not_taken_by_another_consumer(
    bus: RedisStreamsEventBus, redis_client: aioredis.Redis, topic: str
) -> None:
    # Default redelivery time (30 s): a consumer still within it keeps its message.
    await bus.ensure_group(topic, "indexer")
    await bus.publish(topic, make_event())
    [first] = await consume_until(bus, topic, "indexer", "busy-worker", 1)

    assert await bus.consume(topic, "indexer", "other-worker", count=10, block_ms=None) == []
    key = bus.stream_key(topic)
    assert await pending_ids(redis_client, key, "indexer") == {first.message_id: "busy-worker"}


async def test_each_group_receives_every_message(bus: RedisStreamsEventBus, topic: str) -> None:
    await bus.ensure_group(topic, "search-index")
    await bus.ensure_group(topic, "recommender")
    events = [make_event(key=f"content-{i}") for i in range(5)]
    for event in events:
        await bus.publish(topic, event)

    for group in ("search-index", "recommender"):
        deliveries = await consume_until(bus, topic, group, "worker", len(events))
        assert [d.event for d in deliveries] == events
        assert {d.group for d in deliveries} == {group}
        for delivery in deliveries:
            await bus.ack(delivery)

    # Within one group, a second consumer gets nothing that the first already took.
    assert await bus.consume(topic, "search-index", "other", count=10, block_ms=None) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"value": "{not json"},
        {"value": '{"type": "content.ingested", "payload": {}}'},  # no key
        {"key": "content-1", "type": "content.ingested"},  # no value at all
    ],
    ids=["bad-json", "invalid-event", "missing-value"],
)
async def test_malformed_entry_is_dead_lettered_and_does_not_block_the_next(
    bus: RedisStreamsEventBus, redis_client: aioredis.Redis, topic: str, fields: dict[str, str]
) -> None:
    await bus.ensure_group(topic, "indexer")
    key = bus.stream_key(topic)
    bad_id = text(await redis_client.xadd(key, dict(fields.items())))
    good = make_event()
    good_id = await bus.publish(topic, good)

    deliveries = await consume_until(bus, topic, "indexer", "worker", 1)

    assert [d.event for d in deliveries] == [good]
    assert deliveries[0].message_id == good_id
    assert await pending_ids(redis_client, key, "indexer") == {good_id: "worker"}

    [dead_fields] = await dead_letters(redis_client, bus.dead_letter_key(topic))
    assert dead_fields["original_id"] == bad_id
    assert dead_fields["group"] == "indexer"
    assert dead_fields["reason"]
    for name, value in fields.items():
        assert dead_fields[f"orig.{name}"] == value


async def test_malformed_only_batch_is_acked_and_the_next_call_gets_the_good_one(
    bus: RedisStreamsEventBus, redis_client: aioredis.Redis, topic: str
) -> None:
    await bus.ensure_group(topic, "indexer")
    key = bus.stream_key(topic)
    await redis_client.xadd(key, {"value": "garbage"})
    good = make_event()
    await bus.publish(topic, good)

    assert await bus.consume(topic, "indexer", "worker", count=1, block_ms=None) == []
    [delivery] = await bus.consume(topic, "indexer", "worker", count=1, block_ms=None)
    assert delivery.event == good
    assert await redis_client.xlen(bus.dead_letter_key(topic)) == 1


async def test_message_redelivered_too_often_is_dead_lettered(
    redis_client: aioredis.Redis, topic: str
) -> None:
    bus = RedisStreamsEventBus(
        redis_client, make_settings(events={"redelivery_idle_ms": 20}), max_deliveries=2
    )
    await bus.ensure_group(topic, "indexer")
    await bus.publish(topic, make_event())

    [first] = await consume_until(bus, topic, "indexer", "a", 1)
    await asyncio.sleep(0.06)
    [second] = await bus.consume(topic, "indexer", "b", count=10, block_ms=None)
    assert (second.message_id, second.delivery_count) == (first.message_id, 2)
    await asyncio.sleep(0.06)

    assert await bus.consume(topic, "indexer", "c", count=10, block_ms=None) == []
    assert await pending_ids(redis_client, bus.stream_key(topic), "indexer") == {}
    [dead_fields] = await dead_letters(redis_client, bus.dead_letter_key(topic))
    assert dead_fields["original_id"] == first.message_id
    assert dead_fields["reason"] == "gave up after 2 deliveries"


async def test_consume_recreates_a_missing_group_from_the_start(
    bus: RedisStreamsEventBus, topic: str
) -> None:
    event = make_event()
    await bus.publish(topic, event)  # before any group exists

    deliveries = await consume_until(bus, topic, "late-group", "worker", 1)

    assert [d.event for d in deliveries] == [event]


async def test_publish_caps_the_stream_length(redis_client: aioredis.Redis, topic: str) -> None:
    bus = RedisStreamsEventBus(redis_client, make_settings(events={"max_stream_length": 10}))
    for i in range(400):
        await bus.publish(topic, make_event(key=f"content-{i}"))
    # Approximate trimming drops whole radix-tree nodes (100 entries by default), never below the cap.
    length = await redis_client.xlen(bus.stream_key(topic))
    assert 10 <= length < 400


async def test_run_consumer_acks_successes_and_leaves_failures_pending(
    bus: RedisStreamsEventBus, redis_client: aioredis.Redis, topic: str
) -> None:
    await bus.ensure_group(topic, "indexer")
    good, bad, also_good = make_event(key="ok-1"), make_event(key="boom"), make_event(key="ok-2")
    ids = {}
    for event in (good, bad, also_good):
        ids[event.key] = await bus.publish(topic, event)

    seen: list[Event] = []
    all_seen = asyncio.Event()

    async def handler(event: Event) -> None:
        seen.append(event)
        if len(seen) == 3:
            all_seen.set()
        if event.key == "boom":
            raise RuntimeError("handler failed")

    stop = asyncio.Event()
    task = asyncio.create_task(run_consumer(bus, topic, "indexer", "worker-1", handler, stop, block_ms=50))
    try:
        async with asyncio.timeout(5):
            await all_seen.wait()
    finally:
        stop.set()
        async with asyncio.timeout(5):
            await task

    assert seen == [good, bad, also_good]
    key = bus.stream_key(topic)
    assert await pending_ids(redis_client, key, "indexer") == {ids["boom"]: "worker-1"}


async def test_run_consumer_creates_its_group_from_start_id_and_stops_promptly(
    bus: RedisStreamsEventBus, redis_client: aioredis.Redis, topic: str
) -> None:
    earlier = make_event(key="published-before-the-group")
    await bus.publish(topic, earlier)
    received: asyncio.Queue[Event] = asyncio.Queue()

    async def handler(event: Event) -> None:
        await received.put(event)

    stop = asyncio.Event()
    task = asyncio.create_task(
        run_consumer(bus, topic, "fresh", "w", handler, stop, block_ms=50, start_id="0")
    )
    async with asyncio.timeout(5):
        assert await received.get() == earlier
    later = make_event(key="published-after")
    await bus.publish(topic, later)
    async with asyncio.timeout(5):
        assert await received.get() == later
    stop.set()
    async with asyncio.timeout(2):
        await task
    assert task.exception() is None
    assert await pending_ids(redis_client, bus.stream_key(topic), "fresh") == {}
