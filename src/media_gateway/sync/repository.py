"""All SQL of the sync domain (the operation log's own statements live in oplog.py).

`PostgresSyncRepository.apply` merges a whole group-commit batch into PostgreSQL with a fixed number
of set-based statements, whatever the batch size: it locks the batch's users, reads the state the
batch touches, runs the CRDT rules in Python in arrival order, then writes the resulting tag rows,
registers, history rows, operations and outbox events.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from media_gateway.sync.crdt.hlc import HybridLogicalClock, Timestamp
from media_gateway.sync.mutations import (
    Mutation,
    MutationResult,
    MutationStatus,
    ProgressSet,
    ProgressState,
    WatchlistAdd,
    WatchlistRemove,
)
from media_gateway.sync.oplog import (
    HISTORY_COMPLETED,
    PROGRESS_SET,
    WATCHLIST_ADD,
    WATCHLIST_REMOVE,
    NewOperation,
    SyncOperation,
    append_operations,
    head_seq,
    list_operations,
    lock_users,
)
from media_gateway.sync.sql import Executor, execute, fetch

ACTIVITY_TOPIC = "user.activity"
# Derived operations (a completion of a progress write) get an id derived from their cause, so a
# replay of the cause derives the same id.
_DERIVED_NS = uuid.UUID("6f1d2c4e-9b0a-4c55-8f0e-3a7d5e2b1c90")

Pair = tuple[UUID, str]


@dataclass(frozen=True, slots=True)
class WatchlistSnapshot:
    # `[{"content_id", "added_at", "tags"}, ...]` newest first, already JSON: a 10,000-item list is
    # serialized by PostgreSQL in a few milliseconds instead of row by row in Python.
    items_json: str
    count: int
    # The user's op-log head when the snapshot was read: poll /changes from here.
    head_seq: int


@dataclass(frozen=True, slots=True)
class HistoryItem:
    content_id: str
    position_seconds: float
    duration_seconds: float
    device_id: str
    completed_at: datetime


@dataclass(slots=True)
class BatchOutcome:
    results: list[MutationResult]
    operations: list[SyncOperation]
    rows_written: int


class SyncRepository(Protocol):
    async def apply(
        self, conn: Executor, mutations: Sequence[Mutation], clock: HybridLogicalClock
    ) -> BatchOutcome: ...

    async def watchlist(self, user_id: UUID) -> WatchlistSnapshot: ...

    async def progress(self, user_id: UUID, content_id: str | None) -> list[ProgressState]: ...

    async def history(self, user_id: UUID) -> list[HistoryItem]: ...

    async def changes(self, user_id: UUID, since_seq: int, limit: int) -> list[SyncOperation]: ...

    async def collect_tombstones(self, older_than: timedelta) -> int: ...


@dataclass(slots=True)
class _TagState:
    live: set[UUID] = field(default_factory=set)
    dead: set[UUID] = field(default_factory=set)


@dataclass(slots=True)
class _Writes:
    # (user, content, tag) -> columns to merge into the tag row
    tags: dict[tuple[UUID, str, UUID], dict[str, Any]] = field(default_factory=dict)
    progress: dict[Pair, ProgressState] = field(default_factory=dict)
    history: dict[Pair, ProgressState] = field(default_factory=dict)
    ops: list[NewOperation] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def _pairs_args(pairs: Sequence[Pair]) -> tuple[list[UUID], list[str]]:
    return [p[0] for p in pairs], [p[1] for p in pairs]


# The write path's statements use asyncpg's $n parameters (see sql.py).
_LOAD_TAGS = """
    SELECT w.user_id, w.content_id, w.tag,
           w.added_at IS NOT NULL AS added, w.removed_at IS NOT NULL AS removed
    FROM unnest($1::uuid[], $2::text[]) AS p(u, c)
    JOIN sync.user_watchlists AS w ON w.user_id = p.u AND w.content_id = p.c
