"""SONA's reads of the `catalog` schema (written by ingestion): the whole catalog for the models."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, or_, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from media_gateway.catalog.models import content, offers

# Top-billed names only: the rest of a cast list says little about what a title is like.
CAST_DEPTH = 6


@dataclass(frozen=True, slots=True)
class CatalogRow:
    id: str
    kind: str
    title: str
    year: int | None
    runtime_minutes: int | None
    genres: list[str]
    keywords: list[str]
    cast: list[str]
    directors: list[str]
    popularity: float


async def catalog_rows(conn: AsyncConnection) -> list[CatalogRow]:
    result = await conn.execute(
        select(
            content.c.id,
            content.c.kind,
            content.c.title,
            content.c.year,
            content.c.runtime_minutes,
            content.c.genres,
            content.c.keywords,
            content.c.cast,
            content.c.directors,
            content.c.popularity,
        ).order_by(content.c.id)
    )
    rows = []
    for r in result:
        cast = sorted(r.cast or [], key=lambda c: c.get("order", 0))[:CAST_DEPTH]
        rows.append(
            CatalogRow(
                id=str(r.id),
                kind=r.kind,
                title=r.title,
                year=r.year,
                runtime_minutes=r.runtime_minutes,
                genres=list(r.genres or []),
                keywords=list(r.keywords or []),
                cast=[str(c.get("name")) for c in cast if c.get("name")],
                directors=list(r.directors or []),
                popularity=float(r.popularity or 0.0),
            )
        )
    return rows


async def watchable_offers(conn: AsyncConnection, on: date) -> list[tuple[str, str, str]]:
    """(content id, region, platform) of every offer watchable on `on`."""
    result = await conn.execute(
        select(offers.c.content_id, offers.c.region, offers.c.platform)
        .where(
            and_(
                or_(offers.c.available_since.is_(None), offers.c.available_since <= on),
                or_(offers.c.expires_on.is_(None), offers.c.expires_on >= on),
            )
        )
        .distinct()
    )
    return [(str(c), region, platform) for c, region, platform in result]


async def existing_ids(conn: AsyncConnection, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    if not ids:
        return set()
    result = await conn.execute(select(content.c.id).where(content.c.id.in_(list(set(ids)))))
    return {row.id for row in result}


@dataclass(frozen=True, slots=True)
class SummaryRow:
    id: uuid.UUID
    kind: str
    title: str
    year: int | None
    genres: list[str]
    runtime_minutes: int | None
    rating: float | None
    popularity: float | None
    certifications: dict[str, str]
    poster: str | None
    directors: list[str]


@dataclass(frozen=True, slots=True)
class OfferRow:
    content_id: uuid.UUID
    platform: str
    monetization: str
    quality: str | None
    price: float | None
    currency: str | None
    deep_link: str | None


_CARDS = text(
    """
SELECT c.id, c.kind, c.title, c.year, c.genres, c.runtime_minutes, c.rating, c.popularity,
       c.certifications, c.images ->> 'poster' AS poster, c.directors, o.offers
FROM catalog.content AS c
LEFT JOIN LATERAL (
    SELECT jsonb_agg(
               jsonb_build_object(
                   'platform', platform, 'monetization', monetization, 'quality', quality,
                   'price', price, 'currency', currency, 'deep_link', deep_link_web
               )
               ORDER BY platform, monetization
           ) AS offers
    FROM catalog.offers
    WHERE content_id = c.id
      AND region = :region
      AND (available_since IS NULL OR available_since <= :on)
      AND (expires_on IS NULL OR expires_on >= :on)
) AS o ON true
WHERE c.id = ANY(CAST(:ids AS uuid[]))
"""
).columns(offers=JSONB)


async def cards(
    conn: AsyncConnection, ids: Sequence[uuid.UUID], region: str, on: date
) -> dict[uuid.UUID, tuple[SummaryRow, list[OfferRow]]]:
    """What a recommendation card shows, with the offers watchable in `region` on `on`, in one
    statement (no cast or overview: they are large and not shown)."""
    if not ids:
        return {}
    result = await conn.execute(_CARDS, {"ids": list(ids), "region": region, "on": on})
    out: dict[uuid.UUID, tuple[SummaryRow, list[OfferRow]]] = {}
    for r in result:
        summary = SummaryRow(
            id=r.id,
            kind=r.kind,
            title=r.title,
            year=r.year,
            genres=list(r.genres or []),
            runtime_minutes=r.runtime_minutes,
            rating=r.rating,
            popularity=r.popularity,
            certifications=dict(r.certifications or {}),
            poster=r.poster,
            directors=list(r.directors or []),
        )
        offer_rows = [
            OfferRow(
                content_id=r.id,
                platform=o["platform"],
                monetization=o["monetization"],
                quality=o["quality"],
                price=float(o["price"]) if o["price"] is not None else None,
                currency=o["currency"],
                deep_link=o["deep_link"],
            )
            for o in (r.offers or [])
        ]
        out[r.id] = (summary, offer_rows)
    return out
