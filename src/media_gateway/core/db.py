"""The async SQLAlchemy engine and the per-request session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from media_gateway.core.settings import Settings


def _dump_json(value: object) -> str:
    return orjson.dumps(value).decode()


def make_engine(settings: Settings, application_name: str = "media-gateway") -> AsyncEngine:
    return create_async_engine(
        settings.effective_database_url,
        pool_size=settings.database.pool_size,
        max_overflow=settings.database.max_overflow,
        pool_timeout=settings.database.pool_timeout_sec,
        pool_pre_ping=True,
        echo=settings.database.echo,
        # JSONB columns (cast lists, job counts) are decoded on hot read paths; orjson is several
        # times faster than the standard library there.
        json_serializer=_dump_json,
        json_deserializer=orjson.loads,
        connect_args={
            "timeout": settings.database.pool_timeout_sec,
            "server_settings": {
                "application_name": application_name,
                "statement_timeout": str(settings.database.statement_timeout_ms),
            },
        },
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: one session per request, rolled back unless the handler committed."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        yield session
