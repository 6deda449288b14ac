"""Devices, handoff and remote commands. Every change is also an op in the user's op log (appended
in the same transaction, published after the commit), so `/sync/changes` and the WebSocket carry
device and command events in the same order as watchlist and progress changes.

Remote commands live `sync.command_ttl_sec` (5 s): an expired command is not delivered (the socket
skips it, the pending list omits it), and acknowledging it answers 410 Gone, because the target
acting on a stale "play" several seconds late is what the TTL exists to prevent."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from media_gateway.core.app import ServiceContext
from media_gateway.core.errors import ProblemError
from media_gateway.sync.devices import repository as repo
from media_gateway.sync.devices.schemas import (
    CommandName,
    CommandView,
    DeviceCapabilities,
    DeviceRegistration,
    DeviceView,
)
from media_gateway.sync.oplog import (
    NewOperation,
    SyncOperation,
    append_operations,
    lock_users,
    publish_committed,
)
from media_gateway.sync.runtime import sync_clock

logger = logging.getLogger(__name__)

DEVICE_REGISTERED = "device.registered"
DEVICE_UPDATED = "device.updated"
DEVICE_REMOVED = "device.removed"
COMMAND_ISSUED = "command.issued"
COMMAND_ACKNOWLEDGED = "command.acknowledged"


def _op(
    ctx: ServiceContext,
    user_id: uuid.UUID,
    kind: str,
    origin: str | None,
    payload: dict[str, Any],
    content_id: str | None = None,
) -> NewOperation:
    return NewOperation(
        user_id=user_id,
        op_id=uuid.uuid4(),
        kind=kind,
        device_id=origin,
        content_id=content_id,
        payload=payload,
        hlc=sync_clock(ctx).now().encode(),
    )


async def _publish(ctx: ServiceContext, ops: list[SyncOperation]) -> None:
    try:
        await publish_committed(ctx.redis, ctx.settings, ops)
    except (RedisError, OSError):
        # Committed and in the op log: sockets miss the push but catch up from their cursor.
        logger.warning("sync: live publish failed", exc_info=True)


def device_view(row: repo.DeviceRow) -> DeviceView:
    return DeviceView(
        device_id=row.device_id,
        name=row.name,
        device_type=row.device_type,
        platform=row.platform,
        capabilities=DeviceCapabilities.model_validate(row.capabilities),
        last_seen_at=row.last_seen_at,
        created_at=row.created_at,
        online=row.online,
    )


def _device_payload(row: repo.DeviceRow) -> dict[str, Any]:
    return device_view(row).model_dump(mode="json", by_alias=True)


def command_view(row: repo.CommandRow) -> CommandView:
    if row.acknowledged_at is not None:
        status = "acknowledged"
    elif row.expired:
        status = "expired"
    else:
        status = "pending"
    return CommandView(
        command_id=row.command_id,
        command=row.command,
        target_device_id=row.target_device_id,
        source_device_id=row.source_device_id,
        content_id=row.payload.get("content_id"),
        position_seconds=row.payload.get("position_seconds"),
        created_at=row.created_at,
        expires_at=row.expires_at,
        acknowledged_at=row.acknowledged_at,
        status=status,
    )


def _command_payload(row: repo.CommandRow) -> dict[str, Any]:
    view = command_view(row).model_dump(mode="json")
    return {
        key: view[key]
        for key in (
            "command_id",
            "command",
            "target_device_id",
            "source_device_id",
            "content_id",
            "position_seconds",
            "expires_at",
            "acknowledged_at",
        )
    }


def _online_sec(ctx: ServiceContext) -> int:
    return ctx.settings.sync.device_online_sec


async def register_device(
    ctx: ServiceContext, user_id: uuid.UUID, origin: str | None, body: DeviceRegistration
) -> tuple[DeviceView, bool]:
    """Register (or re-register: name, type, platform and capabilities are replaced) a device;
    registering counts as a heartbeat. Returns the device and whether it is new."""
    device_id = body.device_id or str(uuid.uuid4())
    fields: dict[str, Any] = {
        "name": body.name,
        "device_type": body.device_type,
        "platform": body.platform,
        "capabilities": body.capabilities.model_dump(mode="json"),
        "online_sec": _online_sec(ctx),
    }
    async with ctx.sessionmaker() as session, session.begin():
        # One registration at a time per user: the device limit below cannot be raced past.
        await lock_users(session, [user_id])
        before = await repo.get_device(session, user_id, device_id, _online_sec(ctx), for_update=True)
        if before is None:
            if await repo.count_devices(session, user_id) >= ctx.settings.sync.max_devices_per_user:
                raise ProblemError(
                    409,
                    f"at most {ctx.settings.sync.max_devices_per_user} devices per user; remove one first",
                )
            row = await repo.insert_device(session, user_id, device_id, **fields)
            kind: str | None = DEVICE_REGISTERED
        else:
            row = await repo.update_device(session, user_id, device_id, **fields)
            changed = (before.name, before.device_type, before.platform, before.capabilities) != (
                row.name,
                row.device_type,
                row.platform,
                row.capabilities,
            )
            kind = DEVICE_UPDATED if changed or not before.online else None
        ops = []
        if kind is not None:
            ops = await append_operations(
                session, [_op(ctx, user_id, kind, origin or device_id, _device_payload(row))]
            )
    await _publish(ctx, ops)
    return device_view(row), before is None


async def list_devices(ctx: ServiceContext, user_id: uuid.UUID) -> list[DeviceView]:
    async with ctx.sessionmaker() as session:
        rows = await repo.list_devices(session, user_id, _online_sec(ctx))
    return [device_view(r) for r in rows]


async def _heartbeat(
    ctx: ServiceContext, session: AsyncSession, user_id: uuid.UUID, device_id: str
) -> tuple[repo.DeviceRow | None, list[SyncOperation]]:
    # Always the user's advisory lock before any device row: the order every writer here (and the
    # op log) takes them in, so a heartbeat and a registration cannot deadlock.
    await lock_users(session, [user_id])
    touched = await repo.touch_device(session, user_id, device_id, _online_sec(ctx))
    if touched is None:
        return None, []
    row, was_online = touched
    if was_online:
        # Only the offline → online edge is news; a heartbeat per device per minute is not an op.
        return row, []
    ops = await append_operations(
        session, [_op(ctx, user_id, DEVICE_UPDATED, device_id, _device_payload(row))]
    )
    return row, ops


async def heartbeat(ctx: ServiceContext, user_id: uuid.UUID, device_id: str) -> DeviceView:
    async with ctx.sessionmaker() as session, session.begin():
        row, ops = await _heartbeat(ctx, session, user_id, device_id)
    if row is None:
        raise ProblemError(404, f"no device {device_id!r}")
    await _publish(ctx, ops)
    return device_view(row)


async def touch_device(ctx: ServiceContext, user_id: uuid.UUID, device_id: str) -> None:
    """A heartbeat from the device's WebSocket; an unregistered device id is simply not tracked."""
    async with ctx.sessionmaker() as session, session.begin():
        _, ops = await _heartbeat(ctx, session, user_id, device_id)
    await _publish(ctx, ops)


