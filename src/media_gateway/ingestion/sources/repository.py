"""Source cursors in `ingestion.source_cursors`: where each source resumes."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from media_gateway.ingestion.models import source_cursors


async def get_cursor(conn: AsyncConnection, source: str) -> str | None:
    cursor: str | None = await conn.scalar(
        select(source_cursors.c.cursor).where(source_cursors.c.source == source)
    )
    return cursor


async def set_cursor(conn: AsyncConnection, source: str, cursor: str) -> None:
    stmt = insert(source_cursors).values(source=source, cursor=cursor)
    # Upsert: the first commit of a source and every later one are the same statement, and two
    # writers racing on one source cannot fail on the primary key.
    stmt = stmt.on_conflict_do_update(
        index_elements=[source_cursors.c.source],
        set_={"cursor": stmt.excluded.cursor, "updated_at": func.now()},
    )
    await conn.execute(stmt)


async def delete_cursor(conn: AsyncConnection, source: str) -> bool:
    """Forget a source's position, so its next run starts from the beginning."""
    result = await conn.execute(delete(source_cursors).where(source_cursors.c.source == source))
    return bool(result.rowcount)
