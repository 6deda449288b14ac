"""Alembic environment shared by every schema; the schema comes from the Config attributes."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

config = context.config
schema: str = config.attributes["schema"]
database_url: str = config.attributes["database_url"]


def _run(connection: Connection) -> None:
    # The version table lives in the schema it versions, so the schema must exist first.
    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    context.configure(
        connection=connection,
        version_table="alembic_version",
        version_table_schema=schema,
        include_schemas=False,
    )
    with context.begin_transaction():
        # Two processes migrating at once (replicas starting together) serialize on this lock.
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": f"mg-migrate:{schema}"})
        context.run_migrations()


async def _main() -> None:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `media-gateway migrate`")
asyncio.run(_main())
