"""`GET /api/v1/sync/ws`: the user's op stream, live, resumable from a cursor.

Authentication (checked before anything is read from or sent to the client):
- `Authorization: Bearer <access token>` (native apps, servers), or
- for browsers, which cannot set headers on a WebSocket: the subprotocols
  `Sec-WebSocket-Protocol: mg.sync.v1, bearer.<access token>`; the server selects `mg.sync.v1`.
Tokens are deliberately NOT accepted in the query string, where access logs and proxies keep them.
A missing or invalid token closes the socket with 4401, a client (non-user) token with 4403.

Query: `device_id` (this connection's device: its own ops are not echoed back, and `command.issued`
ops targeting it are delivered), `cursor` (resume after this point; without one the stream starts
at the user's current head).

Server → client, all JSON:
- `{"type": "op", "cursor": c, "op": {...}}` per op (`op` as in `/sync/changes`); keep the latest
  `cursor` and pass it when reconnecting: nothing is missed and nothing repeated.
- `{"type": "synced", "cursor": c}` once the replay after the given cursor is complete.
- `{"type": "pong", "cursor": c}` for a client `{"type": "ping"}` (which also counts as the device's
  heartbeat).
- `{"type": "error", "detail": ...}` for a client message the server does not understand.
Close codes: 4401/4403 auth (4401 also when the token that opened the socket expires: reconnect
with a fresh one), 4400 bad query parameter, 4429 the client fell behind (or the server lost its
live feed): reconnect with the last cursor; 1001 server shutting down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from redis.exceptions import RedisError
from starlette.websockets import WebSocketState

from media_gateway.core.app import ServiceContext
from media_gateway.core.security.dependencies import token_verifier
from media_gateway.core.security.tokens import InvalidTokenError, Principal
from media_gateway.core.settings import SyncSettings
from media_gateway.sync.devices import service as devices
from media_gateway.sync.devices.schemas import DEVICE_ID_PATTERN
from media_gateway.sync.live.fanout import LiveSubscriber, live_hub, live_metrics
from media_gateway.sync.oplog import decode_cursor, encode_cursor, head_seq, list_operations

logger = logging.getLogger(__name__)

router = APIRouter()

SUBPROTOCOL = "mg.sync.v1"
_TOKEN_SUBPROTOCOL = "bearer."  # noqa: S105 - a prefix, not a secret
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_BAD_REQUEST = 4400
CLOSE_RESUME = 4429
CLOSE_GOING_AWAY = 1001
_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)
_HEARTBEAT_MIN_INTERVAL_SEC = 10.0


def _token_from(websocket: WebSocket) -> str | None:
    header = websocket.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    for protocol in websocket.scope.get("subprotocols", []):
        if protocol.startswith(_TOKEN_SUBPROTOCOL):
            return protocol[len(_TOKEN_SUBPROTOCOL) :] or None
    return None


def _chosen_subprotocol(websocket: WebSocket) -> str | None:
    # A browser that offered subprotocols fails the connection unless one of them is selected.
    offered: list[str] = websocket.scope.get("subprotocols", [])
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    # Closing before accept() turns into a bare HTTP 403 that a browser cannot read; accepting and
    # closing at once tells every client why, and nothing is read from it first.
    await websocket.accept(subprotocol=_chosen_subprotocol(websocket))
    await websocket.close(code=code, reason=reason)


async def _authenticate(websocket: WebSocket, ctx: ServiceContext) -> Principal | None:
    token = _token_from(websocket)
    if token is None:
        await _refuse(websocket, CLOSE_UNAUTHORIZED, "a bearer access token is required")
        return None
    try:
        principal = await token_verifier(ctx).verify(token)
    except InvalidTokenError:
        await _refuse(websocket, CLOSE_UNAUTHORIZED, "invalid access token")
        return None
    if principal.user_id is None:
        await _refuse(websocket, CLOSE_FORBIDDEN, "a user token is required")
        return None
    return principal


@dataclass
class _Stream:
    """What one socket has delivered. `position` only ever moves to an op whose predecessor (for
    this user) it has already passed, so every op at or below it was handled: it is the cursor, and
    anything arriving at or below it is a duplicate."""

    user_id: uuid.UUID
    device_id: str | None
    position: int

    def is_new(self, op: dict[str, Any]) -> bool:
        seq = op.get("seq")
        return isinstance(seq, int) and seq > self.position

    def follows(self, op: dict[str, Any]) -> bool:
        """Whether `op` comes right after what was handled. A live op names its predecessor; when
        that is ahead of us, an earlier op is still on its way from another replica (publishes can
        overtake each other) or its publish was lost, and the log has to fill the gap."""
        previous = op.get("prev_seq")
        return isinstance(previous, int) and previous <= self.position

    def accept(self, op: dict[str, Any]) -> dict[str, Any] | None:
        """Move past `op` (new and in order); the message for it, or None when it is not for this
        device."""
        self.position = op["seq"]
        if not self._deliverable(op):
            return None
        # Not popped: the hub hands the same dict to every socket of the user.
        sent = {k: v for k, v in op.items() if k != "prev_seq"}
        return {"type": "op", "cursor": encode_cursor(self.position), "op": sent}

    def _deliverable(self, op: dict[str, Any]) -> bool:
        origin = op.get("device_id")
        if op.get("kind") == devices.COMMAND_ISSUED:
            payload = op.get("payload") or {}
            if _expired(payload.get("expires_at")):
                return False
            if self.device_id is not None and payload.get("target_device_id") == self.device_id:
                return True
        return self.device_id is None or origin != self.device_id


def _expired(expires_at: object) -> bool:
    if not isinstance(expires_at, str):
        return False
    try:
        deadline = datetime.fromisoformat(expires_at)
    except ValueError:
        return False
    return deadline <= datetime.now(UTC)


def _dumps(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


@router.websocket("/api/v1/sync/ws")
async def sync_socket(websocket: WebSocket) -> None:
    ctx: ServiceContext = websocket.app.state.ctx
    principal = await _authenticate(websocket, ctx)
    if principal is None:
        return
    user_id = principal.user_id
    assert user_id is not None
    device_id = websocket.query_params.get("device_id")
    raw_cursor = websocket.query_params.get("cursor")
    if device_id is not None and not _DEVICE_ID.fullmatch(device_id):
        await _refuse(websocket, CLOSE_BAD_REQUEST, "device_id: 1-128 of A-Z a-z 0-9 . _ : -")
        return
    try:
        since = decode_cursor(raw_cursor) if raw_cursor is not None else None
    except ValueError:
        await _refuse(websocket, CLOSE_BAD_REQUEST, "cursor: not a cursor this server issued")
        return

    settings = ctx.settings.sync
    hub = live_hub(ctx)
    metrics = live_metrics(ctx.registry)
    subscriber = LiveSubscriber.create(user_id, settings.ws_queue_size)
    await websocket.accept(subprotocol=_chosen_subprotocol(websocket))
    try:
        # Subscribed before the log is read: an op committed after the read is published after
        # it, so it reaches the queue; one committed before it is in the read.
        await hub.join(subscriber)
    except (RedisError, OSError, TimeoutError):
        logger.warning("sync ws: live feed unavailable", exc_info=True)
        await websocket.close(code=CLOSE_RESUME, reason="live feed unavailable; reconnect")
        return
    stream = _Stream(user_id=user_id, device_id=device_id, position=since or 0)
    tasks: list[asyncio.Task[Any]] = []
    joined = True
    try:
        if device_id is not None:
            await devices.touch_device(ctx, user_id, device_id)
        sender = asyncio.create_task(_send_ops(websocket, ctx, stream, subscriber, replay=since is not None))
        receiver = asyncio.create_task(_receive(websocket, ctx, stream, subscriber))
        resume = asyncio.create_task(subscriber.resume.wait())
        # The socket lives no longer than the token that opened it.
        expiry = asyncio.create_task(asyncio.sleep(max(0.0, principal.expires_at - time.time())))
        tasks = [sender, receiver, resume, expiry]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        await hub.leave(subscriber, joined=True)
        joined = False
        failure = next(
            (
                o
                for o in outcomes[:2]
                if isinstance(o, Exception)
                and not isinstance(o, WebSocketDisconnect | asyncio.CancelledError)
            ),
            None,
        )
        if expiry in done and not subscriber.resume.is_set():
            await _close_quietly(
                websocket, CLOSE_UNAUTHORIZED, "access token expired; reconnect with a new one", settings
            )
        elif subscriber.resume.is_set():
            reason = subscriber.resume_reason or "resume"
            metrics.dropped.labels(reason).inc()
            code = CLOSE_GOING_AWAY if reason == "shutdown" else CLOSE_RESUME
            # A slow reader's close frame queues behind what it has not read yet: give it the
            # send timeout to get there before the connection is simply dropped.
            await _close_quietly(websocket, code, f"{reason}; reconnect with your last cursor", settings)
        elif failure is not None:
            if not isinstance(failure, TimeoutError):
                logger.warning("sync ws: stream failed", exc_info=failure)
            metrics.dropped.labels("error").inc()
            await _close_quietly(websocket, CLOSE_RESUME, "reconnect with your last cursor", settings)
    finally:
        for task in tasks:
            task.cancel()
        if joined:
            await hub.leave(subscriber, joined=True)


async def _close_quietly(websocket: WebSocket, code: int, reason: str, settings: SyncSettings) -> None:
    if websocket.application_state != WebSocketState.CONNECTED:
        return
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect, TimeoutError):
        async with asyncio.timeout(settings.ws_send_timeout_sec):
            await websocket.close(code=code, reason=reason)


async def _send(websocket: WebSocket, ctx: ServiceContext, message: dict[str, Any]) -> None:
    # A client that stops reading fills its TCP window; it must not pin this task forever.
    async with asyncio.timeout(ctx.settings.sync.ws_send_timeout_sec):
        await websocket.send_text(_dumps(message))


async def _send_ops(
    websocket: WebSocket, ctx: ServiceContext, stream: _Stream, subscriber: LiveSubscriber, *, replay: bool
) -> None:
    if replay:
        await _catch_up(websocket, ctx, stream)
    else:
        async with ctx.sessionmaker() as session:
            stream.position = await head_seq(session, stream.user_id)
    await _send(websocket, ctx, {"type": "synced", "cursor": encode_cursor(stream.position)})
    while True:
        item = await subscriber.queue.get()
        # Ops carry no "type"; the receiver's replies (pong, error) do.
        reply = item.get("type")
        if reply is not None:
            if reply == "pong":
                item = {"type": "pong", "cursor": encode_cursor(stream.position)}
            await _send(websocket, ctx, item)
            continue
        if not stream.is_new(item):
            continue
        if not stream.follows(item):
            await _catch_up(websocket, ctx, stream)
            continue
        message = stream.accept(item)
        if message is not None:
            await _send(websocket, ctx, message)


async def _catch_up(websocket: WebSocket, ctx: ServiceContext, stream: _Stream) -> None:
    """Send everything committed after the stream's position, from the log, in order."""
    page = ctx.settings.sync.ws_replay_page_size
    while True:
        # A page per short session: a slow reader must not hold a pooled connection.
        async with ctx.sessionmaker() as session:
            ops = await list_operations(session, stream.user_id, stream.position, page)
        for op in ops:
            message = stream.accept(op.to_json())
            if message is not None:
                await _send(websocket, ctx, message)
        if len(ops) < page:
            return


async def _receive(
    websocket: WebSocket, ctx: ServiceContext, stream: _Stream, subscriber: LiveSubscriber
) -> None:
    loop = asyncio.get_running_loop()
    last_heartbeat = loop.time()
    while True:
        event = await websocket.receive()
        if event["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(event.get("code", 1000), event.get("reason"))
        raw = event.get("text") if event.get("text") is not None else event.get("bytes")
        try:
            message = orjson.loads(raw) if raw is not None else None
        except orjson.JSONDecodeError:
            message = None
        if not isinstance(message, dict) or message.get("type") != "ping":
            # Through the queue, so that only the sender task writes to the socket.
            subscriber.offer({"type": "error", "detail": 'the only client message is {"type": "ping"}'})
            continue
        subscriber.offer({"type": "pong"})
        if stream.device_id is not None and loop.time() - last_heartbeat >= _HEARTBEAT_MIN_INTERVAL_SEC:
            last_heartbeat = loop.time()
            await devices.touch_device(ctx, stream.user_id, stream.device_id)
