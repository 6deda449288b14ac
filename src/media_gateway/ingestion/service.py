"""Ingestion jobs: what runs a source or enrichment in the background and records how it went."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from media_gateway.catalog import repository as catalog
from media_gateway.core.errors import ProblemError
from media_gateway.core.settings import Settings
from media_gateway.ingestion import repository
from media_gateway.ingestion.demo import write_demo_feeds
from media_gateway.ingestion.enrichment import EnrichmentJob
from media_gateway.ingestion.pipeline import IngestionPipeline, IngestReport
from media_gateway.ingestion.sources.aggregator import AggregatorSource
from media_gateway.ingestion.sources.base import CatalogSource
from media_gateway.ingestion.sources.file import FileFeedSource

logger = logging.getLogger(__name__)

SourceKind = Literal["demo", "file", "aggregator"]
DEMO_SOURCE = "demo"
# A running job writes its counts after every batch; silence this long means its process died.
DEAD_AFTER = timedelta(minutes=5)


# Counts of an `IngestReport` that mean catalog rows were written.
_CATALOG_WRITES = ("created", "updated", "availability_changed")


def _wrote_catalog(report: IngestReport) -> bool:
    return any(report.counts.get(name, 0) for name in _CATALOG_WRITES)


class IngestionJobs:
    def __init__(self, settings: Settings, engine: AsyncEngine, pipeline: IngestionPipeline) -> None:
        self.settings = settings
        self.engine = engine
        self.pipeline = pipeline
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def demo_feed_dir(self) -> Path:
        return Path(self.settings.data_dir) / "demo-feeds"

    @property
    def has_demo_data(self) -> bool:
        return (self.demo_feed_dir / "README.txt").exists()

    @property
    def feed_root(self) -> Path:
        return (Path(self.settings.data_dir) / "feeds").resolve()

    async def make_source(
        self, kind: SourceKind, path: str | None = None, *, confined: bool = True
    ) -> CatalogSource:
        """The source to run; `confined` (the API) keeps file paths inside the feeds directory."""
        if kind == "demo":
            # Generated once, so the cursor of a half-done demo ingest still fits the files.
            if not self.has_demo_data:
                await write_demo_feeds(self.settings, self.demo_feed_dir)
            return FileFeedSource(self.settings, self.engine, self.demo_feed_dir, name=DEMO_SOURCE)
        if kind == "file":
            if not path:
                raise ProblemError(422, "A file source needs a path (relative to the feeds directory).")
            target = (self.feed_root / path).resolve()
            # Admin or not, a request must not read files outside the feeds directory.
            if confined and not target.is_relative_to(self.feed_root):
                raise ProblemError(422, f"The path must stay inside {self.feed_root}.")
            if not target.exists():
                raise ProblemError(404, f"No feed at {path}.")
            return FileFeedSource(self.settings, self.engine, target, name=f"file:{path}")
        if not self.settings.ingestion.aggregator_url:
            raise ProblemError(409, "No aggregator configured: set MG_INGESTION__AGGREGATOR_URL.")
        return AggregatorSource(self.settings, self.engine)

    async def start(
        self,
        kind: Literal["ingest", "enrich"],
        source: str | None,
        run: Callable[[Callable[[IngestReport], Awaitable[None]]], Awaitable[IngestReport]],
    ) -> dict[str, Any]:
        """Record the job and run it in the background; one active job per (kind, source)."""
        async with self.engine.begin() as conn:
            await repository.lock_job_slot(conn, kind, source)
            await repository.fail_dead_jobs(conn, DEAD_AFTER)
            active = await repository.active_job(conn, kind, source)
            if active is not None:
                raise ProblemError(
                    409,
                    f"A {kind} job for {source or 'the catalog'} is already running.",
                    extra={"job_id": str(active["id"])},
                )
            job_id = await repository.create_job(conn, kind, source)
            job = await repository.get_job(conn, job_id)
        assert job is not None
        task = asyncio.create_task(self._run(job_id, run), name=f"job-{kind}-{job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(
        self,
        job_id: uuid.UUID,
        run: Callable[[Callable[[IngestReport], Awaitable[None]]], Awaitable[IngestReport]],
    ) -> None:
        async with self.engine.begin() as conn:
            await repository.start_job(conn, job_id)

        async def progress(report: IngestReport) -> None:
            async with self.engine.begin() as conn:
                await repository.update_job_counts(conn, job_id, report.as_dict())

        try:
            report = await run(progress)
        except asyncio.CancelledError:
            async with self.engine.begin() as conn:
                await repository.finish_job(conn, job_id, {}, error="cancelled: the service stopped")
            raise
        except Exception as exc:
            logger.exception("job failed", extra={"job_id": str(job_id)})
            async with self.engine.begin() as conn:
                await repository.finish_job(conn, job_id, {}, error=f"{type(exc).__name__}: {exc}"[:500])
            return
        if _wrote_catalog(report):
            async with self.engine.begin() as conn:
                await catalog.refresh_statistics(conn)
        async with self.engine.begin() as conn:
            await repository.finish_job(conn, job_id, report.as_dict())
        logger.info("job finished", extra={"job_id": str(job_id), "counts": dict(report.counts)})

    async def start_ingest(
        self, kind: SourceKind, path: str | None = None, *, confined: bool = True
    ) -> dict[str, Any]:
        source = await self.make_source(kind, path, confined=confined)

        async def run(progress: Callable[[IngestReport], Awaitable[None]]) -> IngestReport:
            return await self.pipeline.run_source(source, on_progress=progress)

        return await self.start("ingest", source.name, run)

    async def start_enrichment(self) -> dict[str, Any]:
        job = EnrichmentJob(self.pipeline)

        async def run(progress: Callable[[IngestReport], Awaitable[None]]) -> IngestReport:
            return await job.run(on_progress=progress)

        return await self.start("enrich", None, run)

    async def wait(self) -> None:
        """Until every job started here has finished (the CLI and tests use it)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
