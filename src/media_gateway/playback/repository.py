"""Every SQL statement on the `playback` schema. Catalog reads go through `catalog.repository`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from media_gateway.playback.models import resume_points, sessions


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: uuid.UUID
    user_id: uuid.UUID
    content_id: uuid.UUID
    device_id: str | None
    platform: str | None
    region: str
    state: str
    position_seconds: float
    duration_seconds: float | None
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class ResumeRow:
    content_id: uuid.UUID
    position_seconds: float
    duration_seconds: float | None
    session_id: uuid.UUID
    platform: str | None
    region: str
    updated_at: datetime


_SESSION_FIELDS = tuple(f.name for f in fields(SessionRow))
_RESUME_FIELDS = tuple(f.name for f in fields(ResumeRow))


def _session(row: Row[Any]) -> SessionRow:
    return SessionRow(**{k: row._mapping[k] for k in _SESSION_FIELDS})


def _resume(row: Row[Any]) -> ResumeRow:
    return ResumeRow(**{k: row._mapping[k] for k in _RESUME_FIELDS})


async def insert_session(conn: AsyncConnection, session: SessionRow) -> None:
    await conn.execute(
        insert(sessions).values(
            id=session.id,
            user_id=session.user_id,
            content_id=session.content_id,
            device_id=session.device_id,
            platform=session.platform,
            region=session.region,
            state=session.state,
            position_seconds=session.position_seconds,
            duration_seconds=session.duration_seconds,
            started_at=session.started_at,
            updated_at=session.updated_at,
            ended_at=session.ended_at,
        )
    )


async def get_session(
    conn: AsyncConnection, user_id: uuid.UUID, session_id: uuid.UUID, *, for_update: bool = False
) -> SessionRow | None:
    """The user's session; another user's is as absent as a missing one."""
    query = select(sessions).where(sessions.c.id == session_id, sessions.c.user_id == user_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).one_or_none()
    return _session(row) if row else None


async def save_session(conn: AsyncConnection, session: SessionRow) -> None:
    """Write the mutable part of a session (position, duration, state, times)."""
    await conn.execute(
        update(sessions)
        .where(sessions.c.id == session.id, sessions.c.user_id == session.user_id)
        .values(
            state=session.state,
            position_seconds=session.position_seconds,
            duration_seconds=session.duration_seconds,
            updated_at=session.updated_at,
            ended_at=session.ended_at,
        )
    )


async def list_sessions(
    conn: AsyncConnection,
    user_id: uuid.UUID,
    *,
    states: tuple[str, ...] | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[SessionRow]:
    """The user's sessions newest first, after the keyset `after` (started_at, id)."""
    query = select(sessions).where(sessions.c.user_id == user_id)
    if states is not None:
        query = query.where(sessions.c.state.in_(states))
    if after is not None:
        query = query.where(tuple_(sessions.c.started_at, sessions.c.id) < tuple_(*after))
    query = query.order_by(sessions.c.started_at.desc(), sessions.c.id.desc()).limit(limit)
    return [_session(r) for r in await conn.execute(query)]


async def get_resume(conn: AsyncConnection, user_id: uuid.UUID, content_id: uuid.UUID) -> ResumeRow | None:
    row = (
        await conn.execute(
            select(resume_points).where(
                resume_points.c.user_id == user_id, resume_points.c.content_id == content_id
            )
        )
    ).one_or_none()
    return _resume(row) if row else None


async def save_resume(conn: AsyncConnection, session: SessionRow) -> None:
    """The session's position becomes the user's resume point for its title."""
    values = {
        "position_seconds": session.position_seconds,
        "duration_seconds": session.duration_seconds,
        "session_id": session.id,
        "platform": session.platform,
        "region": session.region,
        "updated_at": session.updated_at,
    }
    await conn.execute(
        insert(resume_points)
        .values(user_id=session.user_id, content_id=session.content_id, **values)
        .on_conflict_do_update(
            index_elements=[resume_points.c.user_id, resume_points.c.content_id], set_=values
        )
    )


async def unfinished_titles(
    conn: AsyncConnection,
    user_id: uuid.UUID,
    *,
    threshold: float,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[ResumeRow]:
    """Resume points strictly between 0 and `threshold` of the duration, most recent first."""
    query = select(resume_points).where(
        resume_points.c.user_id == user_id,
        resume_points.c.duration_seconds > 0,
        resume_points.c.position_seconds > 0,
        resume_points.c.position_seconds < resume_points.c.duration_seconds * threshold,
    )
    if after is not None:
        query = query.where(tuple_(resume_points.c.updated_at, resume_points.c.content_id) < tuple_(*after))
    query = query.order_by(resume_points.c.updated_at.desc(), resume_points.c.content_id.desc()).limit(limit)
    return [_resume(r) for r in await conn.execute(query)]
