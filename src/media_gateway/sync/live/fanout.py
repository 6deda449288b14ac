"""The per-process live hub: ONE Redis pub/sub connection, subscribed per user channel while a
socket of that user is connected here, fanning each committed op out to the local sockets.

Every replica publishes its committed ops on the user's channel (`oplog.publish_committed`), so a
socket on any replica sees writes made on any other. The hub never awaits a socket: each socket has
a bounded queue, and a socket that falls behind is dropped and told to resume from its cursor."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from media_gateway.core.app import ServiceContext
from media_gateway.core.metrics import metric_set
from media_gateway.core.redis import redis_key
from media_gateway.core.settings import Settings
from media_gateway.sync.oplog import live_channel

logger = logging.getLogger(__name__)

HUB_EXTRA = "live_hub"
# How long a socket waits for Redis to confirm its user's channel before giving up.
_SUBSCRIBE_TIMEOUT_SEC = 5.0
_RECONNECT_BACKOFF_SEC = (0.05, 0.2, 0.5, 1.0, 2.0)
_IDLE_READ_SEC = 10.0


class LiveMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sockets = Gauge("mg_sync_ws_connections", "Open sync WebSocket connections", registry=registry)
        self.channels = Gauge(
            "mg_sync_live_channels", "User channels this process is subscribed to", registry=registry
        )
        self.received = Counter(
            "mg_sync_live_messages_total", "Ops received from Redis pub/sub", registry=registry
        )
        self.dropped = Counter(
            "mg_sync_ws_dropped_total",
            "Sockets closed to resume from their cursor",
            ["reason"],
            registry=registry,
        )


def live_metrics(registry: CollectorRegistry) -> LiveMetrics:
    return metric_set(registry, LiveMetrics, LiveMetrics)


@dataclass(eq=False)
class LiveSubscriber:
    """One socket's inbox. `offer` never blocks: a full inbox marks the socket for a resume."""

    user_id: uuid.UUID
    queue: asyncio.Queue[dict[str, Any]]
    resume_reason: str | None = None
    resume: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def create(cls, user_id: uuid.UUID, queue_size: int) -> LiveSubscriber:
        return cls(user_id=user_id, queue=asyncio.Queue(queue_size))

    def offer(self, op: dict[str, Any]) -> bool:
        if self.resume.is_set():
            return False
        try:
            self.queue.put_nowait(op)
        except asyncio.QueueFull:
            self.drop("slow_consumer")
            return False
        return True

    def drop(self, reason: str) -> None:
        if not self.resume.is_set():
            self.resume_reason = reason
            self.resume.set()


@dataclass(eq=False)
class _Channel:
    members: set[LiveSubscriber]
    ready: asyncio.Future[None]


