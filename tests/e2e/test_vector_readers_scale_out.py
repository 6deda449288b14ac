"""Discovery and SONA as processes of their own beside ingestion, as separate containers run them:
`serve discovery --workers 2` and `serve sona`, real subprocesses on the machine's PostgreSQL and
Redis, with ingestion in the test's process. They share no file with ingestion or each other: every
vector they use came from `catalog.content_vectors`."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import signal
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from media_gateway.core.db import make_engine
from media_gateway.core.settings import Settings
from media_gateway.ingestion.app import create_app as create_ingestion
from media_gateway.ingestion.datasets import load_tmdb5000
from media_gateway.ingestion.demo import generate_demo_feeds, write_feed_files
from tests.discovery.test_search_index_live import start_ingest, wait_for_job
from tests.discovery.test_search_vector_replica import (
    NEW_PLOT,
    NEW_PLOT_QUERY,
    REFLECTED_WITHIN_SEC,
    found_semantically,
    title_id,
)
from tests.e2e.stack import StackProcess
from tests.fakes.token_issuer import TestTokenIssuer
from tests.ingestion.tmdb_data import cache_dir
from tests.support import serving, world_traversable_dir

pytestmark = pytest.mark.e2e

TITLES = 20


@pytest.fixture
async def ingestion(scratch_settings: Settings) -> AsyncIterator[tuple[Settings, httpx.AsyncClient]]:
    data_dir = world_traversable_dir("mg-readers-ingest-")
    settings = scratch_settings.model_copy(
        update={
            "data_dir": data_dir,
            "admin_token": "test-admin-token",
            "ingestion": scratch_settings.ingestion.model_copy(update={"enrichment_interval_sec": 0}),
        }
    )
    try:
        async with (
            serving(create_ingestion(settings)) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as client,
        ):
            yield settings, client
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _replicas(data_dir: Path) -> list[str]:
    root = data_dir / "vectors" / "content-replicas"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


async def test_two_discovery_workers_and_sona_read_vectors_ingestion_writes_elsewhere(
    ingestion: tuple[Settings, httpx.AsyncClient], token_issuer: TestTokenIssuer
) -> None:
    settings, ingest = ingestion
    movies = list(await load_tmdb5000(cache_dir()))[:TITLES]
    today = datetime.now(UTC).date()
    feeds = Path(settings.data_dir) / "feeds"
    write_feed_files(feeds / "first", generate_demo_feeds(movies[:-1], today))
    await wait_for_job(ingest, await start_ingest(ingest, "first"))

    auth = token_issuer.auth_settings()
    env = {
        "MG_DATABASE_URL": settings.effective_database_url,
        "MG_REDIS_URL": settings.effective_redis_url,
        "MG_REDIS__PREFIX": settings.redis.prefix,
        "MG_AUTH__ISSUER": auth["issuer"],
        "MG_AUTH__AUDIENCE": auth["audience"],
        "MG_AUTH__JWKS_URL": auth["jwks_url"],
        "MG_SONA__TRAIN_ON_START": "false",
        "MG_DISCOVERY__SEARCH_CACHE_TTL_SEC": "1",
    }
    discovery = StackProcess.fresh(world_traversable_dir("mg-readers-discovery-") / "data", env)
    sona = StackProcess.fresh(world_traversable_dir("mg-readers-sona-") / "data", env)
    engine = make_engine(settings)
    discovery.start("serve", "discovery", "--port", str(discovery.ports["discovery"]), "--workers", "2")
    sona.start("serve", "sona", "--port", str(sona.ports["sona"]))
    try:
        started = time.monotonic()
        await asyncio.gather(
            asyncio.to_thread(discovery.wait_ready, 180.0, ("discovery",)),
            asyncio.to_thread(sona.wait_ready, 180.0, ("sona",)),
        )
        # Ready means one worker answers; the other may still be loading. Each makes a replica of its
        # own, named by its pid, beside SONA's.
        while len({name.rsplit("-", 2)[1] for name in _replicas(discovery.data_dir)}) < 2:
            assert time.monotonic() - started < 180, discovery.log()
            await asyncio.sleep(0.1)
        ready_in = time.monotonic() - started
        assert len(_replicas(sona.data_dir)) == 1

        async with httpx.AsyncClient(base_url=discovery.url("discovery"), timeout=30) as client:
            avatar = await title_id(engine, "Avatar")
            query = "a paralyzed marine on an alien moon sides with the natives against the company mining it"
            # Requests land on either worker: every one finds the title by its vector.
            for _ in range(8):
                assert await found_semantically(client, query, avatar)

            # A title ingested now reaches both workers' replicas within seconds.
            new = dataclasses.replace(movies[-1], overview=NEW_PLOT)
            write_feed_files(feeds / "later", generate_demo_feeds([new], today))
            await wait_for_job(ingest, await start_ingest(ingest, "later"))
            new_id = await title_id(engine, new.title)
            began = time.monotonic()
            streak = 0
            while streak < 8:
                streak = streak + 1 if await found_semantically(client, NEW_PLOT_QUERY, new_id) else 0
                assert time.monotonic() - began < REFLECTED_WITHIN_SEC + 10, "not every worker caught up"
                await asyncio.sleep(0.05)

        # SONA, untrained, finds titles like this one by vector alone: from its own replica.
        token = token_issuer.mint(uuid.uuid4())
        async with httpx.AsyncClient(base_url=sona.url("sona"), timeout=30) as client:
            response = await client.get(
                f"/api/v1/content/{avatar}/similar",
                params={"limit": 5},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert response.status_code == 200, response.text
        similar = response.json()["similar"]
        assert similar
        assert all("content" in item["sources"] for item in similar)
    finally:
        await engine.dispose()
        codes = await asyncio.gather(
            asyncio.to_thread(discovery.stop, signal.SIGTERM, 30.0),
            asyncio.to_thread(sona.stop, signal.SIGTERM, 30.0),
        )
    assert codes == [0, 0], discovery.log() + sona.log()
    # Each process deleted its replica as it stopped.
    assert _replicas(discovery.data_dir) == []
    assert _replicas(sona.data_dir) == []
    assert "Traceback" not in discovery.log() + sona.log()
    print(f"discovery (2 workers) and sona ready in {ready_in:.1f}s")