"""
_LOAD_PROGRESS = """
    SELECT g.user_id, g.content_id, g.position_seconds, g.duration_seconds, g.state, g.completed, g.hlc,
           g.device_id, g.updated_at
    FROM unnest($1::uuid[], $2::text[]) AS p(u, c)
    JOIN sync.user_progress AS g ON g.user_id = p.u AND g.content_id = p.c
"""
_WATCHLIST_JSON = text(
    """
    SELECT count(*) AS n,
           COALESCE(json_agg(visible ORDER BY added_at DESC, content_id), '[]')::text AS items
    FROM (
        SELECT content_id, min(added_at) AS added_at, array_agg(tag) AS tags
        FROM sync.user_watchlists
        WHERE user_id = :u AND removed_at IS NULL AND added_at IS NOT NULL
        GROUP BY content_id
    ) AS visible
    """
)
_EXISTING_OPS = """
    SELECT o.user_id, o.op_id
    FROM unnest($1::uuid[], $2::uuid[]) AS p(u, o)
    JOIN sync.operations AS o ON o.user_id = p.u AND o.op_id = p.o
"""
# COALESCE keeps the first add and the first remove of a tag: a tombstone never comes back to life.
_WRITE_TAGS = """
    INSERT INTO sync.user_watchlists
        (user_id, content_id, tag, added_hlc, added_device_id, added_at, removed_hlc, removed_at)
    SELECT * FROM unnest(
        $1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::timestamptz[], $7::text[],
        $8::timestamptz[]
    )
    ON CONFLICT (user_id, content_id, tag) DO UPDATE SET
        added_hlc = COALESCE(user_watchlists.added_hlc, EXCLUDED.added_hlc),
        added_device_id = COALESCE(user_watchlists.added_device_id, EXCLUDED.added_device_id),
        added_at = COALESCE(user_watchlists.added_at, EXCLUDED.added_at),
        removed_hlc = COALESCE(user_watchlists.removed_hlc, EXCLUDED.removed_hlc),
        removed_at = COALESCE(user_watchlists.removed_at, EXCLUDED.removed_at)
"""
# The WHERE guard repeats the LWW rule in SQL (hlc and device_id are COLLATE "C").
_WRITE_PROGRESS = """
    INSERT INTO sync.user_progress
        (user_id, content_id, position_seconds, duration_seconds, hlc, device_id, updated_at, state,
         completed)
    SELECT * FROM unnest(
        $1::uuid[], $2::text[], $3::float8[], $4::float8[], $5::text[], $6::text[], $7::timestamptz[],
        $8::text[], $9::bool[]
    )
    ON CONFLICT (user_id, content_id) DO UPDATE SET
        position_seconds = EXCLUDED.position_seconds,
        duration_seconds = EXCLUDED.duration_seconds,
        state = EXCLUDED.state,
        completed = EXCLUDED.completed,
        hlc = EXCLUDED.hlc,
        device_id = EXCLUDED.device_id,
        updated_at = EXCLUDED.updated_at
    WHERE (EXCLUDED.hlc, EXCLUDED.device_id) > (user_progress.hlc, user_progress.device_id)
"""
_WRITE_HISTORY = """
    INSERT INTO sync.user_history
        (user_id, content_id, position_seconds, duration_seconds, hlc, device_id, completed_at)
    SELECT * FROM unnest(
        $1::uuid[], $2::text[], $3::float8[], $4::float8[], $5::text[], $6::text[], $7::timestamptz[]
    )
    ON CONFLICT (user_id, content_id) DO UPDATE SET
        position_seconds = EXCLUDED.position_seconds,
        duration_seconds = EXCLUDED.duration_seconds,
        hlc = EXCLUDED.hlc,
        device_id = EXCLUDED.device_id,
        completed_at = EXCLUDED.completed_at
    WHERE (EXCLUDED.hlc, EXCLUDED.device_id) > (user_history.hlc, user_history.device_id)
"""
_WRITE_OUTBOX = """
    INSERT INTO sync.outbox (topic, event)
    SELECT $1, e::jsonb FROM unnest($2::text[]) AS e