class LiveHub:
    def __init__(self, redis: aioredis.Redis, settings: Settings, metrics: LiveMetrics) -> None:
        self._redis = redis
        self._settings = settings
        self._metrics = metrics
        self._pubsub: PubSub | None = None
        self._channels: dict[str, _Channel] = {}
        # Redis confirms SUBSCRIBEs in the order they were sent; one waiter per SUBSCRIBE sent.
        self._confirmations: dict[str, deque[asyncio.Future[None]]] = {}
        self._lock = asyncio.Lock()
        # Keeps the connection subscribed (and the reader reading) while no user is connected.
        self._control = redis_key(settings, "sync", "live", "hub", uuid.uuid4().hex)
        self._reader: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    async def start(self) -> None:
        # Not connected here: with Redis down the service must still start (and report not ready);
        # the reader connects, and reconnects with backoff, while sockets wait for it in `join`.
        self._reader = asyncio.create_task(self._read_forever(), name="sync-live-hub")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._fail_all("shutdown")
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None

    async def _connect(self) -> None:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self._control)
        self._pubsub = pubsub
        self._connected.set()

    async def join(self, subscriber: LiveSubscriber) -> None:
        """Returns once Redis has confirmed the user's channel: every op published from now on
        reaches `subscriber`, so a replay from the op log started afterwards leaves no gap."""
        channel = live_channel(self._settings, subscriber.user_id)
        # A socket reconnecting right after the hub lost Redis waits out the hub's reconnect.
        async with asyncio.timeout(_SUBSCRIBE_TIMEOUT_SEC):
            await self._connected.wait()
        async with self._lock:
            state = self._channels.get(channel)
            if state is None:
                ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                state = _Channel(members=set(), ready=ready)
                self._channels[channel] = state
                self._confirmations.setdefault(channel, deque()).append(ready)
                self._metrics.channels.set(len(self._channels))
                try:
                    await self._require_pubsub().subscribe(channel)
                except (RedisError, OSError) as exc:
                    self._forget(channel, state, exc)
                    raise
            state.members.add(subscriber)
        try:
            async with asyncio.timeout(_SUBSCRIBE_TIMEOUT_SEC):
                await asyncio.shield(state.ready)
        except BaseException:
            await self.leave(subscriber)
            raise
        self._metrics.sockets.inc()

    async def leave(self, subscriber: LiveSubscriber, *, joined: bool = False) -> None:
        if joined:
            self._metrics.sockets.dec()
        channel = live_channel(self._settings, subscriber.user_id)
        async with self._lock:
            state = self._channels.get(channel)
            if state is None or subscriber not in state.members:
                return
            state.members.discard(subscriber)
            if state.members:
                return
            del self._channels[channel]
            self._metrics.channels.set(len(self._channels))
            if self._pubsub is not None:
                try:
                    await self._pubsub.unsubscribe(channel)
                except (RedisError, OSError):
                    # The reader notices the broken connection and starts over without this channel.
                    logger.warning("live hub: unsubscribe failed", exc_info=True)

    def _forget(self, channel: str, state: _Channel, exc: BaseException) -> None:
        if self._channels.get(channel) is state:
            del self._channels[channel]
        waiters = self._confirmations.get(channel)
        if waiters and state.ready in waiters:
            waiters.remove(state.ready)
        if not state.ready.done():
            state.ready.set_exception(exc)
            state.ready.exception()  # retrieved: nobody else may be waiting

    def _require_pubsub(self) -> PubSub:
        if self._pubsub is None:
            raise RedisError("live hub is not connected")
        return self._pubsub

    async def _read_forever(self) -> None:
        failures = 0
        while True:
            try:
                if self._pubsub is None:
                    await self._connect()
                await self._read(self._require_pubsub())
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                logger.warning("live hub: pub/sub connection lost (%s); sockets resume", type(exc).__name__)
                # Ops published while we were away are in the op log: every socket here reconnects
                # and replays from its cursor instead of silently missing them.
                self._connected.clear()
                self._fail_all("feed_lost")
                old, self._pubsub = self._pubsub, None
                if old is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await old.aclose()  # type: ignore[no-untyped-call]
                await asyncio.sleep(_RECONNECT_BACKOFF_SEC[min(failures, len(_RECONNECT_BACKOFF_SEC) - 1)])
                failures += 1
            else:
                failures = 0

    async def _read(self, pubsub: PubSub) -> None:
        while True:
            # Not forever: each call lets redis-py PING a connection idle past its health interval,
            # so a silently dead one is noticed.
            message = await pubsub.get_message(timeout=_IDLE_READ_SEC)
            if message is None:
                continue
            kind = message["type"]
            channel = message["channel"]
            if isinstance(channel, bytes):
                channel = channel.decode()
            if kind == "message":
                self._deliver(channel, message["data"])
            elif kind == "subscribe":
                waiters = self._confirmations.get(channel)
                if waiters:
                    ready = waiters.popleft()
                    if not waiters:
                        del self._confirmations[channel]
                    if not ready.done():
                        ready.set_result(None)

    def _deliver(self, channel: str, data: bytes | str) -> None:
        state = self._channels.get(channel)
        if state is None:
            return
        self._metrics.received.inc()
        try:
            op = orjson.loads(data)
        except orjson.JSONDecodeError:
            logger.warning("live hub: dropped a malformed message on a user channel")
            return
        if not isinstance(op, dict):
            return
        for subscriber in state.members:
            subscriber.offer(op)

    def _fail_all(self, reason: str) -> None:
        for channel, state in list(self._channels.items()):
            for subscriber in state.members:
                subscriber.drop(reason)
            if not state.ready.done():
                state.ready.set_exception(RedisError(reason))
                state.ready.exception()
            del self._channels[channel]
        self._confirmations.clear()
        self._metrics.channels.set(0)


def live_hub(ctx: ServiceContext) -> LiveHub:
    hub = ctx.extras.get(HUB_EXTRA)
    if not isinstance(hub, LiveHub):
        raise RuntimeError("the sync live hub is not running (lifespan part missing)")
    return hub


def hub_client_name(settings: Settings) -> str:
    """How the hub's connection shows in Redis `CLIENT LIST` (prefix, then a per-process id)."""
    return redis_key(settings, "sync", "live-hub", uuid.uuid4().hex[:12])


@asynccontextmanager
async def live_hub_lifespan(ctx: ServiceContext) -> AsyncIterator[None]:
    # Its own client rather than a connection borrowed from the app's pool for good: a subscribed
    # connection blocks in reads forever, and a name makes it visible to operators.
    redis = aioredis.from_url(
        ctx.settings.effective_redis_url,
        client_name=hub_client_name(ctx.settings),
        socket_connect_timeout=ctx.settings.redis.socket_timeout_sec,
        health_check_interval=30,
        max_connections=4,
    )
    hub = LiveHub(redis, ctx.settings, live_metrics(ctx.registry))
    try:
        await hub.start()
        ctx.extras[HUB_EXTRA] = hub
        yield
    finally:
        ctx.extras.pop(HUB_EXTRA, None)
        await hub.stop()
        await redis.aclose()
