"""Group commit on the real database: submissions that share a transaction are acknowledged after
the commit, and one that cannot be written fails alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import asyncpg
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from media_gateway.core.db import make_engine
from media_gateway.core.settings import Settings
from media_gateway.sync.committer import CommitMetrics, GroupCommitter
from media_gateway.sync.crdt import HybridLogicalClock
from media_gateway.sync.mutations import Mutation, MutationStatus, WatchlistAdd
from media_gateway.sync.repository import BatchOutcome, PostgresSyncRepository


async def test_one_bad_submission_fails_alone(migrated_settings: Settings) -> None:
    engine = make_engine(migrated_settings)
    repository = PostgresSyncRepository(engine, 0.95)
    clock = HybridLogicalClock("test")
    registry = CollectorRegistry()
    metrics = CommitMetrics.of(registry)

    async def apply(conn: asyncpg.Connection, mutations: Sequence[Mutation]) -> BatchOutcome:
        return await repository.apply(conn, mutations, clock)

    # A long window so the three submissions share one transaction first.
    committer = GroupCommitter(engine, apply, window_ms=200, max_ops=100, metrics=metrics)
    await committer.start()
    user_id = uuid.uuid4()

    def add(content_id: str) -> list[Mutation]:
        return [Mutation(user_id, uuid.uuid4(), "phone", WatchlistAdd(content_id))]

    try:
        good, bad, also_good = await asyncio.gather(
            committer.submit(add("a")),
            committer.submit(add("nul\x00byte")),  # PostgreSQL refuses NUL in text
            committer.submit(add("b")),
            return_exceptions=True,
        )
    finally:
        await committer.aclose()
    try:
        assert isinstance(bad, asyncpg.PostgresError)
        assert not isinstance(good, BaseException)
        assert not isinstance(also_good, BaseException)
        assert good[0].status is MutationStatus.APPLIED
        assert also_good[0].status is MutationStatus.APPLIED
        # The shared transaction, then the bad submission on its own; the good ones committed alone.
        assert registry.get_sample_value("mg_sync_commit_failures_total") == 2
        assert registry.get_sample_value("mg_sync_commit_transactions_total") == 2
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT content_id FROM sync.user_watchlists WHERE user_id = :u ORDER BY 1"),
                {"u": user_id},
            )
            assert [r.content_id for r in rows] == ["a", "b"]
    finally:
        await engine.dispose()


async def test_submit_needs_a_running_committer(migrated_settings: Settings) -> None:
    engine = make_engine(migrated_settings)
    repository = PostgresSyncRepository(engine, 0.95)
    committer = GroupCommitter(
        engine,
        lambda conn, ms: repository.apply(conn, ms, HybridLogicalClock("t")),
        window_ms=1,
        max_ops=1,
        metrics=CommitMetrics.of(CollectorRegistry()),
    )
    with pytest.raises(RuntimeError, match="not running"):
        await committer.submit([])
    await engine.dispose()
