"""Keeping embeddings and quality scores fresh (TASK-010)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from media_gateway.catalog import repository as catalog
from media_gateway.core.events import Event
from media_gateway.core.events import outbox as outbox_sql
from media_gateway.ingestion.models import outbox
from media_gateway.ingestion.pipeline import TOPIC_ENRICHED, IngestionPipeline, IngestReport

logger = logging.getLogger(__name__)


class EnrichmentJob:
    """Re-embeds content whose vector is missing or older than the configured age, in batches.

    Each batch is selected afresh, so progress survives a crash: what was done is no longer stale."""

    def __init__(self, pipeline: IngestionPipeline) -> None:
        self.pipeline = pipeline
        cfg = pipeline.settings.ingestion
        self.max_age = timedelta(days=cfg.enrichment_max_age_days)
        self.batch_size = cfg.enrichment_batch_size

    async def run(
        self,
        now: datetime | None = None,
        on_progress: Callable[[IngestReport], Awaitable[None]] | None = None,
    ) -> IngestReport:
        cutoff = (now or datetime.now(UTC)) - self.max_age
        report = IngestReport()
        failed: set[uuid.UUID] = set()
        while True:
            async with self.pipeline.engine.connect() as conn:
                # Items that failed this run stay stale; skip past them instead of retrying forever.
                ids = [
                    i
                    for i in await catalog.stale_embedding_ids(
                        conn, cutoff, self.batch_size + len(failed), self.pipeline.embedder.model_id
                    )
                    if i not in failed
                ][: self.batch_size]
            if not ids:
                break
            report.counts["selected"] += len(ids)
            report.counts["batches"] += 1
            done = await self.pipeline.embed_entities(ids, report, force=True)
            failed.update(set(ids) - {w.id for w in done})
            report.counts["failed"] = len(failed)
            if done:
                async with self.pipeline.engine.begin() as conn:
                    await outbox_sql.add_to_outbox(
                        conn,
                        outbox,
                        [
                            (
                                TOPIC_ENRICHED,
                                Event(
                                    type=TOPIC_ENRICHED,
                                    key=str(w.id),
                                    payload={"content_id": str(w.id), "quality_score": w.quality_score},
                                ),
                            )
                            for w in done
                        ],
                    )
                await self.pipeline.relay_outbox()
            report.counts["enriched"] += len(done)
            logger.info(
                "enrichment progress",
                extra={"enriched": report.counts["enriched"], "failed": report.counts["failed"]},
            )
            if on_progress is not None:
                await on_progress(report)
        return report