async def remove_device(ctx: ServiceContext, user_id: uuid.UUID, origin: str | None, device_id: str) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        await lock_users(session, [user_id])
        if not await repo.delete_device(session, user_id, device_id):
            raise ProblemError(404, f"no device {device_id!r}")
        ops = await append_operations(
            session, [_op(ctx, user_id, DEVICE_REMOVED, origin, {"device_id": device_id})]
        )
    await _publish(ctx, ops)


async def issue_command(
    ctx: ServiceContext,
    user_id: uuid.UUID,
    origin: str | None,
    target_device_id: str,
    command: CommandName,
    *,
    content_id: str | None = None,
    position_seconds: float | None = None,
    from_saved_progress: bool = False,
) -> CommandView:
    """Queue `command` for the target for `command_ttl_sec`; it reaches the target's socket as a
    `command.issued` op. Unknown target → 404, offline or not remote controllable → 409."""
    if command == "seek" and position_seconds is None:
        raise ProblemError(422, "a seek needs position_seconds")
    async with ctx.sessionmaker() as session, session.begin():
        target = await repo.get_device(session, user_id, target_device_id, _online_sec(ctx))
        if target is None:
            raise ProblemError(404, f"no device {target_device_id!r}")
        if not target.online:
            raise ProblemError(
                409,
                f"device {target_device_id!r} is offline (no heartbeat in the last {_online_sec(ctx)} s)",
            )
        if target.capabilities.get("remote_controllable") is False:
            raise ProblemError(409, f"device {target_device_id!r} does not accept remote commands")
        if from_saved_progress and position_seconds is None and content_id is not None:
            position_seconds = await repo.saved_position(session, user_id, content_id) or 0.0
        payload: dict[str, Any] = {}
        if content_id is not None:
            payload["content_id"] = content_id
        if position_seconds is not None:
            payload["position_seconds"] = position_seconds
        row = await repo.insert_command(
            session,
            user_id,
            target_device_id=target_device_id,
            source_device_id=origin,
            command=command,
            payload=payload,
            ttl_sec=ctx.settings.sync.command_ttl_sec,
        )
        ops = await append_operations(
            session, [_op(ctx, user_id, COMMAND_ISSUED, origin, _command_payload(row), content_id)]
        )
    await _publish(ctx, ops)
    return command_view(row)


