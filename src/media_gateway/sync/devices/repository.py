"""SQL of devices and remote commands. Times come from PostgreSQL's clock (`now()`), the one clock
all replicas share, so "online" and "expired" mean the same thing on every replica."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from media_gateway.sync.models import device_commands, user_devices, user_progress


@dataclass(frozen=True)
class DeviceRow:
    device_id: str
    name: str
    device_type: str
    platform: str | None
    capabilities: dict[str, Any]
    last_seen_at: datetime | None
    created_at: datetime
    online: bool


@dataclass(frozen=True)
class CommandRow:
    command_id: uuid.UUID
    target_device_id: str
    source_device_id: str | None
    command: str
    payload: dict[str, Any]
    created_at: datetime
    expires_at: datetime
    acknowledged_at: datetime | None
    expired: bool


def _online(online_sec: int) -> ColumnElement[bool]:
    seen = user_devices.c.last_seen_at
    return and_(seen.is_not(None), seen > func.now() - timedelta(seconds=online_sec)).label("online")


_DEVICE_COLUMNS = (
    user_devices.c.device_id,
    user_devices.c.name,
    user_devices.c.device_type,
    user_devices.c.platform,
    user_devices.c.capabilities,
    user_devices.c.last_seen_at,
    user_devices.c.created_at,
)


def _device(row: Any) -> DeviceRow:
    return DeviceRow(
        device_id=row.device_id,
        name=row.name,
        device_type=row.device_type,
        platform=row.platform,
        capabilities=dict(row.capabilities or {}),
        last_seen_at=row.last_seen_at,
        created_at=row.created_at,
        online=bool(row.online),
    )


def _mine(user_id: uuid.UUID, device_id: str) -> ColumnElement[bool]:
    return and_(user_devices.c.user_id == user_id, user_devices.c.device_id == device_id)


async def get_device(
    session: AsyncSession, user_id: uuid.UUID, device_id: str, online_sec: int, *, for_update: bool = False
) -> DeviceRow | None:
    query = select(*_DEVICE_COLUMNS, _online(online_sec)).where(_mine(user_id, device_id))
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).one_or_none()
    return _device(row) if row else None


async def list_devices(session: AsyncSession, user_id: uuid.UUID, online_sec: int) -> list[DeviceRow]:
    rows = await session.execute(
        select(*_DEVICE_COLUMNS, _online(online_sec))
        .where(user_devices.c.user_id == user_id)
        .order_by(user_devices.c.created_at, user_devices.c.device_id)
    )
    return [_device(r) for r in rows]


async def count_devices(session: AsyncSession, user_id: uuid.UUID) -> int:
    value = await session.scalar(select(func.count()).where(user_devices.c.user_id == user_id))
    return int(value or 0)


async def insert_device(
    session: AsyncSession,
    user_id: uuid.UUID,
    device_id: str,
    *,
    name: str,
    device_type: str,
    platform: str | None,
    capabilities: dict[str, Any],
    online_sec: int,
) -> DeviceRow:
    row = (
        await session.execute(
            insert(user_devices)
            .values(
                user_id=user_id,
                device_id=device_id,
                name=name,
                device_type=device_type,
                platform=platform,
                capabilities=capabilities,
                last_seen_at=func.now(),
            )
            .returning(*_DEVICE_COLUMNS, _online(online_sec))
        )
    ).one()
    return _device(row)


async def update_device(
    session: AsyncSession,
    user_id: uuid.UUID,
    device_id: str,
    *,
    name: str,
    device_type: str,
    platform: str | None,
    capabilities: dict[str, Any],
    online_sec: int,
) -> DeviceRow:
    row = (
        await session.execute(
            update(user_devices)
            .where(_mine(user_id, device_id))
            .values(
                name=name,
                device_type=device_type,
                platform=platform,
                capabilities=capabilities,
                last_seen_at=func.now(),
            )
            .returning(*_DEVICE_COLUMNS, _online(online_sec))
        )
    ).one()
    return _device(row)


async def touch_device(
    session: AsyncSession, user_id: uuid.UUID, device_id: str, online_sec: int
) -> tuple[DeviceRow, bool] | None:
    """Record a heartbeat; returns the device and whether it was online before, None if unknown."""
    before = await get_device(session, user_id, device_id, online_sec, for_update=True)
    if before is None:
        return None
    row = (
        await session.execute(
            update(user_devices)
            .where(_mine(user_id, device_id))
            .values(last_seen_at=func.now())
            .returning(*_DEVICE_COLUMNS, _online(online_sec))
        )
    ).one()
    return _device(row), before.online


async def delete_device(session: AsyncSession, user_id: uuid.UUID, device_id: str) -> bool:
    result = await session.execute(
        delete(user_devices).where(_mine(user_id, device_id)).returning(user_devices.c.device_id)
    )
    return result.first() is not None


_COMMAND_COLUMNS = (
    device_commands.c.command_id,
    device_commands.c.target_device_id,
    device_commands.c.source_device_id,
    device_commands.c.command,
    device_commands.c.payload,
    device_commands.c.created_at,
    device_commands.c.expires_at,
    device_commands.c.acknowledged_at,
    (device_commands.c.expires_at <= func.now()).label("expired"),
)


def _command(row: Any) -> CommandRow:
    return CommandRow(
        command_id=row.command_id,
        target_device_id=row.target_device_id,
        source_device_id=row.source_device_id,
        command=row.command,
        payload=dict(row.payload or {}),
        created_at=row.created_at,
        expires_at=row.expires_at,
        acknowledged_at=row.acknowledged_at,
        expired=bool(row.expired),
    )


async def insert_command(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    target_device_id: str,
    source_device_id: str | None,
    command: str,
    payload: dict[str, Any],
    ttl_sec: float,
) -> CommandRow:
    row = (
        await session.execute(
            insert(device_commands)
            .values(
                command_id=uuid.uuid4(),
                user_id=user_id,
                target_device_id=target_device_id,
                source_device_id=source_device_id,
                command=command,
                payload=payload,
                created_at=func.now(),
                expires_at=func.now() + timedelta(seconds=ttl_sec),
            )
            .returning(*_COMMAND_COLUMNS)
        )
    ).one()
    return _command(row)


async def get_command(
    session: AsyncSession,
    user_id: uuid.UUID,
    target_device_id: str,
    command_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> CommandRow | None:
    query = select(*_COMMAND_COLUMNS).where(
        device_commands.c.user_id == user_id,
        device_commands.c.target_device_id == target_device_id,
        device_commands.c.command_id == command_id,
    )
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).one_or_none()
    return _command(row) if row else None


async def pending_commands(
    session: AsyncSession, user_id: uuid.UUID, target_device_id: str
) -> list[CommandRow]:
    rows = await session.execute(
        select(*_COMMAND_COLUMNS)
        .where(
            device_commands.c.user_id == user_id,
            device_commands.c.target_device_id == target_device_id,
            device_commands.c.acknowledged_at.is_(None),
            device_commands.c.expires_at > func.now(),
        )
        .order_by(device_commands.c.created_at)
    )
    return [_command(r) for r in rows]


async def acknowledge_command(session: AsyncSession, user_id: uuid.UUID, command_id: uuid.UUID) -> CommandRow:
    row = (
        await session.execute(
            update(device_commands)
            .where(device_commands.c.user_id == user_id, device_commands.c.command_id == command_id)
            .values(acknowledged_at=func.now())
            .returning(*_COMMAND_COLUMNS)
        )
    ).one()
    return _command(row)


async def saved_position(session: AsyncSession, user_id: uuid.UUID, content_id: str) -> float | None:
    """Where the user stopped watching `content_id`, None if never started or watched to the end."""
    row = (
        await session.execute(
            select(user_progress.c.position_seconds, user_progress.c.completed).where(
                user_progress.c.user_id == user_id, user_progress.c.content_id == content_id
            )
        )
    ).one_or_none()
    if row is None or row.completed:
        return None
    return float(row.position_seconds)
