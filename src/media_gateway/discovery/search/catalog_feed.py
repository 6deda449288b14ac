"""Keeps the keyword index in step with the catalog: full builds from it, upserts from its events.

Events only name what changed; the feed re-reads those entities from the catalog, so a late,
repeated or out-of-order event can do no harm (it just re-reads the current row). An event is
acked as soon as it is queued, before the index write: a crash can lose at most a few hundred
milliseconds of changes, and every start rebuilds the index from the catalog anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from media_gateway.core.events import Event, EventBus, run_consumer
from media_gateway.discovery.search.documents import BuildStats, KeywordDoc
from media_gateway.discovery.search.keyword import KeywordIndex
from media_gateway.discovery.search.repository import IndexRow, index_rows, index_rows_page

logger = logging.getLogger(__name__)

TOPICS = ("content.ingested", "content.updated", "content.availability_changed")
GROUP = "discovery-keyword"
PAGE_SIZE = 1_000
# Cast members a title keeps for match reasons ("with <name>").
BILLED_CAST = 10


def today() -> date:
    return datetime.now(UTC).date()


def keyword_doc(row: IndexRow) -> KeywordDoc:
    return KeywordDoc(
        id=str(row.id),
        kind=row.kind,
        title=row.title,
        original_title=row.original_title,
        people=row.people,
        keywords=row.keywords,
        overview=row.overview,
        genres=row.genres,
        offers=row.offers,
        year=row.year,
        runtime_minutes=row.runtime_minutes,
        rating=row.rating,
        popularity=row.popularity,
        vote_count=row.vote_count,
        certifications=row.certifications,
        billed_people=[*row.people[: row.cast_count][:BILLED_CAST], *row.people[row.cast_count :]],
        poster=row.poster,
        is_original=row.is_original,
        card_offers=row.card_offers,
    )


async def catalog_docs(engine: AsyncEngine, page_size: int = PAGE_SIZE) -> AsyncIterator[KeywordDoc]:
    """Every catalog entity, a page per connection so no transaction stays open for the build."""
    day = today()
    after: uuid.UUID | None = None
    while True:
        async with engine.connect() as conn:
            page = await index_rows_page(conn, after, page_size, day)
        for row in page:
            yield keyword_doc(row)
        if len(page) < page_size:
            return
        after = page[-1].id


async def load_docs(engine: AsyncEngine, ids: Sequence[uuid.UUID]) -> list[KeywordDoc]:
    async with engine.connect() as conn:
        return [keyword_doc(row) for row in await index_rows(conn, ids, today())]


class CatalogFeed:
    """Builds `index` from the catalog and applies catalog events to it, batched.

    `window_sec` is how long a batch collects ids after its first one: small enough that new
    content is searchable well within seconds, large enough that a bulk ingest becomes few commits.
    `refresh_sec` rebuilds periodically so offers that start or expire with the date (which no
    event announces) are filtered on correctly; None turns that off."""

    def __init__(
        self,
        index: KeywordIndex,
        engine: AsyncEngine,
        bus: EventBus,
        *,
        consumer: str,
        group: str = GROUP,
        window_sec: float = 0.25,
        max_batch: int = 500,
        block_ms: int = 1_000,
        refresh_sec: float | None = None,
    ) -> None:
        self.index = index
        self._engine = engine
        self._bus = bus
        self._consumer = consumer
        self._group = group
        self._window = window_sec
        self._max_batch = max_batch
        self._block_ms = block_ms
        self._refresh = refresh_sec
        # Insertion-ordered set: ids waiting for the next batch.
        self._pending: dict[uuid.UUID, None] = {}
        self._wakeup = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def ensure_groups(self) -> None:
        """Create the consumer groups before the build reads the catalog, so a change made during
        the build is delivered after it instead of falling between the two."""
        for topic in TOPICS:
            try:
                await self._bus.ensure_group(topic, self._group, start_id="$")
            except Exception:
                # The consumer loop creates it when the bus is back; the start must not wait for it.
                logger.exception("could not create consumer group %s on %s", self._group, topic)

    async def rebuild(self) -> BuildStats:
        return await self.index.build(catalog_docs(self._engine))

    async def start(self) -> None:
        for topic in TOPICS:
            consumer = run_consumer(
                self._bus,
                topic,
                self._group,
                self._consumer,
                self.handle,
                self._stop,
                count=self._max_batch,
                block_ms=self._block_ms,
            )
            self._tasks.append(asyncio.create_task(consumer, name=f"keyword-consumer-{topic}"))
        self._tasks.append(asyncio.create_task(self._flush_loop(), name="keyword-flush"))
        if self._refresh:
            self._tasks.append(asyncio.create_task(self._refresh_loop(self._refresh), name="keyword-refresh"))

    async def stop(self, timeout_sec: float = 3.0) -> None:
        self._stop.set()
        if not self._tasks:
            return
        # Consumers finish the batch they hold and return; the flush and refresh loops only end
        # when cancelled, and so does a consumer still blocked past the timeout.
        _, running = await asyncio.wait(self._tasks, timeout=timeout_sec)
        for task in self._tasks:
            if not task.done():
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if running:
            logger.debug("cancelled %d keyword feed tasks at stop", len(running))
        self._tasks.clear()

    async def handle(self, event: Event) -> None:
        try:
            content_id = uuid.UUID(event.key)
        except ValueError:
            logger.warning("event %s (%s) has a key that is not a content id; skipped", event.id, event.type)
            return
        self._pending[content_id] = None
        self._wakeup.set()

    async def flush(self) -> int:
        """Apply up to one batch of pending ids now; returns how many ids it covered."""
        batch = list(itertools.islice(self._pending, self._max_batch))
        if not batch:
            return 0
        for content_id in batch:
            del self._pending[content_id]
        try:
            docs = await load_docs(self._engine, batch)
            found = {doc.id for doc in docs}
            await self.index.apply(upserts=docs, deletes=[str(i) for i in batch if str(i) not in found])
        except BaseException:
            # Back in the queue for the next attempt; order does not matter.
            self._pending.update(dict.fromkeys(batch))
            raise
        return len(batch)

    async def _flush_loop(self) -> None:
        failures = 0
        while True:
            await self._wakeup.wait()
            await asyncio.sleep(self._window)
            self._wakeup.clear()
            try:
                await self.flush()
                failures = 0
            except Exception:
                failures += 1
                logger.exception("keyword index update failed (%d in a row); retrying", failures)
                await asyncio.sleep(min(30.0, 0.5 * 2**failures))
            if self._pending:
                self._wakeup.set()

    async def _refresh_loop(self, interval_sec: float) -> None:
        while True:
            await asyncio.sleep(interval_sec)
            try:
                await self.rebuild()
            except Exception:
                logger.exception("periodic keyword index rebuild failed; the live index stays")