"""


def _lww_key(hlc: str, device_id: str) -> tuple[Timestamp, str]:
    return (Timestamp.parse(hlc), device_id)


class PostgresSyncRepository:
    def __init__(self, engine: AsyncEngine, completion_threshold: float) -> None:
        self.engine = engine
        self.completion_threshold = completion_threshold

    # -- writes ---------------------------------------------------------------------------------

    async def apply(
        self, conn: Executor, mutations: Sequence[Mutation], clock: HybridLogicalClock
    ) -> BatchOutcome:
        """Apply `mutations` in order inside the caller's transaction."""
        await lock_users(conn, (m.user_id for m in mutations))
        seen = await self._existing_ops(conn, [(m.user_id, m.op_id) for m in mutations if m.replay])
        tag_pairs = sorted(
            {(m.user_id, m.change.content_id) for m in mutations if not isinstance(m.change, ProgressSet)}
        )
        progress_pairs = sorted(
            {(m.user_id, m.change.content_id) for m in mutations if isinstance(m.change, ProgressSet)}
        )
        tags = await self._load_tags(conn, tag_pairs)
        registers = await self._load_progress(conn, progress_pairs)
        # Server stamps must sort after every write already stored for these titles, even one
        # stamped by a replica whose wall clock runs ahead of ours.
        for register in registers.values():
            clock.observe(Timestamp.parse(register.hlc))

        now = datetime.now(UTC)
        writes = _Writes()
        results: list[MutationResult] = []
        for mutation in mutations:
            if (mutation.user_id, mutation.op_id) in seen:
                results.append(MutationResult(MutationStatus.DUPLICATE))
                continue
            change = mutation.change
            if isinstance(change, ProgressSet):
                result = self._set_progress(mutation, change, registers, writes, clock, now)
            else:
                result = self._change_watchlist(mutation, change, tags, writes, clock, now)
            if result.status is MutationStatus.APPLIED:
                seen.add((mutation.user_id, mutation.op_id))
            results.append(result)

        rows = await self._write(conn, writes)
        operations = await append_operations(conn, writes.ops, lock=False)
        by_id = {(op.user_id, op.op_id): op for op in operations}
        for mutation, result in zip(mutations, results, strict=True):
            if result.status is MutationStatus.APPLIED:
                keys = [(mutation.user_id, mutation.op_id)]
                if result.completed:
                    keys.append((mutation.user_id, _derived(mutation.op_id)))
                result.operations = [by_id[key] for key in keys if key in by_id]
        return BatchOutcome(results, operations, rows + len(operations))

    def _change_watchlist(
        self,
        mutation: Mutation,
        change: WatchlistAdd | WatchlistRemove,
        tags: dict[Pair, _TagState],
        writes: _Writes,
        clock: HybridLogicalClock,
        now: datetime,
    ) -> MutationResult:
        pair = (mutation.user_id, change.content_id)
        state = tags.setdefault(pair, _TagState())
        was_present = bool(state.live)
        if isinstance(change, WatchlistRemove):
            observed = set(state.live) if change.tags is None else set(change.tags)
            if change.require_present and not state.live:
                return MutationResult(MutationStatus.NOT_FOUND, in_watchlist=False)
        hlc = (clock.receive(mutation.hlc) if mutation.hlc else clock.now()).encode()
        user, content = pair
        if isinstance(change, WatchlistAdd):
            tag = mutation.op_id
            if tag not in state.dead:
                state.live.add(tag)
            row = writes.tags.setdefault((user, content, tag), {})
            row.update(added_hlc=hlc, added_device_id=mutation.device_id, added_at=now)
            payload: dict[str, Any] = {"tag": str(tag)}
            kind, event_type = WATCHLIST_ADD, "watchlist.added"
        else:
            for tag in observed:
                state.live.discard(tag)
                state.dead.add(tag)
                writes.tags.setdefault((user, content, tag), {}).update(removed_hlc=hlc, removed_at=now)
            kind, payload = WATCHLIST_REMOVE, {"tags": sorted(str(t) for t in observed)}
            event_type = "watchlist.removed"
        writes.ops.append(NewOperation(user, mutation.op_id, kind, mutation.device_id, content, payload, hlc))
        if was_present != bool(state.live):
            writes.events.append(_activity(event_type, user, {"content_id": content}, now))
        return MutationResult(MutationStatus.APPLIED, in_watchlist=bool(state.live))

    def _set_progress(
        self,
        mutation: Mutation,
        change: ProgressSet,
        registers: dict[Pair, ProgressState],
        writes: _Writes,
        clock: HybridLogicalClock,
        now: datetime,
    ) -> MutationResult:
        pair = (mutation.user_id, change.content_id)
        user, content = pair
        hlc = (clock.receive(mutation.hlc) if mutation.hlc else clock.now()).encode()
        device = mutation.device_id or ""
        completion = min(1.0, change.position_seconds / change.duration_seconds)
        completed = completion >= self.completion_threshold
        candidate = ProgressState(
            content_id=content,
            position_seconds=change.position_seconds,
            duration_seconds=change.duration_seconds,
            state=change.state,
            completed=completed,
            hlc=hlc,
            device_id=device,
            updated_at=now,
        )
        current = registers.get(pair)
        won = current is None or _lww_key(hlc, device) > _lww_key(current.hlc, current.device_id)
        if won:
            registers[pair] = candidate
            writes.progress[pair] = candidate
        numbers = {
            "position_seconds": change.position_seconds,
            "duration_seconds": change.duration_seconds,
        }
        payload = numbers | {"state": change.state, "completion": completion, "completed": completed}
        writes.ops.append(
            NewOperation(user, mutation.op_id, PROGRESS_SET, mutation.device_id, content, payload, hlc)
        )
        if won:
            event_payload = {"content_id": content, "completion": completion} | numbers
            writes.events.append(_activity("progress.updated", user, event_payload, now))
        if completed:
            # Watched is a fact about the past: it holds even when a newer write (a rewatch) owns
            # the progress register. The history keeps the latest completion.
            previous = writes.history.get(pair)
            if previous is None or _lww_key(hlc, device) > _lww_key(previous.hlc, previous.device_id):
                writes.history[pair] = candidate
            writes.ops.append(
                NewOperation(
                    user,
                    _derived(mutation.op_id),
                    HISTORY_COMPLETED,
                    mutation.device_id,
                    content,
                    numbers | {"completed_at": now.isoformat()},
                    hlc,
                )
            )
            event_payload = {"content_id": content, "completion": completion} | numbers
            writes.events.append(_activity("content.completed", user, event_payload, now))
        return MutationResult(
            MutationStatus.APPLIED, progress_won=won, progress=registers[pair], completed=completed
        )

    async def _existing_ops(
        self, conn: Executor, keys: Sequence[tuple[UUID, UUID]]
    ) -> set[tuple[UUID, UUID]]:
        if not keys:
            return set()
        rows = await fetch(conn, _EXISTING_OPS, [k[0] for k in keys], [k[1] for k in keys])
        return {(r["user_id"], r["op_id"]) for r in rows}

    async def _load_tags(self, conn: Executor, pairs: Sequence[Pair]) -> dict[Pair, _TagState]:
        states: dict[Pair, _TagState] = {}
        if not pairs:
            return states
        for r in await fetch(conn, _LOAD_TAGS, *_pairs_args(pairs)):
            state = states.setdefault((r["user_id"], r["content_id"]), _TagState())
            if r["removed"]:
                state.dead.add(r["tag"])
            elif r["added"]:
                state.live.add(r["tag"])
        return states

    async def _load_progress(self, conn: Executor, pairs: Sequence[Pair]) -> dict[Pair, ProgressState]:
        if not pairs:
            return {}
        rows = await fetch(conn, _LOAD_PROGRESS, *_pairs_args(pairs))
        return {(r["user_id"], r["content_id"]): _progress_state(r) for r in rows}

    async def _write(self, conn: Executor, writes: _Writes) -> int:
        if writes.tags:
            keys = list(writes.tags)
            cols = list(writes.tags.values())
            await execute(
                conn,
                _WRITE_TAGS,
                [k[0] for k in keys],
                [k[1] for k in keys],
                [k[2] for k in keys],
                [c.get("added_hlc") for c in cols],
                [c.get("added_device_id") for c in cols],
                [c.get("added_at") for c in cols],
                [c.get("removed_hlc") for c in cols],
                [c.get("removed_at") for c in cols],
            )
        for statement, table in ((_WRITE_PROGRESS, writes.progress), (_WRITE_HISTORY, writes.history)):
            if not table:
                continue
            values = list(table.values())
            args: list[list[Any]] = [
                *_pairs_args(list(table)),
                [v.position_seconds for v in values],
                [v.duration_seconds for v in values],
                [v.hlc for v in values],
                [v.device_id for v in values],
                [v.updated_at for v in values],
            ]
            if table is writes.progress:
                args += [[v.state for v in values], [v.completed for v in values]]
            await execute(conn, statement, *args)
        if writes.events:
            await execute(
                conn, _WRITE_OUTBOX, ACTIVITY_TOPIC, [orjson.dumps(e).decode() for e in writes.events]
            )
        return len(writes.tags) + len(writes.progress) + len(writes.history) + len(writes.events)

    async def collect_tombstones(self, older_than: timedelta) -> int:
        """Forget tombstones older than the horizon (with the adds they killed)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                text("DELETE FROM sync.user_watchlists WHERE removed_at < now() - CAST(:age AS interval)"),
                {"age": older_than},
            )
        return int(result.rowcount or 0)

    # -- reads: straight from PostgreSQL, so every replica answers the same ---------------------------

    async def watchlist(self, user_id: UUID) -> WatchlistSnapshot:
        """The visible items and the user's op-log head, from one snapshot."""
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            await conn.execute(text("SET LOCAL TIME ZONE 'UTC'"))
            row = (await conn.execute(_WATCHLIST_JSON, {"u": user_id})).one()
            head = await head_seq(conn, user_id)
            await conn.commit()
        return WatchlistSnapshot(row.items, row.n, head)

    async def progress(self, user_id: UUID, content_id: str | None) -> list[ProgressState]:
        """One title's register (completed or not), or every title in progress, newest first."""
        condition = "content_id = :c" if content_id is not None else "NOT completed"
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    f"""
                    SELECT content_id, position_seconds, duration_seconds, state, completed, hlc, device_id,
                           updated_at
                    FROM sync.user_progress
                    WHERE user_id = :u AND {condition}
                    ORDER BY updated_at DESC, content_id
                    """  # noqa: S608 - the condition is one of two constants
                ),
                {"u": user_id, "c": content_id},
            )
            return [_progress_state(r._mapping) for r in rows]

    async def history(self, user_id: UUID) -> list[HistoryItem]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    """
                    SELECT content_id, position_seconds, duration_seconds, device_id, completed_at
                    FROM sync.user_history
                    WHERE user_id = :u
                    ORDER BY completed_at DESC, content_id
                    """
                ),
                {"u": user_id},
            )
            return [
                HistoryItem(r.content_id, r.position_seconds, r.duration_seconds, r.device_id, r.completed_at)
                for r in rows
            ]

    async def changes(self, user_id: UUID, since_seq: int, limit: int) -> list[SyncOperation]:
        async with self.engine.connect() as conn:
            return await list_operations(conn, user_id, since_seq, limit)


def _derived(op_id: UUID) -> UUID:
    return uuid.uuid5(_DERIVED_NS, str(op_id))


def _activity(event_type: str, user_id: UUID, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An `Event` in its JSON form (the relay validates it when it reads it back)."""
    return {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "key": str(user_id),
        "occurred_at": now.isoformat(),
        "payload": {"user_id": str(user_id)} | payload,
    }


def _progress_state(r: Mapping[Any, Any]) -> ProgressState:
    return ProgressState(
        content_id=r["content_id"],
        position_seconds=r["position_seconds"],
        duration_seconds=r["duration_seconds"],
        state=r["state"],
        completed=r["completed"],
        hlc=r["hlc"],
        device_id=r["device_id"],
        updated_at=r["updated_at"],
    )
