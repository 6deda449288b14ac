"""Fetch → normalize → resolve → write catalog and offers → embed → vectors → events.

Vectors go to `catalog.content_vectors` in the transaction that stamps the title as embedded, so a
title's stamp is set exactly when its vector is stored; every process that searches by vector reads
them from there (core.vectors.replica)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from media_gateway.catalog import repository as catalog
from media_gateway.catalog.repository import EmbeddingWork, WriteOutcome
from media_gateway.catalog.schemas import NormalizedContent, NormalizeResult
from media_gateway.core.embeddings import Embedder
from media_gateway.core.events import Event, EventBus
from media_gateway.core.events import outbox as outbox_sql
from media_gateway.core.settings import Settings
from media_gateway.ingestion.models import outbox
from media_gateway.ingestion.normalizers import get_normalizer
from media_gateway.ingestion.resolution import EntityResolver
from media_gateway.ingestion.schemas import RawBatch
from media_gateway.ingestion.sources.base import CatalogSource

logger = logging.getLogger(__name__)

TOPIC_INGESTED = "content.ingested"
TOPIC_UPDATED = "content.updated"
TOPIC_AVAILABILITY = "content.availability_changed"
TOPIC_ENRICHED = "content.metadata_enriched"


@dataclass
class IngestReport:
    """Counts and per-stage seconds; reports of several batches add up."""

    counts: Counter[str] = field(default_factory=Counter)
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    unknown_genres: Counter[str] = field(default_factory=Counter)
    rejections: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: IngestReport) -> None:
        self.counts.update(other.counts)
        for stage, spent in other.seconds.items():
            self.seconds[stage] += spent
        self.unknown_genres.update(other.unknown_genres)
        # Enough to diagnose a feed without letting a bad one grow the job row without bound.
        self.rejections.extend(other.rejections[: max(0, 50 - len(self.rejections))])

    def as_dict(self) -> dict[str, Any]:
        rates = {
            f"{stage}_per_sec": round(self.counts[count] / self.seconds[stage], 1)
            for stage, count in (
                ("normalize", "records"),
                ("resolve", "normalized"),
                ("write", "normalized"),
                ("embed", "embedded"),
                ("vector_upsert", "vectors_written"),
            )
            if self.seconds[stage] > 0
        }
        return {
            "counts": dict(self.counts),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "rates": rates,
            "unknown_genres": dict(self.unknown_genres.most_common(50)),
            "rejections": self.rejections,
        }


class IngestionPipeline:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        resolver: EntityResolver,
        embedder: Embedder,
        bus: EventBus,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.resolver = resolver
        self.embedder = embedder
        self.bus = bus
        # Entity resolution reads what earlier records of the same run wrote, so batches are serial.
        self._write_lock = asyncio.Lock()
        # Time spent resolving within the current write, reported apart from the writes themselves.
        self._resolve_seconds = 0.0

    async def run_source(
        self, source: CatalogSource, on_progress: Callable[[IngestReport], Awaitable[None]] | None = None
    ) -> IngestReport:
        """Write batch N+1 while batch N is being embedded: the two use different resources."""
        total = IngestReport()
        embedding: asyncio.Task[IngestReport] | None = None
        try:
            async for batch in source.fetch():
                report, to_refresh = await self.write_batch(batch)
                total.add(report)
                if embedding is not None:
                    total.add(await embedding)
                embedding = asyncio.create_task(self._refresh_vectors(to_refresh))
                # Only once the batch is durable may the source move past it. A vector still in
                # flight is not lost on a crash: its NULL stamp makes enrichment redo it.
                await source.commit(batch)
                if on_progress is not None:
                    await on_progress(total)
            if embedding is not None:
                total.add(await embedding)
        finally:
            if embedding is not None and not embedding.done():
                embedding.cancel()
        return total

    async def ingest_batch(self, batch: RawBatch) -> IngestReport:
        """One batch, start to finish (webhooks)."""
        report, to_refresh = await self.write_batch(batch)
        report.add(await self._refresh_vectors(to_refresh))
        return report

    async def _refresh_vectors(self, ids: Sequence[uuid.UUID]) -> IngestReport:
        report = IngestReport()
        await self.embed_entities(ids, report)
        return report

    async def write_batch(self, batch: RawBatch) -> tuple[IngestReport, list[uuid.UUID]]:
        """Normalize, resolve and write a batch in one transaction; returns the entities whose
        vector or vector payload is now out of date."""
        report = IngestReport()
        report.counts["records"] += len(batch.records)
        started = time.perf_counter()
        normalizer = get_normalizer(batch.platform)
        result: NormalizeResult = await asyncio.to_thread(normalizer.normalize_batch, batch.records)
        report.seconds["normalize"] += time.perf_counter() - started
        report.counts["normalized"] += len(result.items)
        report.counts["rejected"] += len(result.rejected)
        report.unknown_genres.update(result.unknown_genres)
        report.rejections.extend(
            {"platform": batch.platform, "source_id": r.source_id, "reason": r.reason}
            for r in result.rejected[:50]
        )

        async with self._write_lock:
            started = time.perf_counter()
            self._resolve_seconds = 0.0
            to_refresh = await self._write(result.items, report)
            elapsed = time.perf_counter() - started
            report.seconds["resolve"] += self._resolve_seconds
            report.seconds["write"] += elapsed - self._resolve_seconds
        await self.relay_outbox()
        return report, to_refresh

    async def _write(self, items: Sequence[NormalizedContent], report: IngestReport) -> list[uuid.UUID]:
        """The batch in one transaction. Savepoints per record cost two round trips each, so they
        are only paid when a first, plain attempt failed: then bad records are skipped one by one."""
        try:
            attempt = IngestReport()
            to_refresh = await self._write_attempt(items, attempt, isolate=False)
        except Exception:
            logger.warning("a batch write failed; retrying record by record", exc_info=True)
            attempt = IngestReport()
            to_refresh = await self._write_attempt(items, attempt, isolate=True)
        report.add(attempt)
        return to_refresh

    async def _write_attempt(
        self, items: Sequence[NormalizedContent], report: IngestReport, *, isolate: bool
    ) -> list[uuid.UUID]:
        to_refresh: dict[uuid.UUID, None] = {}
        cache_updates: list[Any] = []
        async with self.engine.begin() as conn:
            events: list[tuple[str, Event]] = []
            for item in items:
                if isolate:
                    try:
                        async with conn.begin_nested():
                            entity_id, outcome, availability = await self._write_one(
                                conn, item, cache_updates
                            )
                    except Exception:
                        logger.exception(
                            "could not ingest a record",
                            extra={"platform": item.source_platform, "source_id": item.source_id},
                        )
                        report.counts["failed"] += 1
                        continue
                else:
                    entity_id, outcome, availability = await self._write_one(conn, item, cache_updates)
                report.counts[outcome.value] += 1
                if availability.changed:
                    report.counts["availability_changed"] += 1
                if outcome is not WriteOutcome.UNCHANGED or availability.changed:
                    to_refresh[entity_id] = None
                events.extend(self._events_for(entity_id, item, outcome, availability))
            await outbox_sql.add_to_outbox(conn, outbox, events)
        await self.resolver.cache_after_commit(cache_updates)
        return list(to_refresh)

    async def _write_one(
        self, conn: AsyncConnection, item: NormalizedContent, cache_updates: list[Any]
    ) -> tuple[uuid.UUID, WriteOutcome, catalog.OfferChanges]:
        started = time.perf_counter()
        resolution = await self.resolver.resolve(item, conn)
        self._resolve_seconds += time.perf_counter() - started
        outcome = await catalog.write_content(conn, resolution.entity_id, item, is_new=resolution.is_new)
        availability = await catalog.replace_platform_offers(
            conn,
            resolution.entity_id,
            item.source_platform,
            item.offers,
            entity_is_new=outcome is WriteOutcome.CREATED,
        )
        cache_updates.extend(await self.resolver.record(conn, resolution.entity_id, item, resolution))
        return resolution.entity_id, outcome, availability

    @staticmethod
    def _events_for(
        entity_id: uuid.UUID,
        item: NormalizedContent,
        outcome: WriteOutcome,
        availability: catalog.OfferChanges,
    ) -> list[tuple[str, Event]]:
        key = str(entity_id)
        payload = {"content_id": key, "platform": item.source_platform, "source_id": item.source_id}
        events = []
        if outcome is WriteOutcome.CREATED:
            events.append((TOPIC_INGESTED, Event(type=TOPIC_INGESTED, key=key, payload=payload)))
        elif outcome is WriteOutcome.UPDATED:
            events.append((TOPIC_UPDATED, Event(type=TOPIC_UPDATED, key=key, payload=payload)))
        if availability.changed:
            changes = {
                "added": availability.added,
                "updated": availability.updated,
                "removed": availability.removed,
            }
            events.append(
                (TOPIC_AVAILABILITY, Event(type=TOPIC_AVAILABILITY, key=key, payload=payload | changes))
            )
        return events

    async def relay_outbox(self, batch_size: int = 500) -> int:
        """Publish pending outbox events, oldest first; each is deleted only after the bus took it."""
        sent = 0
        while True:
            async with self.engine.begin() as conn:
                pending = await outbox_sql.take_outbox(conn, outbox, batch_size)
                if not pending:
                    return sent
                await self.bus.publish_many([(topic, event) for _, topic, event in pending])
                await outbox_sql.delete_from_outbox(conn, outbox, [seq for seq, _, _ in pending])
            sent += len(pending)

    async def embed_entities(
        self, ids: Sequence[uuid.UUID], report: IngestReport, *, force: bool = False
    ) -> list[EmbeddingWork]:
        """Bring the vectors of `ids` up to date: embed what changed text (all of it with `force`),
        only rewrite the payload of the rest. Failures are isolated per item; returns what succeeded."""
        done: list[EmbeddingWork] = []
        chunk_size = self.settings.ingestion.embed_batch_size
        for start in range(0, len(ids), chunk_size):
            async with self.engine.connect() as conn:
                work = await catalog.load_embedding_work(conn, ids[start : start + chunk_size])
            to_embed = [w for w in work if force or w.needs_vector]
            payload_only = [w for w in work if not (force or w.needs_vector)]
            done.extend(await self._embed_work(to_embed, report))
            done.extend(await self._refresh_payloads(payload_only, report))
        return done

    async def _refresh_payloads(
        self, work: Sequence[EmbeddingWork], report: IngestReport
    ) -> list[EmbeddingWork]:
        if not work:
            return []
        started = time.perf_counter()
        # Under the write lock: these rows may be locked by the batch transaction running
        # concurrently, and two transactions updating the same titles in different orders deadlock.
        async with self._write_lock, self.engine.begin() as conn:
            await catalog.store_quality(conn, work)
            stored = await catalog.store_vector_payloads(
                conn, {w.id: w.payload for w in work}, self.embedder.model_id
            )
        report.seconds["vector_upsert"] += time.perf_counter() - started
        refreshed = [w for w in work if w.id in stored]
        report.counts["payload_refreshed"] += len(refreshed)
        report.counts["vectors_written"] += len(refreshed)
        missing = [w for w in work if w.id not in stored]
        if missing:
            # No vector of this model to keep (never stored, or another model's): make one.
            logger.info("titles without a stored vector; embedding them", extra={"items": len(missing)})
            refreshed.extend(await self._embed_work(missing, report))
        return refreshed

    async def _embed_work(self, work: Sequence[EmbeddingWork], report: IngestReport) -> list[EmbeddingWork]:
        if not work:
            return []
        started = time.perf_counter()
        try:
            vectors = await self.embedder.embed([w.text for w in work])
            items = list(work)
        except Exception:
            # One poisoned text must not cost its whole chunk: retry the items one by one.
            logger.exception("batch embedding failed; retrying item by item", extra={"items": len(work)})
            items, rows = [], []
            for w in work:
                try:
                    rows.append(await self.embedder.embed_one(w.text))
                    items.append(w)
                except Exception:
                    logger.exception("could not embed an entity", extra={"content_id": str(w.id)})
                    report.counts["embed_failed"] += 1
            if not items:
                return []
            vectors = np.stack(rows)
        report.seconds["embed"] += time.perf_counter() - started
        started = time.perf_counter()
        async with self._write_lock, self.engine.begin() as conn:
            await catalog.mark_embedded(conn, items, self.embedder.model_id)
            await catalog.store_vectors(
                conn,
                {w.id: (v, w.payload) for w, v in zip(items, vectors, strict=True)},
                self.embedder.model_id,
                self.embedder.dimension,
            )
        report.seconds["vector_upsert"] += time.perf_counter() - started
        report.counts["embedded"] += len(items)
        report.counts["vectors_written"] += len(items)
        return items
