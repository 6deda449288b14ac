"""Sync logic between the routes and the repository: requests become validated mutations, the group
committer writes them, reads go straight to PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import asyncpg
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from media_gateway.core.errors import ProblemError
from media_gateway.core.settings import SyncSettings
from media_gateway.sync.committer import GroupCommitter
from media_gateway.sync.crdt.hlc import Timestamp
from media_gateway.sync.mutations import (
    Change,
    Mutation,
    MutationResult,
    MutationStatus,
    ProgressSet,
    ProgressState,
    WatchlistAdd,
    WatchlistRemove,
)
from media_gateway.sync.oplog import PROGRESS_SET, WATCHLIST_ADD, WATCHLIST_REMOVE, SyncOperation
from media_gateway.sync.repository import HistoryItem, SyncRepository, WatchlistSnapshot
from media_gateway.sync.schemas import ProgressPayload, ProgressReport, QueuedOperation, RemovePayload

CLIENT_KINDS = (WATCHLIST_ADD, WATCHLIST_REMOVE, PROGRESS_SET)


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    op_id: UUID
    status: str  # applied, duplicate, ignored
    operations: list[SyncOperation]


class SyncService:
    def __init__(self, settings: SyncSettings, repository: SyncRepository, committer: GroupCommitter) -> None:
        self.settings = settings
        self.repository = repository
        self.committer = committer

    async def _submit(self, mutations: Sequence[Mutation]) -> list[MutationResult]:
        try:
            return await self.committer.submit(mutations)
        except (SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            # Not committed, so not acknowledged: the client retries (a replayed batch is idempotent).
            raise ProblemError(
                503, "the change could not be saved; retry", headers={"Retry-After": "1"}
            ) from exc

    async def _one(self, mutation: Mutation) -> MutationResult:
        (result,) = await self._submit([mutation])
        return result

    async def add_to_watchlist(self, user_id: UUID, content_id: str, device_id: str | None) -> MutationResult:
        return await self._one(Mutation(user_id, uuid.uuid4(), device_id, WatchlistAdd(content_id)))

    async def remove_from_watchlist(
        self, user_id: UUID, content_id: str, device_id: str | None, tags: Sequence[UUID] | None = None
    ) -> MutationResult:
        change = WatchlistRemove(content_id, frozenset(tags) if tags is not None else None)
        result = await self._one(Mutation(user_id, uuid.uuid4(), device_id, change))
        if result.status is MutationStatus.NOT_FOUND:
            raise ProblemError(404, f"{content_id!r} is not in the watchlist")
        return result

    async def change_watchlist(
        self,
        user_id: UUID,
        operation: str,
        content_id: str,
        device_id: str | None,
        tags: Sequence[UUID] | None,
    ) -> MutationResult:
        if operation == "add":
            return await self.add_to_watchlist(user_id, content_id, device_id)
        if operation == "remove":
            return await self.remove_from_watchlist(user_id, content_id, device_id, tags)
        raise ProblemError(400, f"unknown operation {operation!r}; expected one of: add, remove")

    def is_recordable(self, position_seconds: float, duration_seconds: float) -> bool:
        # A title barely started (the first 1 % by default) is not "in progress".
        return position_seconds / duration_seconds >= self.settings.min_progress_fraction

    async def record_progress(
        self, user_id: UUID, report: ProgressReport, device_id: str | None
    ) -> MutationResult | None:
        """None when the position is too early to record."""
        if not self.is_recordable(report.position_seconds, report.duration_seconds):
            return None
        change = ProgressSet(
            report.content_id, report.position_seconds, report.duration_seconds, report.state
        )
        return await self._one(Mutation(user_id, uuid.uuid4(), device_id, change))

    async def replay(
        self, user_id: UUID, device_id: str | None, operations: Sequence[QueuedOperation]
    ) -> list[ReplayOutcome]:
        """Apply an offline queue in order, all or nothing; replaying it again changes nothing."""
        if len(operations) > self.settings.batch_max_ops:
            raise ProblemError(400, f"at most {self.settings.batch_max_ops} operations per batch")
        mutations: list[Mutation] = []
        outcomes: list[ReplayOutcome | None] = []
        for index, op in enumerate(operations):
            try:
                hlc = Timestamp.parse(op.hlc)
                change = self._queued_change(op)
            except (ValueError, ValidationError) as exc:
                raise ProblemError(400, f"operations[{index}] ({op.kind}): {_reason(exc)}") from exc
            if change is None:
                outcomes.append(ReplayOutcome(op.op_id, "ignored", []))
                continue
            mutations.append(Mutation(user_id, op.op_id, device_id, change, hlc=hlc, replay=True))
            outcomes.append(None)
        results = iter(await self._submit(mutations) if mutations else [])
        replayed: list[ReplayOutcome] = []
        for op, outcome in zip(operations, outcomes, strict=True):
            if outcome is None:
                result = next(results)
                outcome = ReplayOutcome(op.op_id, result.status.value, result.operations)
            replayed.append(outcome)
        return replayed

    def _queued_change(self, op: QueuedOperation) -> Change | None:
        if op.kind == WATCHLIST_ADD:
            return WatchlistAdd(op.content_id)
        if op.kind == WATCHLIST_REMOVE:
            removed = RemovePayload.model_validate(op.payload)
            return WatchlistRemove(op.content_id, frozenset(removed.tags), require_present=False)
        if op.kind == PROGRESS_SET:
            p = ProgressPayload.model_validate(op.payload)
            if not self.is_recordable(p.position_seconds, p.duration_seconds):
                return None
            return ProgressSet(op.content_id, p.position_seconds, p.duration_seconds, p.state)
        raise ValueError(f"unknown kind; expected one of: {', '.join(CLIENT_KINDS)}")

    async def watchlist(self, user_id: UUID) -> WatchlistSnapshot:
        return await self.repository.watchlist(user_id)

    async def progress(self, user_id: UUID, content_id: str | None) -> list[ProgressState]:
        return await self.repository.progress(user_id, content_id)

    async def history(self, user_id: UUID) -> list[HistoryItem]:
        return await self.repository.history(user_id)

    async def changes(self, user_id: UUID, since_seq: int, limit: int) -> list[SyncOperation]:
        return await self.repository.changes(user_id, since_seq, min(limit, self.settings.changes_page_max))

    async def collect_tombstones(self) -> int:
        return await self.repository.collect_tombstones(timedelta(days=self.settings.tombstone_ttl_days))


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}" for err in exc.errors()
        )
    return str(exc)
