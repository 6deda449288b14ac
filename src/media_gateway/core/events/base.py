"""The event model, the `EventBus` interface every backend implements, and the consumer loop.

Delivery is at-least-once on every backend: a message may be handed out again until it is acked
(when, depends on the backend). Consumers must therefore be idempotent on `Event.id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from media_gateway.core.settings import Settings

logger = logging.getLogger(__name__)


def _new_event_id() -> str:
    return str(uuid.uuid4())


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=_new_event_id)
    type: str = Field(min_length=1)
    key: str = Field(min_length=1)
    # Naive datetimes are rejected: an event read in another process must mean one instant.
    occurred_at: AwareDatetime = Field(default_factory=_utc_now)
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _canonical_uuid(cls, value: object) -> str:
        # Consumers deduplicate on the id, so one UUID must have exactly one spelling.
        if isinstance(value, uuid.UUID):
            return str(value)
        if not isinstance(value, str):
            raise ValueError("event id must be a UUID string")
        return str(uuid.UUID(value))

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message handed to one consumer; pass it back to `ack` once handled."""

    topic: str
    group: str
    message_id: str
    event: Event
    # 1 on first delivery; higher when the message was reclaimed from a consumer that did not ack.
    delivery_count: int = 1


def topic_name(settings: Settings, name: str) -> str:
    """`content.ingested` -> `media-gateway.content.ingested`; an already prefixed name is kept."""
    prefix = f"{settings.events.topic_prefix}."
    return name if name.startswith(prefix) else prefix + name


@runtime_checkable
class EventBus(Protocol):
    """Topics may be given short (`content.ingested`) or full (`media-gateway.content.ingested`)."""

    async def publish(self, topic: str, event: Event) -> str: ...

    async def publish_many(self, events: Sequence[tuple[str, Event]]) -> list[str]:
        """Publish in the given order (per topic and key, as `publish` one by one would), but
        without a round trip each; returns the message ids."""
        ...

    async def ensure_group(self, topic: str, group: str, start_id: str = "$") -> None: ...

    async def consume(
        self, topic: str, group: str, consumer: str, count: int = 10, block_ms: int | None = 1000
    ) -> list[Delivery]: ...

    async def ack(self, delivery: Delivery) -> None: ...


@runtime_checkable
class ClosableEventBus(EventBus, Protocol):
    """What `make_event_bus` returns: whoever made the bus closes it.

    Kept apart from `EventBus` so that code which only publishes or consumes (and its test fakes)
    need not implement a close it never calls."""

    async def aclose(self) -> None: ...


def describe_decode_error(exc: Exception) -> str:
    """Why a message could not be read as an `Event`, without echoing its content."""
    if isinstance(exc, ValidationError):
        # Locations and error types only; `str(exc)` would echo the offending input.
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['type']}" for err in exc.errors()
        )
    return str(exc)


EventHandler = Callable[[Event], Awaitable[None]]


async def run_consumer(
    bus: EventBus,
    topic: str,
    group: str,
    consumer: str,
    handler: EventHandler,
    stop_event: asyncio.Event,
    *,
    count: int = 10,
    block_ms: int = 1000,
    start_id: str = "$",
    error_backoff_sec: float = 1.0,
) -> None:
    """Feed every event of `topic` for `group` to `handler` until `stop_event` is set.

    An event is acked only after `handler` returns; one whose handler raised stays unacked and is
    redelivered by the bus's own rule (Redis: once idle for the redelivery time; Kafka: after a
    rebalance or restart). `start_id` only matters when the group does not exist yet (see
    `EventBus.ensure_group`).
    """
    group_ready = False
    failures = 0
    while not stop_event.is_set():
        try:
            if not group_ready:
                await bus.ensure_group(topic, group, start_id=start_id)
                group_ready = True
            deliveries = await bus.consume(topic, group, consumer, count=count, block_ms=block_ms)
            failures = 0
        except Exception:
            # Broker unreachable or similar: keep the loop alive, back off so as not to spin.
            failures += 1
            logger.exception("consumer %s/%s on %s could not read events", group, consumer, topic)
            await _wait(stop_event, min(error_backoff_sec * 2 ** (failures - 1), 30.0))
            continue
        # A batch already claimed is finished even if asked to stop: its messages would otherwise
        # sit unacked until the bus redelivers them.
        for delivery in deliveries:
            event = delivery.event
            try:
                await handler(event)
            except Exception:
                logger.exception(
                    "handler failed for event %s (%s) message %s on %s group %s, delivery %d; "
                    "left pending for redelivery",
                    event.id,
                    event.type,
                    delivery.message_id,
                    delivery.topic,
                    group,
                    delivery.delivery_count,
                )
                continue
            try:
                await bus.ack(delivery)
            except Exception:
                # Handled but not acked: it will be redelivered, which idempotent handlers absorb.
                logger.exception("could not ack message %s on %s", delivery.message_id, delivery.topic)


async def _wait(stop_event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop_event.wait(), timeout=seconds)
