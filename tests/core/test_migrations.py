from __future__ import annotations

import asyncpg
from alembic.script import ScriptDirectory

from media_gateway.core.migrations import SCHEMA_OWNERS, alembic_config, run_migrations
from media_gateway.core.settings import Settings
from tests.conftest import ADMIN_DSN, TEST_DATABASE


async def _versions(conn: asyncpg.Connection) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'alembic_version'"
    )
    out = {}
    for row in rows:
        schema = row["table_schema"]
        # The schema name comes from the catalog, not from input.
        out[schema] = await conn.fetchval(f'SELECT version_num FROM "{schema}".alembic_version')  # noqa: S608
    return out


async def test_each_schema_has_its_own_history_and_rerun_is_a_no_op(migrated_settings: Settings) -> None:
    conn = await asyncpg.connect(ADMIN_DSN.rsplit("/", 1)[0] + f"/{TEST_DATABASE}")
    try:
        first = await _versions(conn)
        assert set(first) == set(SCHEMA_OWNERS)
        for schema, version in first.items():
            head = ScriptDirectory.from_config(alembic_config(migrated_settings, schema)).get_current_head()
            assert version == head
        await run_migrations(migrated_settings)
        assert await _versions(conn) == first
    finally:
        await conn.close()
