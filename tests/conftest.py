"""Shared fixtures: every test run gets its own PostgreSQL database and Redis key prefix on the
machine's real servers (127.0.0.1:5432 and 127.0.0.1:6379, or MG_TEST_* overrides)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from media_gateway.core.settings import Settings
from tests.fakes.token_issuer import TestTokenIssuer

ADMIN_DSN = os.environ.get("MG_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("MG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:10]
TEST_DATABASE = f"mg_test_{RUN_ID}"
# Never the real default data dir: apps that keep files (the vector index) write here instead.
RUN_DATA_DIR = Path(tempfile.gettempdir()) / f"mg-test-{RUN_ID}"


def make_settings(**overrides: object) -> Settings:
    """Settings pointing at this run's database and Redis prefix; overrides win."""
    base_dsn = ADMIN_DSN.rsplit("/", 1)[0]
    values: dict[str, object] = {
        "environment": "test",
        "database_url": f"{base_dsn.replace('postgresql://', 'postgresql+asyncpg://')}/{TEST_DATABASE}",
        "redis_url": REDIS_URL,
        "redis": {"prefix": f"mgtest-{RUN_ID}"},
        "log_json": True,
        "data_dir": RUN_DATA_DIR,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
async def test_database() -> AsyncIterator[str]:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{TEST_DATABASE}"')
    finally:
        await conn.close()
    yield TEST_DATABASE
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def migrated_settings(test_database: str) -> Settings:
    from media_gateway.core.migrations import run_migrations

    settings = make_settings()
    await run_migrations(settings)
    return settings


@pytest.fixture
def settings(test_database: str) -> Settings:
    return make_settings()


@pytest.fixture(scope="session", autouse=True)
async def _flush_redis_prefix() -> AsyncIterator[None]:
    yield
    shutil.rmtree(RUN_DATA_DIR, ignore_errors=True)
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"mgtest-{RUN_ID}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def scratch_database(**overrides: object) -> AsyncIterator[Settings]:
    """Settings on a migrated database and a Redis prefix of their own, dropped afterwards, for tests
    that need an empty catalog or a module-wide world; `overrides` go to `make_settings`."""
    from media_gateway.core.migrations import run_migrations

    name = f"mg_test_{RUN_ID}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base_dsn = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    values: dict[str, object] = {
        "database_url": f"{base_dsn}/{name}",
        "redis": {"prefix": f"mgtest-{RUN_ID}-{name[-6:]}"},
    }
    values.update(overrides)
    try:
        settings = make_settings(**values)
        await run_migrations(settings)
        yield settings
    finally:
        conn = await asyncpg.connect(ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture
async def scratch_settings() -> AsyncIterator[Settings]:
    """Settings on a database of their own, migrated, for tests that need an empty catalog."""
    async with scratch_database() as settings:
        yield settings


@pytest.fixture(scope="session")
def token_issuer() -> Iterator[TestTokenIssuer]:
    """Test keys served as a JWKS; pass `auth=token_issuer.auth_settings()` to `make_settings`."""
    with TestTokenIssuer() as issuer:
        yield issuer
