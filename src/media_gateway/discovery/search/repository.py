"""Catalog reads for the keyword index: content rows with their currently watchable offers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Row, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from media_gateway.catalog.models import content, offers
from media_gateway.discovery.search.documents import OfferKey

_CONTENT_COLUMNS = (
    content.c.id,
    content.c.kind,
    content.c.title,
    content.c.title_normalized,
    content.c.original_title,
    content.c.year,
    content.c.runtime_minutes,
    content.c.overview,
    content.c.genres,
    content.c.keywords,
    content.c.cast,
    content.c.directors,
    content.c.rating,
    content.c.vote_count,
    content.c.popularity,
    content.c.certifications,
)


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One content entity and its offers, as the keyword index needs them."""

    id: uuid.UUID
    kind: str
    title: str
    original_title: str | None
    year: int | None
    runtime_minutes: int | None
    overview: str | None
    genres: list[str]
    keywords: list[str]
    # Cast first (in billing order), then directors.
    people: list[str]
    rating: float | None
    popularity: float | None
    offers: list[OfferKey]
    title_normalized: str = ""
    vote_count: int | None = None
    certifications: dict[str, str] = field(default_factory=dict)
    # How many of `people` are cast (the rest are directors).
    cast_count: int = 0


def _cast_names(cast: Any) -> list[str]:
    if not isinstance(cast, list):
        return []
    members = [m for m in cast if isinstance(m, dict) and isinstance(m.get("name"), str)]
    members.sort(key=_billing)
    return [str(m["name"]) for m in members]


def _billing(member: dict[str, Any]) -> int:
    order = member.get("order")
    return order if isinstance(order, int) else 1_000_000


def _row(row: Row[*tuple[Any, ...]], row_offers: list[OfferKey]) -> IndexRow:
    cast_names = _cast_names(row.cast)
    return IndexRow(
        id=row.id,
        kind=row.kind,
        title=row.title,
        original_title=row.original_title,
        year=row.year,
        runtime_minutes=row.runtime_minutes,
        overview=row.overview,
        genres=list(row.genres or []),
        keywords=list(row.keywords or []),
        people=[*cast_names, *(row.directors or [])],
        rating=row.rating,
        popularity=row.popularity,
        offers=row_offers,
        title_normalized=row.title_normalized or "",
        vote_count=row.vote_count,
        certifications={str(k).upper(): str(v) for k, v in (row.certifications or {}).items()},
        cast_count=len(cast_names),
    )


def _watchable_on(day: date) -> Any:
    """Offers running on `day`: from `available_since` through `expires_on`, both inclusive."""
    return and_(
        or_(offers.c.available_since.is_(None), offers.c.available_since <= day),
        or_(offers.c.expires_on.is_(None), offers.c.expires_on >= day),
    )


async def _offers_of(
    conn: AsyncConnection, ids: Sequence[uuid.UUID], day: date
) -> dict[uuid.UUID, list[OfferKey]]:
    found: dict[uuid.UUID, list[OfferKey]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = await conn.execute(
        select(offers.c.content_id, offers.c.platform, offers.c.region, offers.c.monetization).where(
            offers.c.content_id.in_(list(ids)), _watchable_on(day)
        )
    )
    for content_id, platform, region, monetization in rows:
        found[content_id].append(OfferKey(platform, region, monetization))
    return found


async def index_rows_page(
    conn: AsyncConnection, after: uuid.UUID | None, limit: int, day: date
) -> list[IndexRow]:
    """Up to `limit` entities with ids above `after`, in id order: keyset pages that stay cheap
    however deep, and see each entity once even while ingestion writes."""
    query = select(*_CONTENT_COLUMNS).order_by(content.c.id).limit(limit)
    if after is not None:
        query = query.where(content.c.id > after)
    rows = (await conn.execute(query)).all()
    by_id = await _offers_of(conn, [r.id for r in rows], day)
    return [_row(r, by_id[r.id]) for r in rows]


async def index_rows(conn: AsyncConnection, ids: Sequence[uuid.UUID], day: date) -> list[IndexRow]:
    """The entities of `ids` that exist; the missing ones were deleted."""
    if not ids:
        return []
    rows = (await conn.execute(select(*_CONTENT_COLUMNS).where(content.c.id.in_(list(ids))))).all()
    by_id = await _offers_of(conn, [r.id for r in rows], day)
    return [_row(r, by_id[r.id]) for r in rows]