async def handoff(
    ctx: ServiceContext,
    user_id: uuid.UUID,
    origin: str | None,
    target_device_id: str,
    content_id: str,
    position_seconds: float | None,
) -> CommandView:
    """Continue `content_id` on the target: a `play` command at the given position, or where the
    user stopped watching it."""
    return await issue_command(
        ctx,
        user_id,
        origin,
        target_device_id,
        "play",
        content_id=content_id,
        position_seconds=position_seconds,
        from_saved_progress=True,
    )


async def get_command(
    ctx: ServiceContext, user_id: uuid.UUID, target_device_id: str, command_id: uuid.UUID
) -> CommandView:
    async with ctx.sessionmaker() as session:
        row = await repo.get_command(session, user_id, target_device_id, command_id)
    if row is None:
        raise ProblemError(404, f"no command {command_id} for device {target_device_id!r}")
    return command_view(row)


async def pending_commands(
    ctx: ServiceContext, user_id: uuid.UUID, target_device_id: str
) -> list[CommandView]:
    async with ctx.sessionmaker() as session:
        if await repo.get_device(session, user_id, target_device_id, _online_sec(ctx)) is None:
            raise ProblemError(404, f"no device {target_device_id!r}")
        rows = await repo.pending_commands(session, user_id, target_device_id)
    return [command_view(r) for r in rows]


async def acknowledge_command(
    ctx: ServiceContext, user_id: uuid.UUID, origin: str | None, target_device_id: str, command_id: uuid.UUID
) -> CommandView:
    """The target confirms it acted on the command. Idempotent once acknowledged; an expired
    command answers 410."""
    if origin != target_device_id:
        raise ProblemError(403, "only the target device acknowledges a command: send X-Device-ID = its id")
    async with ctx.sessionmaker() as session, session.begin():
        await lock_users(session, [user_id])
        row = await repo.get_command(session, user_id, target_device_id, command_id, for_update=True)
        if row is None:
            raise ProblemError(404, f"no command {command_id} for device {target_device_id!r}")
        if row.acknowledged_at is not None:
            return command_view(row)
        if row.expired:
            raise ProblemError(410, f"command {command_id} expired at {row.expires_at.isoformat()}")
        row = await repo.acknowledge_command(session, user_id, command_id)
        ops = await append_operations(
            session,
            [
                _op(
                    ctx,
                    user_id,
                    COMMAND_ACKNOWLEDGED,
                    origin,
                    _command_payload(row),
                    row.payload.get("content_id"),
                )
            ],
        )
    await _publish(ctx, ops)
    return command_view(row)
