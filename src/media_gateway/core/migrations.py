"""Alembic, run per schema: each schema has its own revision history and version table."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from media_gateway.core.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# Schema -> the service that owns it. `catalog` is written only by ingestion.
SCHEMA_OWNERS: dict[str, str] = {
    "gateway": "gateway",
    "auth": "auth",
    "catalog": "ingestion",
    "ingestion": "ingestion",
    "discovery": "discovery",
    "sona": "sona",
    "sync": "sync",
    "playback": "playback",
    "mcp": "mcp",
}


def alembic_config(settings: Settings, schema: str) -> Config:
    if schema not in SCHEMA_OWNERS:
        raise ValueError(f"unknown schema {schema!r}; known: {', '.join(SCHEMA_OWNERS)}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions" / schema))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["schema"] = schema
    cfg.attributes["database_url"] = settings.effective_database_url
    return cfg


def _upgrade(settings: Settings, schemas: list[str]) -> None:
    for schema in schemas:
        command.upgrade(alembic_config(settings, schema), "head")


async def run_migrations(settings: Settings, schemas: list[str] | None = None) -> None:
    # Alembic's command API is synchronous and env.py runs its own event loop, so it needs a thread.
    await asyncio.to_thread(_upgrade, settings, schemas or list(SCHEMA_OWNERS))
