from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI

from media_gateway.catalog import repository as catalog
from media_gateway.core.app import ServiceContext, create_service_app
from media_gateway.core.embeddings import get_embedder
from media_gateway.core.errors import ProblemError
from media_gateway.core.events import make_event_bus
from media_gateway.core.settings import Settings
from media_gateway.ingestion.pipeline import IngestionPipeline
from media_gateway.ingestion.resolution import EntityResolver
from media_gateway.ingestion.routes import router
from media_gateway.ingestion.schemas import RawBatch
from media_gateway.ingestion.service import IngestionJobs
from media_gateway.ingestion.webhook_routes import router as webhook_router

logger = logging.getLogger(__name__)


@asynccontextmanager
async def ingestion_runtime(ctx: ServiceContext) -> AsyncIterator[None]:
    """The pipeline and its parts, built once per app and shared by routes, webhooks and jobs."""
    embedder = get_embedder(ctx.settings)
    bus = make_event_bus(ctx.settings, ctx.redis)
    # write_content recreates an entity deleted behind the cache, so hits need no extra query.
    resolver = EntityResolver(ctx.engine, ctx.redis, ctx.settings, verify_cached=False)
    await resolver.warm()
    pipeline = IngestionPipeline(ctx.settings, ctx.engine, resolver, embedder, bus)
    jobs = IngestionJobs(ctx.settings, ctx.engine, pipeline)

    async def ingest_webhook_batch(batch: RawBatch) -> dict[str, Any]:
        report = await pipeline.ingest_batch(batch)
        return dict(report.counts)

    ctx.extras.update(pipeline=pipeline, jobs=jobs, raw_batch_handler=ingest_webhook_batch)
    # Events a crash left in the outbox go out now rather than with the next write.
    await pipeline.relay_outbox()
    await _catch_up_vectors(ctx, jobs)
    scheduler = asyncio.create_task(_enrichment_schedule(ctx, jobs), name="enrichment-schedule")
    try:
        yield
    finally:
        scheduler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await scheduler
        await jobs.aclose()
        await embedder.aclose()
        await bus.aclose()


async def _catch_up_vectors(ctx: ServiceContext, jobs: IngestionJobs) -> None:
    """Titles a crash left without a vector (their stamp is NULL), or whose vector another model
    made (an upgrade), get one now, not at the next scheduled enrichment a day later."""
    model_id = jobs.pipeline.embedder.model_id
    async with ctx.engine.connect() as conn:
        missing = await catalog.stale_embedding_ids(conn, datetime(1970, 1, 1, tzinfo=UTC), 1, model_id)
    if missing:
        try:
            await jobs.start_enrichment()
        except ProblemError as exc:
            logger.info("vector catch-up skipped: %s", exc.detail)


async def _enrichment_schedule(ctx: ServiceContext, jobs: IngestionJobs) -> None:
    interval = ctx.settings.ingestion.enrichment_interval_sec
    if interval <= 0:
        return
    while True:
        await asyncio.sleep(interval)
        try:
            await jobs.start_enrichment()
        except ProblemError as exc:
            logger.info("scheduled enrichment skipped: %s", exc.detail)
        except Exception:
            logger.exception("scheduled enrichment could not start")


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        "ingestion",
        settings or Settings(),
        routers=[router, webhook_router],
        lifespan_parts=[ingestion_runtime],
    )
