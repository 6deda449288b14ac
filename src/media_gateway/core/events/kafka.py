"""`EventBus` on Kafka (aiokafka): one Kafka topic per event topic, consumer groups, committed offsets.

How it lines up with the Redis Streams bus:

- Topic names are the same (`media-gateway.<name>`). A record's key is `Event.key` (one key keeps its
  order within a partition), its value the event as JSON. `publish` returns `"<partition>:<offset>"`,
  which is also the `Delivery.message_id`.
- A group's progress is its committed offset per partition, and `ack` commits. Kafka cannot commit
  around a hole, so a consumer commits only up to its first message of the partition still unacked:
  if offset 5 is acked before 4, the commit stays at 4 until 4 is acked, then moves to 6.
- An unacked message is not handed out again while its consumer keeps the partition. Kafka redelivers
  from the last committed offset only when the partition changes hands (a consumer joins, leaves or
  misses its session timeout) or the group restarts, and then everything after that offset comes
  again, acked or not. `Delivery.delivery_count` is always 1: the broker does not count deliveries.
- `ensure_group(start_id="$")` commits the current end offsets for a group that has none, so, as on
  Redis, messages published after the call but before the group's first consume are not missed.
  `"0"` lets a new group start from the earliest offset; Kafka has no other start ids.
- A record that is not a valid event is copied to `<topic>.dead` (same key and value; original
  position, group and reason as headers) and acked, so it cannot block the partition.
- Each (topic, group, consumer) has one long-lived AIOKafkaConsumer. Its first `consume` starts the
  group join, which takes seconds; until then `consume` returns nothing after `block_ms`.
  `close_consumer` and `aclose` leave the group without committing anything.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, IllegalStateError, TopicAlreadyExistsError, for_code
from pydantic import ValidationError

from media_gateway.core.events.base import Delivery, Event, describe_decode_error, topic_name
from media_gateway.core.settings import Settings

logger = logging.getLogger(__name__)

KAFKA_DEAD_LETTER_SUFFIX = ".dead"

_OFFSET_RESETS = {"0": "earliest", "$": "latest"}
# Kafka's own limit is 249 characters; room is kept so every topic's dead-letter name is valid too.
_TOPIC_NAME = re.compile(rf"[A-Za-z0-9._-]{{1,{249 - len(KAFKA_DEAD_LETTER_SUFFIX)}}}")


def kafka_topic(settings: Settings, name: str) -> str:
    """The Kafka topic for an event topic: the same name as on Redis, checked against Kafka's rules."""
    full = topic_name(settings, name)
    if full in (".", "..") or not _TOPIC_NAME.fullmatch(full):
        raise ValueError(f"not a valid Kafka topic name: {full!r}")
    return full


def _parse_message_id(message_id: str) -> tuple[int, int]:
    partition, sep, offset = message_id.partition(":")
    if not sep:
        raise ValueError(f"not a Kafka message id (partition:offset): {message_id!r}")
    return int(partition), int(offset)


@dataclass
class _PartitionLedger:
    """What one consumer handed out from one partition it holds, and what of that is still unacked."""

    unacked: set[int] = field(default_factory=set)
    # One past the highest offset handed out; None until something has been.
    next_offset: int | None = None
    committed: int | None = None

    def hand_out(self, offset: int) -> None:
        self.unacked.add(offset)
        self.next_offset = offset + 1 if self.next_offset is None else max(self.next_offset, offset + 1)

    def commit_point(self) -> int | None:
        # The first unacked offset, since committing past it would lose it on the next rebalance.
        return min(self.unacked) if self.unacked else self.next_offset


@dataclass(eq=False)
class _ConsumerHandle:
    topic: str
    group: str
    name: str
    consumer: Any
    ledgers: dict[int, _PartitionLedger] = field(default_factory=dict)
    # Commits go out one at a time so a later, smaller commit point can never overwrite a larger one.
    commit_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def close(self) -> None:
        # Auto-commit is off, so stopping commits nothing: unacked messages go to the next owner.
        await self.consumer.stop()


