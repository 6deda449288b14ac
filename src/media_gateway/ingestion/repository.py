"""SQL of the ingestion domain: job runs and the event outbox (cursors: sources/repository.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from media_gateway.ingestion.models import jobs


async def create_job(conn: AsyncConnection, kind: str, source: str | None) -> uuid.UUID:
    job_id = uuid.uuid4()
    await conn.execute(insert(jobs).values(id=job_id, kind=kind, source=source, status="queued"))
    return job_id


async def start_job(conn: AsyncConnection, job_id: uuid.UUID) -> None:
    await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id)
        .values(status="running", started_at=func.now(), heartbeat_at=func.now())
    )


async def update_job_counts(conn: AsyncConnection, job_id: uuid.UUID, counts: dict[str, Any]) -> None:
    await conn.execute(update(jobs).where(jobs.c.id == job_id).values(counts=counts, heartbeat_at=func.now()))


async def finish_job(
    conn: AsyncConnection, job_id: uuid.UUID, counts: dict[str, Any], error: str | None = None
) -> None:
    await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id)
        .values(
            status="failed" if error else "succeeded",
            counts=counts,
            error=error,
            finished_at=func.now(),
        )
    )


async def get_job(conn: AsyncConnection, job_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).one_or_none()
    return dict(row._mapping) if row else None


async def list_jobs(conn: AsyncConnection, limit: int) -> list[dict[str, Any]]:
    rows = await conn.execute(select(jobs).order_by(jobs.c.created_at.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]


async def fail_dead_jobs(conn: AsyncConnection, silent_for: timedelta) -> int:
    """Jobs whose heartbeat stopped died with their process; say so instead of showing them forever."""
    result = await conn.execute(
        update(jobs)
        .where(
            jobs.c.status.in_(("queued", "running")),
            func.coalesce(jobs.c.heartbeat_at, jobs.c.created_at) < func.now() - silent_for,
        )
        .values(status="failed", error="interrupted: the process running it stopped", finished_at=func.now())
    )
    return int(result.rowcount or 0)


async def lock_job_slot(conn: AsyncConnection, kind: str, source: str | None) -> None:
    """Serializes job starts of one (kind, source) across replicas until the transaction ends."""
    await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"mg-job:{kind}:{source}"))))


async def active_job(conn: AsyncConnection, kind: str, source: str | None) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            select(jobs)
            .where(jobs.c.kind == kind, jobs.c.source == source, jobs.c.status.in_(("queued", "running")))
            .limit(1)
        )
    ).one_or_none()
    return dict(row._mapping) if row else None
