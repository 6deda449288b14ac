"""The ingestion pipeline through the ingestion service's HTTP API: real PostgreSQL, Redis Streams,
ONNX embedder and qdrant-edge index."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr
from sqlalchemy import text

from media_gateway.core.db import make_engine
from media_gateway.core.embeddings import minilm_model_path
from media_gateway.core.embeddings.quantize import default_cache_dir, dynamic_int8_model
from media_gateway.core.events import stream_key
from media_gateway.core.settings import Settings
from media_gateway.ingestion.app import create_app
from media_gateway.ingestion.datasets import TmdbMovie, load_tmdb5000
from media_gateway.ingestion.demo import generate_demo_feeds, write_feed_files
from media_gateway.ingestion.webhooks import signature_header
from tests.ingestion.tmdb_data import cache_dir
from tests.support import serving, world_traversable_dir

ADMIN = {"Authorization": "Bearer test-admin-token"}
WEBHOOK_SECRET = "whsec-test-0123456789"


@pytest.fixture(scope="module")
async def movies() -> tuple[TmdbMovie, ...]:
    return tuple(await load_tmdb5000(cache_dir()))


def small_feed(movies: tuple[TmdbMovie, ...], directory: Path, titles: int = 40) -> dict[str, int]:
    feeds = generate_demo_feeds(movies[:titles])
    write_feed_files(directory, feeds)
    return {platform: len(records) for platform, records in feeds.items()}


@pytest.fixture
async def ingestion(scratch_settings: Settings) -> AsyncIterator[tuple[str, Settings]]:
    data_dir = world_traversable_dir("mg-ingest-")
    settings = scratch_settings.model_copy(
        update={
            "data_dir": data_dir,
            "admin_token": "test-admin-token",
            "ingestion": scratch_settings.ingestion.model_copy(
                update={
                    "webhook_secrets": {"netflix": SecretStr(WEBHOOK_SECRET)},
                    "enrichment_interval_sec": 0,
                }
            ),
        }
    )
    try:
        async with serving(create_app(settings)) as url:
            yield url, settings
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def analyzed_rows(settings: Settings, table: str) -> tuple[float, int]:
    """(the planner's row count of catalog.`table`, its real row count)."""
    conn = await asyncpg.connect(settings.effective_database_url.replace("+asyncpg", ""))
    try:
        estimated = await conn.fetchval(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)", f"catalog.{table}"
        )
        actual = await conn.fetchval(f"SELECT count(*) FROM catalog.{table}")  # noqa: S608 - fixed names
        return float(estimated), int(actual)
    finally:
        await conn.close()