class _LedgerKeeper(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no type hints
    """Drops a partition's ledger when the partition moves: after a rebalance the consumer reads it
    again from the committed offset, so acks for what it handed out before no longer count."""

    def __init__(self, handle: _ConsumerHandle) -> None:
        self._handle = handle

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        for tp in revoked:
            self._handle.ledgers.pop(tp.partition, None)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        for tp in assigned:
            self._handle.ledgers[tp.partition] = _PartitionLedger()


class KafkaEventBus:
    """`EventBus` on Kafka. Owns its producer, admin client and consumers: close it with `aclose`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._config = settings.events
        self._producer: Any = None
        self._admin: Any = None
        self._consumers: dict[tuple[str, str, str], _ConsumerHandle] = {}
        self._known_topics: set[str] = set()
        self._start_ids: dict[tuple[str, str], str] = {}
        # Clients are started lazily, on first use; the locks keep concurrent first uses to one each.
        self._clients_lock = asyncio.Lock()
        self._consumers_lock = asyncio.Lock()

    def topic(self, name: str) -> str:
        return kafka_topic(self._settings, name)

    def dead_letter_topic(self, topic: str) -> str:
        return self.topic(topic) + KAFKA_DEAD_LETTER_SUFFIX

    async def publish(self, topic: str, event: Event) -> str:
        full = self.topic(topic)
        await self._ensure_topic(full)
        producer = await self._get_producer()
        metadata = await producer.send_and_wait(
            full, value=event.model_dump_json().encode(), key=event.key.encode()
        )
        return f"{metadata.partition}:{metadata.offset}"

    async def publish_many(self, events: Sequence[tuple[str, Event]]) -> list[str]:
        producer = await self._get_producer()
        pending = []
        for topic, event in events:
            full = self.topic(topic)
            await self._ensure_topic(full)
            # `send` enqueues in call order; the producer keeps that order within a partition.
            pending.append(
                await producer.send(full, value=event.model_dump_json().encode(), key=event.key.encode())
            )
        return [f"{m.partition}:{m.offset}" for m in [await future for future in pending]]

    async def ensure_group(self, topic: str, group: str, start_id: str = "$") -> None:
        """Create the topic if missing and fix where a new group starts: `"$"` after the messages
        already there, `"0"` at the earliest one. A group that already has offsets keeps them."""
        if start_id not in _OFFSET_RESETS:
            raise ValueError(f'start_id must be "0" or "$" on Kafka, not {start_id!r}')
        full = self.topic(topic)
        await self._ensure_topic(full)
        self._start_ids[(full, group)] = start_id
        if start_id == "$":
            await self._start_at_end(full, group)

    async def consume(
        self, topic: str, group: str, consumer: str, count: int = 10, block_ms: int | None = 1000
    ) -> list[Delivery]:
        """Up to `count` deliveries, waiting up to `block_ms` for the first (None or 0: no wait)."""
        if count < 1:
            raise ValueError("count must be at least 1")
        handle = await self._consumer_for(self.topic(topic), group, consumer)
        timeout_ms = block_ms if block_ms is not None and block_ms > 0 else 0
        batches = await handle.consumer.getmany(timeout_ms=timeout_ms, max_records=count)
        deliveries: list[Delivery] = []
        for tp in sorted(batches, key=lambda tp: tp.partition):
            deliveries.extend(await self._take(handle, tp, batches[tp]))
        return deliveries

    async def ack(self, delivery: Delivery) -> None:
        """Mark the message handled; the commit moves as far as this consumer's acks are contiguous.

        An ack that arrives after the partition changed hands (or its consumer closed) is only
        logged: the new owner reads from the committed offset and will see the message again."""
        full = self.topic(delivery.topic)
        partition, offset = _parse_message_id(delivery.message_id)
        for handle in list(self._consumers.values()):
            if handle.topic == full and handle.group == delivery.group:
                ledger = handle.ledgers.get(partition)
                if ledger is not None and offset in ledger.unacked:
                    await self._settle(handle, TopicPartition(full, partition), offset)
                    return
        log_args = (delivery.message_id, full, delivery.group)
        logger.warning("ack of %s on %s (group %s) after its consumer let go of it; it redelivers", *log_args)

    async def close_consumer(self, topic: str, group: str, consumer: str) -> None:
        """Leave the group without committing: whatever this consumer left unacked goes to the
        consumer that takes over its partitions."""
        handle = self._consumers.pop((self.topic(topic), group, consumer), None)
        if handle is not None:
            await handle.close()

    async def aclose(self) -> None:
        handles, self._consumers = list(self._consumers.values()), {}
        producer, self._producer = self._producer, None
        admin, self._admin = self._admin, None
        results = await asyncio.gather(*(handle.close() for handle in handles), return_exceptions=True)
        for handle, result in zip(handles, results, strict=True):
            if isinstance(result, BaseException):
                logger.warning("could not close consumer %s/%s: %r", handle.group, handle.name, result)
        try:
            if producer is not None:
                await producer.stop()
        finally:
            if admin is not None:
                await admin.close()

    # --- internals -------------------------------------------------------------------------------

    def _client_options(self, client_suffix: str | None = None) -> dict[str, Any]:
        client_id = self._config.kafka_client_id
        return {
            "bootstrap_servers": self._config.kafka_bootstrap_servers,
            # Named after the consumer so the broker's group listings say who holds what.
            "client_id": f"{client_id}-{client_suffix}" if client_suffix else client_id,
            "request_timeout_ms": self._config.kafka_request_timeout_ms,
        }

    async def _get_producer(self) -> Any:
        if self._producer is None:
            async with self._clients_lock:
                if self._producer is None:
                    # No idempotent producer: not every broker we run on supports it (tansu does not).
                    # A retried send can therefore duplicate a record; consumers dedupe on the id.
                    producer = AIOKafkaProducer(
                        **self._client_options(), acks="all", enable_idempotence=False
                    )
                    await _start(producer)
                    self._producer = producer
        return self._producer

    async def _get_admin(self) -> Any:
        if self._admin is None:
            async with self._clients_lock:
                if self._admin is None:
                    admin = AIOKafkaAdminClient(**self._client_options())
                    try:
                        await admin.start()
                    except BaseException:
                        await admin.close()
                        raise
                    self._admin = admin
        return self._admin

    async def _ensure_topic(self, full: str) -> None:
        # Created explicitly rather than left to broker auto-creation, which production clusters
        # often disable, so publishing to a new topic works like XADD creating a stream.
        if full in self._known_topics:
            return
        admin = await self._get_admin()
        new_topic = NewTopic(full, self._config.kafka_num_partitions, self._config.kafka_replication_factor)
        try:
            response = await admin.create_topics(
                [new_topic], timeout_ms=self._config.kafka_request_timeout_ms
            )
        except TopicAlreadyExistsError:
            pass
        else:
            for error in response.topic_errors:
                code = error[1]
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise for_code(code)(f"could not create topic {full}: {error[2:]}")
        self._known_topics.add(full)

    async def _start_at_end(self, full: str, group: str) -> None:
        # A consumer that only assigns (never subscribes) commits outside any group generation,
        # which sets a new group's offsets without the seconds a group join takes.
        probe = AIOKafkaConsumer(
            **self._client_options(f"{group}-setup"), group_id=group, enable_auto_commit=False
        )
        await _start(probe)
        try:
            producer = await self._get_producer()
            # The producer waits until the metadata of a just-created topic reaches it.
            partitions: set[int] = await producer.partitions_for(full)
            tps = [TopicPartition(full, p) for p in sorted(partitions)]
            probe.assign(tps)
            fresh = [tp for tp in tps if await probe.committed(tp) is None]
            if not fresh:
                return
            ends = await probe.end_offsets(fresh)
            try:
                await probe.commit({tp: ends[tp] for tp in fresh})
            except CommitFailedError:
                # The group is already live and its members set their own positions.
                logger.info("group %s on %s is already active; left its offsets alone", group, full)
        finally:
            await probe.stop()

    async def _consumer_for(self, full: str, group: str, name: str) -> _ConsumerHandle:
        key = (full, group, name)
        handle = self._consumers.get(key)
        if handle is not None:
            return handle
        await self._ensure_topic(full)
        async with self._consumers_lock:
            handle = self._consumers.get(key)
            if handle is not None:
                return handle
            consumer = AIOKafkaConsumer(
                **self._client_options(name),
                group_id=group,
                enable_auto_commit=False,
                # Only used where the group has no committed offset; absent an ensure_group here,
                # like Redis recreating a missing group, nothing already in the topic is skipped.
                auto_offset_reset=_OFFSET_RESETS[self._start_ids.get((full, group), "0")],
                session_timeout_ms=self._config.kafka_session_timeout_ms,
                heartbeat_interval_ms=self._config.kafka_heartbeat_interval_ms,
            )
            handle = _ConsumerHandle(topic=full, group=group, name=name, consumer=consumer)
            await _start(consumer)
            # Subscribed after start so that start does not wait out the join: `consume` honours
            # `block_ms` even while the group is still forming.
            consumer.subscribe([full], listener=_LedgerKeeper(handle))
            self._consumers[key] = handle
            return handle

    async def _take(
        self, handle: _ConsumerHandle, tp: TopicPartition, records: Sequence[Any]
    ) -> list[Delivery]:
        ledger = handle.ledgers.setdefault(tp.partition, _PartitionLedger())
        deliveries: list[Delivery] = []
        for record in records:
            message_id = f"{record.partition}:{record.offset}"
            try:
                if record.value is None:
                    raise ValueError("no value")
                event = Event.model_validate_json(record.value)
            except (ValidationError, ValueError) as exc:
                if not await self._dead_letter(handle, tp, record, describe_decode_error(exc)):
                    break
                ledger.hand_out(record.offset)
                try:
                    await self._settle(handle, tp, record.offset)
                except Exception:
                    # Commits are cumulative: the next successful ack on this partition covers it.
                    logger.exception("could not commit past dead-lettered %s on %s", message_id, handle.topic)
                continue
            ledger.hand_out(record.offset)
            deliveries.append(
                Delivery(topic=handle.topic, group=handle.group, message_id=message_id, event=event)
            )
        return deliveries

    async def _dead_letter(
        self, handle: _ConsumerHandle, tp: TopicPartition, record: Any, reason: str
    ) -> bool:
        message_id = f"{record.partition}:{record.offset}"
        # Only the error kind is logged: the record itself may carry user data.
        log_args = (message_id, handle.topic, handle.group, reason)
        logger.warning("malformed event %s on %s (group %s): %s; dead-lettered", *log_args)
        headers: list[tuple[str, bytes | None]] = [
            ("original_id", message_id.encode()),
            ("group", handle.group.encode()),
            ("reason", reason.encode()),
        ]
        # Original headers keep their names under a prefix so they cannot clobber the ones above.
        headers.extend((f"orig.{name}", value) for name, value in record.headers)
        dead = handle.topic + KAFKA_DEAD_LETTER_SUFFIX
        try:
            await self._ensure_topic(dead)
            producer = await self._get_producer()
            await producer.send_and_wait(dead, value=record.value, key=record.key, headers=headers)
        except Exception:
            logger.exception("could not dead-letter %s on %s; will retry it", message_id, handle.topic)
            # Read it again on the next consume: going on past it would commit over it (losing it)
            # or hand out later records of the partition out of order.
            handle.consumer.seek(tp, record.offset)
            return False
        return True

    async def _settle(self, handle: _ConsumerHandle, tp: TopicPartition, offset: int) -> None:
        async with handle.commit_lock:
            ledger = handle.ledgers.get(tp.partition)
            if ledger is None or offset not in ledger.unacked:
                return
            ledger.unacked.discard(offset)
            point = ledger.commit_point()
            if point is None or (ledger.committed is not None and point <= ledger.committed):
                return
            try:
                await handle.consumer.commit({tp: point})
            except (CommitFailedError, IllegalStateError):
                # A rebalance took the partition; its new owner starts from the last commit.
                log_args = (tp.partition, handle.topic, handle.group, handle.name)
                logger.warning("partition %s of %s left %s/%s during a commit; it redelivers", *log_args)
                return
            ledger.committed = point


async def _start(client: Any) -> None:
    try:
        await client.start()
    except BaseException:
        # A client whose start failed still holds sockets and tasks.
        await client.stop()
        raise
