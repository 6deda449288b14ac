"""The keyword index inside the real discovery app, fed by the real ingestion app: titles ingested
before discovery starts are found through the start-up build, titles ingested while it runs through
catalog events, within 5 s."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from media_gateway.core.db import make_engine
from media_gateway.core.events import Event, make_event_bus
from media_gateway.core.redis import make_redis
from media_gateway.core.settings import Settings
from media_gateway.discovery.app import create_app as create_discovery
from media_gateway.ingestion.app import create_app as create_ingestion
from media_gateway.ingestion.datasets import TmdbMovie, load_tmdb5000
from media_gateway.ingestion.demo import generate_demo_feeds, write_feed_files
from tests.ingestion.tmdb_data import cache_dir
from tests.support import serving, world_traversable_dir

ADMIN = {"Authorization": "Bearer test-admin-token"}
FIRST = 30
LATER = 10
SEARCHABLE_WITHIN_SEC = 5.0


@dataclass
class Stack:
    settings: Settings
    engine: AsyncEngine
    ingestion: httpx.AsyncClient
    discovery: httpx.AsyncClient


@pytest.fixture
async def stack(scratch_settings: Settings) -> AsyncIterator[Stack]:
    data_dir = world_traversable_dir("mg-keyword-")
    settings = scratch_settings.model_copy(
        update={
            "data_dir": data_dir,
            "admin_token": "test-admin-token",
            "ingestion": scratch_settings.ingestion.model_copy(update={"enrichment_interval_sec": 0}),
        }
    )
    movies: list[TmdbMovie] = list(await load_tmdb5000(cache_dir()))
    today = datetime.now(UTC).date()
    write_feed_files(data_dir / "feeds" / "first", generate_demo_feeds(movies[:FIRST], today))
    write_feed_files(data_dir / "feeds" / "later", generate_demo_feeds(movies[FIRST : FIRST + LATER], today))
    engine = make_engine(settings)
    try:
        async with (
            serving(create_ingestion(settings)) as ingestion_url,
            httpx.AsyncClient(base_url=ingestion_url, timeout=30) as ingestion,
        ):
            job = await start_ingest(ingestion, "first")
            await wait_for_job(ingestion, job)
            # Discovery starts on a catalog that already holds the first titles: its build finds them.
            async with (
                serving(create_discovery(settings)) as discovery_url,
                httpx.AsyncClient(base_url=discovery_url, timeout=30) as discovery,
            ):
                yield Stack(settings, engine, ingestion, discovery)
    finally:
        await engine.dispose()
        shutil.rmtree(data_dir, ignore_errors=True)


async def start_ingest(client: httpx.AsyncClient, path: str) -> str:
    started = await client.post("/api/v1/admin/ingest", json={"source": "file", "path": path}, headers=ADMIN)
    assert started.status_code == 202, started.text
    job_id: str = started.json()["id"]
    return job_id


async def wait_for_job(client: httpx.AsyncClient, job_id: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = (await client.get(f"/api/v1/admin/jobs/{job_id}", headers=ADMIN)).json()
        if job["status"] in ("succeeded", "failed"):
            assert job["status"] == "succeeded", job
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


async def catalog_titles(engine: AsyncEngine) -> dict[str, str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT id, title FROM catalog.content"))
        return {str(row.id): row.title for row in rows}


async def suggestions(client: httpx.AsyncClient, q: str, limit: int = 10) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/search/autocomplete", params={"q": q, "limit": limit})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["suggestions"]
    return found


async def finds(client: httpx.AsyncClient, content_id: str, title: str) -> bool:
    return any(s["id"] == content_id for s in await suggestions(client, title[:100], limit=10))


async def test_ingested_titles_are_searchable_and_new_ones_within_5s(stack: Stack) -> None:
    first = await catalog_titles(stack.engine)
    assert len(first) == FIRST
    for content_id, title in first.items():
        found = await suggestions(stack.discovery, title)
        assert content_id in [s["id"] for s in found[:3]], (title, found)
        typed = title[: max(4, len(title) // 2)]
        assert content_id in [s["id"] for s in await suggestions(stack.discovery, typed, limit=50)], typed

    async with stack.engine.connect() as conn:
        name = (
            await conn.execute(
                text("""SELECT "cast"->0->>'name' FROM catalog.content WHERE "cast" <> '[]' LIMIT 1""")
            )
        ).scalar_one()
    people = [s for s in await suggestions(stack.discovery, name) if s["kind"] == "person"]
    assert people
    assert people[0]["title"] == name
    assert people[0]["known_for"]

    # Titles ingested while discovery runs: each must be searchable within 5 s of its row.
    job = await start_ingest(stack.ingestion, "later")
    committed_at: dict[str, float] = {}
    searchable_at: dict[str, float] = {}
    titles: dict[str, str] = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for content_id, title in (await catalog_titles(stack.engine)).items():
            if content_id not in first and content_id not in committed_at:
                committed_at[content_id] = time.monotonic()
                titles[content_id] = title
        for content_id in committed_at.keys() - searchable_at.keys():
            if await finds(stack.discovery, content_id, titles[content_id]):
                searchable_at[content_id] = time.monotonic()
        if len(searchable_at) == LATER:
            break
        await asyncio.sleep(0.05)
    await wait_for_job(stack.ingestion, job)
    assert len(committed_at) == LATER
    assert searchable_at.keys() == committed_at.keys()
    lags = {titles[i]: round(searchable_at[i] - committed_at[i], 3) for i in committed_at}
    assert max(lags.values()) <= SEARCHABLE_WITHIN_SEC, lags


async def test_a_deleted_title_leaves_the_index_on_its_event(stack: Stack) -> None:
    content_id, title = next(iter((await catalog_titles(stack.engine)).items()))
    assert await finds(stack.discovery, content_id, title)
    async with stack.engine.begin() as conn:
        await conn.execute(text("DELETE FROM catalog.content WHERE id = :id"), {"id": uuid.UUID(content_id)})
    redis = make_redis(stack.settings)
    bus = make_event_bus(stack.settings, redis)
    try:
        await bus.publish("content.updated", Event(type="content.updated", key=content_id))
    finally:
        await bus.aclose()
        await redis.aclose()
    deadline = time.monotonic() + SEARCHABLE_WITHIN_SEC
    while await finds(stack.discovery, content_id, title):
        assert time.monotonic() < deadline, "the deleted title is still suggested"
        await asyncio.sleep(0.05)


async def test_bad_autocomplete_requests_are_422_problems(scratch_settings: Settings) -> None:
    data_dir = world_traversable_dir("mg-keyword-")
    settings = scratch_settings.model_copy(update={"data_dir": data_dir})
    bad: list[dict[str, Any]] = [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 101},
        {"q": "ok", "limit": 0},
        {"q": "ok", "limit": 51},
        {"q": "ok", "limit": "ten"},
    ]
    try:
        async with serving(create_discovery(settings)) as url, httpx.AsyncClient(base_url=url) as client:
            for params in bad:
                response = await client.get("/api/v1/search/autocomplete", params=params)
                assert response.status_code == 422, params
                assert response.headers["content-type"] == "application/problem+json"
            # At the limits, and on an empty catalog: fine, and nothing found.
            fine: list[dict[str, Any]] = [
                {"q": "x" * 100, "limit": 50},
                {"q": 'title:" AND OR (', "limit": 1},
            ]
            for params in fine:
                response = await client.get("/api/v1/search/autocomplete", params=params)
                assert response.status_code == 200, response.text
                assert response.json()["suggestions"] == []
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