async def run_job(client: httpx.AsyncClient, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    started = await client.post(path, json=body, headers=ADMIN)
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = (await client.get(f"/api/v1/admin/jobs/{job_id}", headers=ADMIN)).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


async def stream_length(settings: Settings, topic: str) -> int:
    client = aioredis.from_url(settings.effective_redis_url)
    try:
        return int(await client.xlen(stream_key(settings, topic)))
    finally:
        await client.aclose()


async def test_admin_endpoints_need_the_admin_token(ingestion: tuple[str, Settings]) -> None:
    url, _ = ingestion
    async with httpx.AsyncClient(base_url=url) as client:
        missing = await client.get("/api/v1/admin/jobs")
        wrong = await client.get("/api/v1/admin/jobs", headers={"Authorization": "Bearer nope"})
        right = await client.get("/api/v1/admin/jobs", headers=ADMIN)
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert wrong.status_code == 401
    assert right.status_code == 200


@pytest.mark.parametrize(
    "body",
    [{"source": "ftp"}, {"source": "file"}, {"source": "file", "path": "../../etc"}, {}],
)
async def test_bad_ingest_requests_are_4xx(ingestion: tuple[str, Settings], body: dict[str, Any]) -> None:
    url, _ = ingestion
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/api/v1/admin/ingest", json=body, headers=ADMIN)
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"


async def test_feed_ingest_fills_catalog_vectors_and_events_and_a_rerun_changes_nothing(
    ingestion: tuple[str, Settings],
    movies: tuple[TmdbMovie, ...],
) -> None:
    url, settings = ingestion
    feeds = Path(settings.data_dir) / "feeds"
    per_platform = small_feed(movies, feeds / "first")
    shutil.copytree(feeds / "first", feeds / "again")
    records = sum(per_platform.values())

    async with httpx.AsyncClient(base_url=url) as client:
        first = await run_job(client, "/api/v1/admin/ingest", {"source": "file", "path": "first"})
        assert first["status"] == "succeeded", first
        counts = first["counts"]["counts"]
        assert counts["records"] == records
        assert counts.get("rejected", 0) == 0
        # Titles listed on several platforms were merged, not duplicated.
        assert counts["created"] == 40
        stats = (await client.get("/api/v1/admin/catalog/stats", headers=ADMIN)).json()
        assert stats["titles"] == 40
        # The job left planner statistics behind (reltuples is -1 until a table is analyzed).
        for table in ("content", "offers"):
            estimated, actual = await analyzed_rows(settings, table)
            assert estimated == actual > 0, table
        assert stats["vectors"] == 40
        assert len(stats["titles_by_platform"]) >= 5
        ingested_events = await stream_length(settings, "content.ingested")
        availability_events = await stream_length(settings, "content.availability_changed")
        assert ingested_events == 40
        assert availability_events == records

        again = await run_job(client, "/api/v1/admin/ingest", {"source": "file", "path": "again"})
        again_counts = again["counts"]["counts"]
        assert again_counts["unchanged"] == records
        for changed in ("created", "updated", "availability_changed", "embedded", "failed"):
            assert again_counts.get(changed, 0) == 0, changed
        assert await stream_length(settings, "content.ingested") == ingested_events
        assert await stream_length(settings, "content.updated") == counts.get("updated", 0)
        assert await stream_length(settings, "content.availability_changed") == availability_events


async def test_entity_mappings_are_readable_per_entity_and_per_external_id(
    ingestion: tuple[str, Settings],
    movies: tuple[TmdbMovie, ...],
) -> None:
    url, settings = ingestion
    small_feed(movies, Path(settings.data_dir) / "feeds" / "f", titles=10)
    async with httpx.AsyncClient(base_url=url) as client:
        await run_job(client, "/api/v1/admin/ingest", {"source": "file", "path": "f"})
        by_tmdb = await client.get(
            "/api/v1/admin/entity-mappings",
            params={"id_type": "tmdb", "external_id": str(movies[0].tmdb_id)},
            headers=ADMIN,
        )
        assert by_tmdb.status_code == 200
        [mapping] = by_tmdb.json()
        entity = await client.get(
            "/api/v1/admin/entity-mappings", params={"entity_id": mapping["entity_id"]}, headers=ADMIN
        )
        id_types = {m["id_type"] for m in entity.json()}
        assert "tmdb" in id_types
        assert any(t.startswith("platform:") for t in id_types)
        neither = await client.get("/api/v1/admin/entity-mappings", headers=ADMIN)
        assert neither.status_code == 422


async def test_signed_webhook_records_go_through_the_pipeline(
    ingestion: tuple[str, Settings], movies: tuple[TmdbMovie, ...]
) -> None:
    url, _ = ingestion
    records = generate_demo_feeds(movies[:30])["netflix"][:3]
    body = orjson.dumps({"records": records})
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post(
            "/api/v1/webhooks/netflix",
            content=body,
            headers={
                "content-type": "application/json",
                "X-MG-Signature": signature_header(WEBHOOK_SECRET, body),
                "X-MG-Delivery-ID": uuid.uuid4().hex,
            },
        )
        assert response.status_code == 202, response.text
        stats = (await client.get("/api/v1/admin/catalog/stats", headers=ADMIN)).json()
    assert stats["titles"] == 3
    assert stats["titles_by_platform"] == {"netflix": 3}
    assert stats["vectors"] == 3


async def _age_embeddings(settings: Settings, days: int, limit: int | None = None) -> list[uuid.UUID]:
    engine = make_engine(settings)
    try:
        async with engine.begin() as conn:
            ids = [
                r[0]
                for r in await conn.execute(
                    text("SELECT id FROM catalog.content ORDER BY id LIMIT :n"), {"n": limit or 1_000_000}
                )
            ]
            await conn.execute(
                text("UPDATE catalog.content SET embedding_updated_at = :at WHERE id = ANY(:ids)"),
                {"at": datetime.now(UTC) - timedelta(days=days), "ids": ids},
            )
        return ids
    finally:
        await engine.dispose()


async def _embedded_at(settings: Settings) -> dict[uuid.UUID, datetime]:
    engine = make_engine(settings)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT id, embedding_updated_at FROM catalog.content"))
            return {r[0]: r[1] for r in rows}
    finally:
        await engine.dispose()


async def test_enrichment_refreshes_only_stale_content_in_batches_and_emits_events(
    ingestion: tuple[str, Settings],
    movies: tuple[TmdbMovie, ...],
) -> None:
    url, settings = ingestion
    small_feed(movies, Path(settings.data_dir) / "feeds" / "f", titles=130)
    async with httpx.AsyncClient(base_url=url) as client:
        await run_job(client, "/api/v1/admin/ingest", {"source": "file", "path": "f"})
        nothing = await run_job(client, "/api/v1/admin/enrichment/run")
        assert nothing["counts"]["counts"].get("selected", 0) == 0

        stale = set(await _age_embeddings(settings, days=8, limit=110))
        before = await _embedded_at(settings)
        enriched = await run_job(client, "/api/v1/admin/enrichment/run")
    counts = enriched["counts"]["counts"]
    assert counts["selected"] == 110
    assert counts["enriched"] == 110
    assert counts["batches"] == 2
    after = await _embedded_at(settings)
    for content_id, stamp in after.items():
        if content_id in stale:
            assert stamp > before[content_id]
        else:
            assert stamp == before[content_id]
    assert await stream_length(settings, "content.metadata_enriched") == 110


async def enrich_jobs(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = (await client.get("/api/v1/admin/jobs", headers=ADMIN)).json()
    return [j for j in jobs if j["kind"] == "enrich"]


async def finished_job_not_in(client: httpx.AsyncClient, earlier: set[str]) -> dict[str, Any]:
    """The enrichment job the service started by itself, once it finished."""
    for _ in range(600):
        fresh = [j for j in await enrich_jobs(client) if j["id"] not in earlier]
        if fresh and fresh[0]["status"] != "running":
            return fresh[0]
        await asyncio.sleep(0.1)
    raise AssertionError("no enrichment job started and finished")


async def test_vectors_of_another_model_are_re_embedded_at_start(
    ingestion: tuple[str, Settings], movies: tuple[TmdbMovie, ...]
) -> None:
    url, settings = ingestion
    small_feed(movies, Path(settings.data_dir) / "feeds" / "f", titles=12)
    async with httpx.AsyncClient(base_url=url) as client:
        await run_job(client, "/api/v1/admin/ingest", {"source": "file", "path": "f"})
        nothing = await run_job(client, "/api/v1/admin/enrichment/run")
        assert nothing["counts"]["counts"].get("selected", 0) == 0
        earlier = {j["id"] for j in await enrich_jobs(client)}

    # The same ingestion service restarted on another model file: what an upgrade of the model does.
    renamed = Path(settings.data_dir) / "models" / "minilm-v2.onnx"
    renamed.parent.mkdir()
    shutil.copyfile(dynamic_int8_model(minilm_model_path(), default_cache_dir()), renamed)
    upgraded = settings.model_copy(
        update={"embedder": settings.embedder.model_copy(update={"model_path": str(renamed)})}
    )
    async with serving(create_app(upgraded)) as new_url, httpx.AsyncClient(base_url=new_url) as client:
        catch_up = await finished_job_not_in(client, earlier)
        assert catch_up["status"] == "succeeded", catch_up
        assert catch_up["counts"]["counts"]["embedded"] == 12
        again = await run_job(client, "/api/v1/admin/enrichment/run")
        assert again["counts"]["counts"].get("selected", 0) == 0
    # Started once more on that model, nothing is due: no catch-up job.
    async with serving(create_app(upgraded)) as last_url, httpx.AsyncClient(base_url=last_url) as client:
        assert len(await enrich_jobs(client)) == 3


async def test_enrichment_survives_an_item_that_cannot_be_embedded(
    scratch_settings: Settings, movies: tuple[TmdbMovie, ...]
) -> None:
    from tests.fakes.openai_server import FakeOpenAIServer

    some = movies[:12]
    poison = some[5].title
    data_dir = world_traversable_dir("mg-enrich-")
    with FakeOpenAIServer(reject_inputs_containing=poison) as fake:
        settings = scratch_settings.model_copy(
            update={
                "data_dir": data_dir,
                "admin_token": "test-admin-token",
                "embedder": scratch_settings.embedder.model_copy(
                    update={"backend": "openai", "url": fake.url, "api_key": fake.api_key, "dimension": 64}
                ),
                "ingestion": scratch_settings.ingestion.model_copy(update={"enrichment_interval_sec": 0}),
            }
        )
        write_feed_files(data_dir / "feeds" / "f", generate_demo_feeds(some))
        try:
            async with serving(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as client:
                ingest = await run_job(client, "/api/v1/admin/ingest", {"source": "file", "path": "f"})
                titles = ingest["counts"]["counts"]["created"]
                assert ingest["counts"]["counts"]["embed_failed"] == 1
                await _age_embeddings(settings, days=30)
                enriched = await run_job(client, "/api/v1/admin/enrichment/run")
                stats = (await client.get("/api/v1/admin/catalog/stats", headers=ADMIN)).json()
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
    counts = enriched["counts"]["counts"]
    assert enriched["status"] == "succeeded"
    assert counts["selected"] == titles
    assert counts["failed"] == 1
    assert counts["enriched"] == titles - 1
    assert stats["vectors"] == titles - 1


async def test_titles_left_without_a_vector_get_one_when_the_service_starts(
    scratch_settings: Settings, movies: tuple[TmdbMovie, ...]
) -> None:
    data_dir = world_traversable_dir("mg-catchup-")
    settings = scratch_settings.model_copy(update={"data_dir": data_dir, "admin_token": "test-admin-token"})
    small_feed(movies, data_dir / "feeds" / "f", titles=10)
    try:
        async with serving(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as client:
            await run_job(client, "/api/v1/admin/ingest", {"source": "file", "path": "f"})
        # As if the process died between writing these titles and embedding them.
        engine = make_engine(settings)
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE catalog.content SET embedding_updated_at = NULL"
                    " WHERE id IN (SELECT id FROM catalog.content ORDER BY id LIMIT 3)"
                )
            )
        await engine.dispose()
        async with serving(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as client:
            deadline = time.monotonic() + 60
            while True:
                jobs = (await client.get("/api/v1/admin/jobs", headers=ADMIN)).json()
                enrich = [j for j in jobs if j["kind"] == "enrich"]
                if enrich and enrich[0]["status"] in ("succeeded", "failed"):
                    break
                assert time.monotonic() < deadline, jobs
                await asyncio.sleep(0.1)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    assert enrich[0]["status"] == "succeeded"
    assert enrich[0]["counts"]["counts"]["enriched"] == 3
    stamps = await _embedded_at(settings)
    assert all(stamp is not None for stamp in stamps.values())
