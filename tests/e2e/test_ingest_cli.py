"""`media-gateway ingest` as an operator runs it: a feed, then enrichment, against configured servers."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess

import pytest
from sqlalchemy import text

from media_gateway.core.db import make_engine
from media_gateway.core.settings import Settings
from media_gateway.ingestion.datasets import load_tmdb5000
from media_gateway.ingestion.demo import generate_demo_feeds, write_feed_files
from tests.e2e.stack import CLI
from tests.ingestion.tmdb_data import cache_dir
from tests.support import world_traversable_dir

pytestmark = pytest.mark.e2e


async def _cli(settings: Settings, *args: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MG_")}
    env |= {
        "MG_DATABASE_URL": settings.effective_database_url,
        "MG_REDIS_URL": settings.effective_redis_url,
        "MG_REDIS__PREFIX": settings.redis.prefix,
        "MG_DATA_DIR": str(settings.data_dir),
        "MG_LOG_LEVEL": "WARNING",
    }
    result = await asyncio.to_thread(
        subprocess.run, [CLI, "ingest", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report: dict[str, object] = json.loads(result.stdout[result.stdout.index("{") :])
    return report


async def test_ingest_a_feed_then_enrich_from_the_command_line(scratch_settings: Settings) -> None:
    data_dir = world_traversable_dir("mg-cli-")
    settings = scratch_settings.model_copy(update={"data_dir": data_dir})
    movies = await load_tmdb5000(cache_dir())
    feed = data_dir / "anywhere" / "feed"
    write_feed_files(feed, generate_demo_feeds(movies[:15]))
    try:
        ingested = await _cli(settings, "--file", str(feed))
        fresh = await _cli(settings, "--enrich")
        engine = make_engine(settings)
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE catalog.content SET embedding_updated_at = now() - interval '30 days'")
            )
        await engine.dispose()
        enriched = await _cli(settings, "--enrich")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    assert ingested["status"] == "succeeded"
    counts = ingested["counts"]["counts"]  # type: ignore[index]
    assert counts["created"] == 15
    # Freshly embedded content is left alone; content a month old is refreshed.
    assert fresh["counts"]["counts"].get("selected", 0) == 0  # type: ignore[index]
    assert enriched["status"] == "succeeded"
    assert enriched["counts"]["counts"]["enriched"] == 15  # type: ignore[index]
