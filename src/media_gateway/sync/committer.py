"""Group commit: mutations that arrive within a few milliseconds share one PostgreSQL transaction,
and each caller is answered only after that transaction committed.

One committer per process. While a transaction is in flight, new mutations queue up and form the
next batch, so under load batches grow by themselves; the window only matters when traffic is light.
If a shared transaction fails, its submissions are retried one per transaction, so one submission
that cannot be written fails alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from media_gateway.core.metrics import metric_set
from media_gateway.sync.mutations import Mutation, MutationResult
from media_gateway.sync.oplog import SyncOperation
from media_gateway.sync.repository import BatchOutcome

logger = logging.getLogger(__name__)

Apply = Callable[[asyncpg.Connection, Sequence[Mutation]], Awaitable[BatchOutcome]]
AfterCommit = Callable[[list[SyncOperation]], Awaitable[None]]


class CommitMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.transactions = Counter(
            "mg_sync_commit_transactions_total", "Group-commit transactions committed", registry=registry
        )
        self.mutations = Counter("mg_sync_commit_mutations_total", "Mutations committed", registry=registry)
        self.rows = Counter(
            "mg_sync_commit_rows_total", "Rows written by committed mutations", registry=registry
        )
        self.batch_size = Histogram(
            "mg_sync_commit_batch_mutations",
            "Mutations per group-commit transaction",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=registry,
        )
        self.failures = Counter(
            "mg_sync_commit_failures_total", "Group-commit transactions that failed", registry=registry
        )

    @classmethod
    def of(cls, registry: CollectorRegistry) -> CommitMetrics:
        return metric_set(registry, cls, cls)


@dataclass(slots=True)
class _Submission:
    mutations: Sequence[Mutation]
    future: asyncio.Future[list[MutationResult]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommitter:
    def __init__(
        self,
        engine: AsyncEngine,
        apply: Apply,
        *,
        window_ms: float,
        max_ops: int,
        metrics: CommitMetrics,
        after_commit: AfterCommit | None = None,
    ) -> None:
        self.engine = engine
        self._apply = apply
        self._window = window_ms / 1000
        self._max_ops = max_ops
        self._metrics = metrics
        self._after_commit = after_commit
        # None asks the loop to stop once what was queued before it is committed.
        self._queue: asyncio.Queue[_Submission | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        # One pooled connection kept for the committer's lifetime, driven through asyncpg directly.
        self._pooled: AsyncConnection | None = None
        self._conn: asyncpg.Connection | None = None
        # Post-commit work (live push, outbox wake-up) runs off the commit path, one batch after
        # the other so that subscribers see operations in commit order. None stops it.
        self._committed: asyncio.Queue[list[SyncOperation] | None] = asyncio.Queue()
        self._publisher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sync-group-commit")
        self._publisher = asyncio.create_task(self._publish(), name="sync-after-commit")

    async def aclose(self) -> None:
        """Finish what was already submitted, then stop."""
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None
        if self._publisher is not None:
            await self._committed.put(None)
            await self._publisher
            self._publisher = None
        await self._release()

    async def submit(self, mutations: Sequence[Mutation]) -> list[MutationResult]:
        """Apply `mutations` (in order, in one transaction) and return once they are committed."""
        if self._task is None or self._task.done():
            raise RuntimeError("the group committer is not running")
        submission = _Submission(mutations)
        await self._queue.put(submission)
        # A caller that goes away does not cancel the write: it was accepted and will commit.
        return await asyncio.shield(submission.future)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            count = len(first.mutations)
            deadline = loop.time() + self._window
            stop = False
            while count < self._max_ops:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), remaining)
                    except TimeoutError:
                        break
                if item is None:
                    stop = True
                    break
                batch.append(item)
                count += len(item.mutations)
            await self._commit(batch)
            if stop:
                return

    async def _commit(self, batch: list[_Submission]) -> None:
        try:
            outcome = await self._transaction([m for s in batch for m in s.mutations])
        except Exception as exc:
            self._metrics.failures.inc()
            if len(batch) == 1:
                logger.exception("a sync write failed")
                _fail(batch[0], exc)
                return
            logger.warning("a group-commit transaction failed; retrying its writes one by one", exc_info=True)
            for submission in batch:
                await self._commit([submission])
            return
        offset = 0
        for submission in batch:
            results = outcome.results[offset : offset + len(submission.mutations)]
            offset += len(submission.mutations)
            if not submission.future.done():
                submission.future.set_result(results)
        if self._after_commit is not None and outcome.operations:
            self._committed.put_nowait(outcome.operations)

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            await self._release()
            self._pooled = await self.engine.connect()
            self._conn = (await self._pooled.get_raw_connection()).driver_connection
        return self._conn

    async def _release(self) -> None:
        pooled, self._pooled, self._conn = self._pooled, None, None
        if pooled is not None:
            try:
                await pooled.close()
            except Exception:
                logger.warning("could not return the commit connection to the pool", exc_info=True)

    async def _transaction(self, mutations: list[Mutation]) -> BatchOutcome:
        started = time.perf_counter()
        conn = await self._connection()
        try:
            async with conn.transaction():
                outcome = await self._apply(conn, mutations)
        except BaseException:
            if conn.is_closed():
                await self._release()  # the next batch reconnects
            raise
        self._metrics.transactions.inc()
        self._metrics.mutations.inc(len(mutations))
        self._metrics.rows.inc(outcome.rows_written)
        self._metrics.batch_size.observe(len(mutations))
        logger.debug(
            "group commit",
            extra={"mutations": len(mutations), "ms": round((time.perf_counter() - started) * 1000, 2)},
        )
        return outcome

    async def _publish(self) -> None:
        while (operations := await self._committed.get()) is not None:
            if self._after_commit is None:
                continue
            try:
                await self._after_commit(operations)
            except Exception:
                logger.warning("post-commit publication failed", exc_info=True)


def _fail(submission: _Submission, exc: Exception) -> None:
    if not submission.future.done():
        submission.future.set_exception(exc)
