"""Semantic search through discovery's own replica of the catalog's vectors: ingestion and discovery
are separate apps on their own ports and data directories, sharing only PostgreSQL and Redis (what
two containers share), so every vector discovery finds came to it through `catalog.content_vectors`."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from media_gateway.core.db import make_engine
from media_gateway.core.settings import Settings
from media_gateway.discovery.app import create_app as create_discovery
from media_gateway.ingestion.app import create_app as create_ingestion
from media_gateway.ingestion.datasets import TmdbMovie, load_tmdb5000
from media_gateway.ingestion.demo import generate_demo_feeds, write_feed_files
from tests.discovery.test_search_api import PLOT_PARAPHRASES, search
from tests.discovery.test_search_index_live import start_ingest, wait_for_job
from tests.ingestion.tmdb_data import cache_dir
from tests.support import serving, world_traversable_dir

TITLES = 40
PLOTLESS = 5
REFLECTED_WITHIN_SEC = 5.0
# A plot no title of the demo catalog has, and a paraphrase of it sharing none of its content words.
NEW_PLOT = (
    "A retired lighthouse keeper befriends a lonely humpback whale that sings to passing ships during "
    "the winter storms."
)
NEW_PLOT_QUERY = "old man who minded a coastal beacon becomes companions with a singing sea giant"


@dataclass
class Stack:
    settings: Settings
    engine: AsyncEngine
    ingestion: httpx.AsyncClient
    ingestion_dir: Path
    discovery_dir: Path
    movies: list[TmdbMovie]


@pytest.fixture
async def stack(scratch_settings: Settings) -> AsyncIterator[Stack]:
    ingestion_dir = world_traversable_dir("mg-replica-ingest-")
    discovery_dir = world_traversable_dir("mg-replica-discovery-")
    settings = scratch_settings.model_copy(
        update={
            "data_dir": ingestion_dir,
            "admin_token": "test-admin-token",
            "ingestion": scratch_settings.ingestion.model_copy(update={"enrichment_interval_sec": 0}),
            # Answers are cached for a second only: what is asked again sees the replica, not Redis.
            "discovery": scratch_settings.discovery.model_copy(update={"search_cache_ttl_sec": 1}),
        }
    )
    movies = list(await load_tmdb5000(cache_dir()))[:TITLES]
    # One title comes without a plot: a later record that has one fills it in (merge_metadata).
    movies[PLOTLESS] = dataclasses.replace(movies[PLOTLESS], overview=None)
    today = datetime.now(UTC).date()
    write_feed_files(ingestion_dir / "feeds" / "first", generate_demo_feeds(movies, today))
    engine = make_engine(settings)
    try:
        async with (
            serving(create_ingestion(settings)) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as ingestion,
        ):
            await wait_for_job(ingestion, await start_ingest(ingestion, "first"))
            yield Stack(settings, engine, ingestion, ingestion_dir, discovery_dir, movies)
    finally:
        await engine.dispose()
        shutil.rmtree(ingestion_dir, ignore_errors=True)
        shutil.rmtree(discovery_dir, ignore_errors=True)


def discovery_app(stack: Stack) -> object:
    return create_discovery(stack.settings.model_copy(update={"data_dir": stack.discovery_dir}))


async def title_id(engine: AsyncEngine, name: str) -> str:
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, title FROM catalog.content"))).all()
    [found] = [str(r.id) for r in rows if name.casefold() in r.title.casefold()]
    return found


async def found_semantically(client: httpx.AsyncClient, query: str, content_id: str, top: int = 3) -> bool:
    """`content_id` is among the `top` results of `query`, found by its vector."""
    results = {r["id"]: r for r in (await search(client, query, page_size=top))["results"]}
    return content_id in results and "semantic" in results[content_id]["match_reasons"]


async def reflected_within(client: httpx.AsyncClient, query: str, content_id: str, want: bool) -> float:
    """Seconds until `query` finds (or, with `want` False, stops finding) `content_id` by vector."""
    started = time.monotonic()
    while await found_semantically(client, query, content_id) != want:
        assert time.monotonic() - started < REFLECTED_WITHIN_SEC + 10, (query, want)
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_a_discovery_started_after_ingestion_loads_every_vector_and_follows_changes(
    stack: Stack,
) -> None:
    async with (
        serving(discovery_app(stack)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as discovery,
    ):
        # Every title ingested before discovery started is in its replica from the first request.
        for name, query in PLOT_PARAPHRASES.items():
            assert await found_semantically(discovery, query, await title_id(stack.engine, name)), name
        replicas = list((stack.discovery_dir / "vectors").iterdir())
        assert [p.name for p in replicas] == ["content-replicas"]
        assert len(list(replicas[0].iterdir())) == 1
        # Ingestion keeps no vector index of its own: PostgreSQL is where the vectors are.
        assert not (stack.ingestion_dir / "vectors").exists()

        # A title whose text changes is re-embedded by ingestion and found by its new plot.
        changed = stack.movies[PLOTLESS]
        changed_id = await title_id(stack.engine, changed.title)
        assert not await found_semantically(discovery, NEW_PLOT_QUERY, changed_id)
        feed = generate_demo_feeds(
            [dataclasses.replace(changed, overview=NEW_PLOT)], datetime.now(UTC).date()
        )
        write_feed_files(stack.ingestion_dir / "feeds" / "update", feed)
        await wait_for_job(stack.ingestion, await start_ingest(stack.ingestion, "update"))
        lag = await reflected_within(discovery, NEW_PLOT_QUERY, changed_id, want=True)
        assert lag <= REFLECTED_WITHIN_SEC, lag

        # A title deleted from the catalog leaves the replica (its row becomes a tombstone).
        async with stack.engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM catalog.content WHERE id = :id"), {"id": uuid.UUID(changed_id)}
            )
        lag = await reflected_within(discovery, NEW_PLOT_QUERY, changed_id, want=False)
        assert lag <= REFLECTED_WITHIN_SEC, lag

        metrics = (await discovery.get("/metrics")).text
        assert "mg_vector_replica_seq " in metrics
        assert "mg_vector_replica_staleness_seconds " in metrics
    # Closed with the app: no directory left behind.
    assert list((stack.discovery_dir / "vectors" / "content-replicas").iterdir()) == []
