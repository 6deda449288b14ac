"""The interaction log and its per-title aggregates."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from media_gateway.sona.signals import InteractionRow, UserItem
from media_gateway.sona.tables import interactions, user_items

# One statement: log the new events (a replayed event id is skipped) and fold exactly the rows that
# were new into the aggregates. Every merge is commutative, so events may arrive in any order.
_RECORD = text(
    """
WITH incoming AS (
    SELECT DISTINCT ON (user_id, event_id) *
    FROM unnest(
        CAST(:user_ids AS uuid[]), CAST(:event_ids AS uuid[]), CAST(:content_ids AS uuid[]),
        CAST(:kinds AS text[]), CAST(:vals AS float8[]), CAST(:sources AS text[]),
        CAST(:occurred AS timestamptz[])
    ) AS t(user_id, event_id, content_id, kind, value, source, occurred_at)
),
inserted AS (
    INSERT INTO sona.interactions (user_id, event_id, content_id, kind, value, source, occurred_at)
    SELECT user_id, event_id, content_id, kind, value, source, occurred_at FROM incoming
    ON CONFLICT (user_id, event_id) DO NOTHING
    RETURNING user_id, content_id, kind, value, occurred_at
),
merged AS (
    SELECT
        user_id,
        content_id,
        bool_or(kind IN ('started', 'progress', 'completed')) AS started,
        coalesce(max(value) FILTER (WHERE kind IN ('progress', 'completed')), 0) AS completion,
        bool_or(kind = 'completed') AS completed,
        (array_agg(value ORDER BY occurred_at DESC) FILTER (WHERE kind = 'rated'))[1] AS rating,
        max(occurred_at) FILTER (WHERE kind = 'rated') AS rated_at,
        bool_or(kind = 'dismissed') AS dismissed,
        (array_agg(kind = 'watchlist_added' ORDER BY occurred_at DESC)
            FILTER (WHERE kind IN ('watchlist_added', 'watchlist_removed')))[1] AS in_watchlist,
        max(occurred_at) FILTER (WHERE kind IN ('watchlist_added', 'watchlist_removed')) AS watchlist_at,
        count(*) AS events,
        min(occurred_at) AS first_at,
        max(occurred_at) AS last_at
    FROM inserted
    GROUP BY user_id, content_id
),
upserted AS (
    INSERT INTO sona.user_items AS u (
        user_id, content_id, started, completion, completed, rating, rated_at, dismissed,
        in_watchlist, watchlist_at, events, first_at, last_at
    )
    SELECT
        user_id, content_id, started, completion, completed, CAST(rating AS smallint), rated_at, dismissed,
        coalesce(in_watchlist, false), watchlist_at, events, first_at, last_at
    FROM merged
    ON CONFLICT (user_id, content_id) DO UPDATE SET
        started = u.started OR excluded.started,
        completion = greatest(u.completion, excluded.completion),
        completed = u.completed OR excluded.completed,
        rating = CASE WHEN excluded.rated_at IS NOT NULL
                       AND (u.rated_at IS NULL OR excluded.rated_at >= u.rated_at)
                      THEN excluded.rating ELSE u.rating END,
        rated_at = greatest(u.rated_at, excluded.rated_at),
        dismissed = u.dismissed OR excluded.dismissed,
        in_watchlist = CASE WHEN excluded.watchlist_at IS NOT NULL
                             AND (u.watchlist_at IS NULL OR excluded.watchlist_at >= u.watchlist_at)
                            THEN excluded.in_watchlist ELSE u.in_watchlist END,
        watchlist_at = greatest(u.watchlist_at, excluded.watchlist_at),
        events = u.events + excluded.events,
        first_at = least(u.first_at, excluded.first_at),
        last_at = greatest(u.last_at, excluded.last_at)
    RETURNING 1
)
SELECT user_id FROM inserted
"""
)


async def record_interactions(conn: AsyncConnection, rows: Sequence[InteractionRow]) -> list[uuid.UUID]:
    """Log `rows`; returns the user of each row that was new (a replayed event id is not)."""
    if not rows:
        return []
    result = await conn.execute(
        _RECORD,
        {
            "user_ids": [r.user_id for r in rows],
            "event_ids": [r.event_id for r in rows],
            "content_ids": [r.content_id for r in rows],
            "kinds": [r.kind for r in rows],
            "vals": [r.value for r in rows],
            "sources": [r.source for r in rows],
            "occurred": [r.occurred_at for r in rows],
        },
    )
    return [row.user_id for row in result]


def _user_item(row: object) -> UserItem:
    m = row._mapping  # type: ignore[attr-defined]
    return UserItem(
        content_id=str(m["content_id"]),
        started=m["started"],
        completion=float(m["completion"]),
        completed=m["completed"],
        rating=m["rating"],
        dismissed=m["dismissed"],
        in_watchlist=m["in_watchlist"],
        events=int(m["events"]),
        last_at=m["last_at"],
    )


_ITEM_COLUMNS = (
    user_items.c.content_id,
    user_items.c.started,
    user_items.c.completion,
    user_items.c.completed,
    user_items.c.rating,
    user_items.c.dismissed,
    user_items.c.in_watchlist,
    user_items.c.events,
    user_items.c.last_at,
)


async def user_items_of(conn: AsyncConnection, user_id: uuid.UUID) -> list[UserItem]:
    rows = await conn.execute(select(*_ITEM_COLUMNS).where(user_items.c.user_id == user_id))
    return [_user_item(row) for row in rows]


@dataclass(frozen=True, slots=True)
class AllItems:
    """Every user's aggregates, column-wise (for training)."""

    user_ids: list[str]
    items: list[UserItem]


async def all_user_items(conn: AsyncConnection) -> AllItems:
    rows = await conn.execute(select(user_items.c.user_id, *_ITEM_COLUMNS))
    users: list[str] = []
    items: list[UserItem] = []
    for row in rows:
        users.append(str(row.user_id))
        items.append(_user_item(row))
    return AllItems(users, items)


async def interaction_counts(conn: AsyncConnection, user_id: uuid.UUID) -> dict[str, int]:
    rows = await conn.execute(
        select(interactions.c.kind, func.count())
        .where(interactions.c.user_id == user_id)
        .group_by(interactions.c.kind)
    )
    return {kind: int(n) for kind, n in rows}


async def latest_interaction_id(conn: AsyncConnection) -> int:
    value = (await conn.execute(select(func.max(interactions.c.id)))).scalar_one()
    return int(value or 0)


async def events_since(conn: AsyncConnection, watermark: int) -> int:
    value = (
        await conn.execute(
            select(func.count()).select_from(interactions).where(interactions.c.id > watermark)
        )
    ).scalar_one()
    return int(value)


async def users_with_events_after(
    conn: AsyncConnection, watermarks: dict[str, int], default: int
) -> dict[str, int]:
    """Users whose newest event is past their watermark (or `default` for users without one), with
    that newest event id."""
    rows = await conn.execute(
        select(interactions.c.user_id, func.max(interactions.c.id)).group_by(interactions.c.user_id)
    )
    out: dict[str, int] = {}
    for user_id, newest in rows:
        key = str(user_id)
        if int(newest) > watermarks.get(key, default):
            out[key] = int(newest)
    return out
