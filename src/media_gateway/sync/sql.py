"""One way to run a statement on either a SQLAlchemy connection/session or a raw asyncpg connection.

The group committer drives asyncpg directly: on its hot path SQLAlchemy's per-statement overhead
was about twice the cost of the statements themselves. Other callers (the device module, reads)
keep their SQLAlchemy connection; statements use asyncpg's `$n` parameters on both paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

Executor: TypeAlias = AsyncConnection | AsyncSession | asyncpg.Connection


async def fetch(conn: Executor, sql: str, *args: Any) -> Sequence[Mapping[Any, Any]]:
    """Rows as mappings (`row["column"]`), inside whatever transaction `conn` is in."""
    if isinstance(conn, asyncpg.Connection):
        records: list[asyncpg.Record] = await conn.fetch(sql, *args)
        return records
    if isinstance(conn, AsyncSession):
        conn = await conn.connection()
    result = await conn.exec_driver_sql(sql, args)
    return result.mappings().all() if result.returns_rows else []


async def execute(conn: Executor, sql: str, *args: Any) -> None:
    if isinstance(conn, asyncpg.Connection):
        await conn.execute(sql, *args)
        return
    if isinstance(conn, AsyncSession):
        conn = await conn.connection()
    await conn.exec_driver_sql(sql, args)
