"""The operation log: every change to a user's sync state, for delta sync (`/sync/changes`), offline
replay (`/sync/batch`, idempotent on `(user_id, op_id)`) and the live push.

Ordering: `append_operations` first takes a per-user transaction-scoped advisory lock, so the
operations of one user get their `seq` in commit order. A reader that has seen `seq = n` of a user
can therefore never later find a committed operation of that user with a smaller `seq`, which is what
makes `since=<cursor>` lossless. (Across users, `seq` is only unique, not in commit order.)

Cursors are opaque strings for clients; today `encode_cursor(seq)` is the decimal `seq` (`"0"` means
"from the beginning"). `decode_cursor` raises `ValueError` on anything else.

Kinds and payloads:
- `watchlist.add`: `{"tag": <uuid>}`; the tag is the add's op id.
- `watchlist.remove`: `{"tags": [<uuid>, ...]}`, the add tags the remover had observed.
- `progress.set`: `{"position_seconds", "duration_seconds", "state", "completion", "completed"}`.
- `history.completed`: `{"position_seconds", "duration_seconds", "completed_at"}`, derived by the
  server from a `progress.set` at or above the completion threshold (same device and hlc).
- devices and commands (written by the device module): `device.registered`, `device.updated`,
  `device.removed`, `command.issued`, `command.acknowledged`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
import redis.asyncio as aioredis

from media_gateway.core.redis import redis_key
from media_gateway.core.settings import Settings
from media_gateway.sync.sql import Executor, fetch

WATCHLIST_ADD = "watchlist.add"
WATCHLIST_REMOVE = "watchlist.remove"
PROGRESS_SET = "progress.set"
HISTORY_COMPLETED = "history.completed"

_MAX_SEQ = 2**63 - 1
_CURSOR = re.compile(r"[0-9]{1,19}")


@dataclass(frozen=True)
class NewOperation:
    user_id: UUID
    op_id: UUID
    kind: str
    device_id: str | None
    content_id: str | None
    payload: dict[str, Any]
    hlc: str


@dataclass(frozen=True)
class SyncOperation(NewOperation):
    seq: int
    created_at: datetime
    # The seq of this user's operation just before this one (0: none), known when it is appended
    # under the user's lock. The live push sends it so a socket can tell a gap from the next op.
    prev_seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "op_id": str(self.op_id),
            "kind": self.kind,
            "device_id": self.device_id,
            "content_id": self.content_id,
            "payload": self.payload,
            "hlc": self.hlc,
            "created_at": self.created_at.isoformat(),
        }


def encode_cursor(seq: int) -> str:
    return str(seq)


def decode_cursor(cursor: str) -> int:
    if not _CURSOR.fullmatch(cursor):
        raise ValueError("malformed cursor")
    seq = int(cursor)
    if seq > _MAX_SEQ:
        raise ValueError("malformed cursor")
    return seq


_LOCK_USERS = """
    SELECT pg_advisory_xact_lock(k)
    FROM (
        SELECT DISTINCT hashtextextended('mg-sync-user:' || u::text, 0) AS k
        FROM unnest($1::uuid[]) AS u
        ORDER BY k
    ) AS keys
"""


async def lock_users(conn: Executor, user_ids: Iterable[UUID]) -> None:
    """Serialize writers of these users until the transaction ends (re-entrant, sorted against
    deadlocks). `append_operations` calls it; call it earlier to also cover reads of user state."""
    users = sorted(set(user_ids))
    if users:
        await fetch(conn, _LOCK_USERS, users)


_INSERT = """
    INSERT INTO sync.operations (user_id, op_id, device_id, kind, content_id, payload, hlc)
    SELECT u, o, d, k, c, p::jsonb, h
    FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
        WITH ORDINALITY AS t(u, o, d, k, c, p, h, n)
    ORDER BY n
    ON CONFLICT (user_id, op_id) DO NOTHING
    RETURNING seq, user_id, op_id, created_at
"""


_HEADS = """
    SELECT u AS user_id, COALESCE((SELECT max(seq) FROM sync.operations WHERE user_id = u), 0) AS head
    FROM unnest($1::uuid[]) AS u
"""


async def append_operations(
    conn: Executor, ops: Sequence[NewOperation], *, lock: bool = True
) -> list[SyncOperation]:
    """Append inside the caller's transaction; returns only the operations that were new, in order.
    (`lock=False` only if the caller already holds `lock_users` for every user of `ops`.)

    Publish the result with `publish_committed` after the commit."""
    if not ops:
        return []
    if lock:
        await lock_users(conn, (op.user_id for op in ops))
    # Under the users' locks nobody else appends for them until we commit: these heads stay true.
    heads = {r["user_id"]: r["head"] for r in await fetch(conn, _HEADS, list({op.user_id for op in ops}))}
    rows = await fetch(
        conn,
        _INSERT,
        [op.user_id for op in ops],
        [op.op_id for op in ops],
        [op.device_id for op in ops],
        [op.kind for op in ops],
        [op.content_id for op in ops],
        [orjson.dumps(op.payload).decode() for op in ops],
        [op.hlc for op in ops],
    )
    inserted = {(r["user_id"], r["op_id"]): (r["seq"], r["created_at"]) for r in rows}
    result: list[SyncOperation] = []
    for op in ops:
        stamp = inserted.pop((op.user_id, op.op_id), None)
        if stamp is not None:
            result.append(
                SyncOperation(
                    user_id=op.user_id,
                    op_id=op.op_id,
                    kind=op.kind,
                    device_id=op.device_id,
                    content_id=op.content_id,
                    payload=op.payload,
                    hlc=op.hlc,
                    seq=stamp[0],
                    created_at=stamp[1],
                )
            )
    result.sort(key=lambda o: o.seq)
    chained = []
    for op in result:
        chained.append(dataclasses.replace(op, prev_seq=heads[op.user_id]))
        heads[op.user_id] = op.seq
    return chained


async def list_operations(conn: Executor, user_id: UUID, since_seq: int, limit: int) -> list[SyncOperation]:
    rows = await fetch(
        conn,
        """
        SELECT seq, op_id, device_id, kind, content_id, payload::text AS payload, hlc, created_at
        FROM sync.operations
        WHERE user_id = $1 AND seq > $2
        ORDER BY seq
        LIMIT $3
        """,
        user_id,
        since_seq,
        limit,
    )
    return [
        SyncOperation(
            user_id=user_id,
            op_id=r["op_id"],
            kind=r["kind"],
            device_id=r["device_id"],
            content_id=r["content_id"],
            payload=orjson.loads(r["payload"]),
            hlc=r["hlc"],
            seq=r["seq"],
            created_at=r["created_at"],
        )
        for r in rows
    ]


async def head_seq(conn: Executor, user_id: UUID) -> int:
    """The user's latest seq (0 if none): the cursor of a snapshot read in the same transaction."""
    rows = await fetch(
        conn, "SELECT COALESCE(max(seq), 0) AS head FROM sync.operations WHERE user_id = $1", user_id
    )
    return int(rows[0]["head"])


def live_channel(settings: Settings, user_id: UUID) -> str:
    return redis_key(settings, "sync", "live", str(user_id))


async def publish_committed(redis: aioredis.Redis, settings: Settings, ops: Sequence[SyncOperation]) -> None:
    """Best-effort push of committed operations to their users' live channels; a subscriber that
    missed one catches up from the log with its cursor."""
    if not ops:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for op in ops:
            message = op.to_json() | {"prev_seq": op.prev_seq}
            pipe.publish(live_channel(settings, op.user_id), orjson.dumps(message))
        await pipe.execute()
