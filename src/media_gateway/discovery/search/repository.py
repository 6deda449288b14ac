"""Catalog reads for the keyword index: content rows with their offers, as filters and result cards
need them."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple, TypeVar, cast

from sqlalchemy import Row, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from media_gateway.catalog.models import content, offers
from media_gateway.catalog.schemas import Monetization
from media_gateway.discovery.search.documents import CardOffer, OfferKey

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
    content.c.images["poster"].astext.label("poster"),
    content.c.is_original,
)
_OFFER_COLUMNS = (
    offers.c.content_id,
    offers.c.platform,
    offers.c.region,
    offers.c.monetization,
    offers.c.tier,
    offers.c.price,
    offers.c.currency,
    offers.c.quality,
    offers.c.deep_link_app,
    offers.c.deep_link_web,
    offers.c.deep_link_tv,
    offers.c.available_since,
    offers.c.expires_on,
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
    # Offers watchable on the day the row was read: what filters and facets count.
    offers: list[OfferKey]
    title_normalized: str = ""
    vote_count: int | None = None
    certifications: dict[str, str] = field(default_factory=dict)
    # How many of `people` are cast (the rest are directors).
    cast_count: int = 0
    poster: str | None = None
    is_original: bool = False
    # Every offer not expired on that day, later ones included: what result cards show, on any day.
    card_offers: list[CardOffer] = field(default_factory=list)


_Value = TypeVar("_Value", str, float, date)


class _Offers(NamedTuple):
    watchable: list[OfferKey]
    cards: list[CardOffer]


def _cast_names(cast: Any) -> list[str]:
    if not isinstance(cast, list):
        return []
    members = [m for m in cast if isinstance(m, dict) and isinstance(m.get("name"), str)]
    members.sort(key=_billing)
    return [str(m["name"]) for m in members]


def _billing(member: dict[str, Any]) -> int:
    order = member.get("order")
    return order if isinstance(order, int) else 1_000_000


def _row(row: Row[*tuple[Any, ...]], row_offers: _Offers) -> IndexRow:
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
        offers=row_offers.watchable,
        title_normalized=row.title_normalized or "",
        vote_count=row.vote_count,
        # Age ratings are the same few strings over and over.
        certifications={
            sys.intern(str(k).upper()): sys.intern(str(v)) for k, v in (row.certifications or {}).items()
        },
        cast_count=len(cast_names),
        poster=row.poster,
        is_original=bool(row.is_original),
        card_offers=row_offers.cards,
    )


def _not_expired_on(day: date) -> Any:
    """Offers watchable on `day` or later: `expires_on` is their last day."""
    return or_(offers.c.expires_on.is_(None), offers.c.expires_on >= day)


async def _offers_of(conn: AsyncConnection, ids: Sequence[uuid.UUID], day: date) -> dict[uuid.UUID, _Offers]:
    found = {i: _Offers([], []) for i in ids}
    if not ids:
        return found
    rows = await conn.execute(
        select(*_OFFER_COLUMNS).where(offers.c.content_id.in_(list(ids)), _not_expired_on(day))
    )
    # The index keeps every offer of the catalog in memory: one object per distinct code, price, link
    # (a title's offers on one platform share theirs) and date in a page, rather than one per row.
    shared: dict[Any, Any] = {}

    def share(value: _Value) -> _Value:
        return cast(_Value, shared.setdefault(value, value))

    for row in rows:
        platform, region, monetization = share(row.platform), share(row.region), share(row.monetization)
        since = None if row.available_since is None else share(row.available_since)
        offer = CardOffer(
            platform=platform,
            region=region,
            monetization=Monetization(monetization),
            tier=None if row.tier is None else share(row.tier),
            price=None if row.price is None else share(float(row.price)),
            currency=None if row.currency is None else share(row.currency),
            quality=None if row.quality is None else share(row.quality),
            deep_link_app=None if row.deep_link_app is None else share(row.deep_link_app),
            deep_link_web=None if row.deep_link_web is None else share(row.deep_link_web),
            deep_link_tv=None if row.deep_link_tv is None else share(row.deep_link_tv),
            available_since=since,
            expires_on=None if row.expires_on is None else share(row.expires_on),
        )
        entry = found[row.content_id]
        entry.cards.append(offer)
        if since is None or since <= day:
            entry.watchable.append(OfferKey(platform, region, monetization))
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
