"""The catalog reads of discovery and SONA: titles by id, offers by region and day, counts, trending, feeds.

Every date is passed in by the caller rather than taken from the database clock, so a paginated feed can
pin "today" in its cursor and stay consistent across midnight."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, String, and_, func, literal, literal_column, or_, select, true, tuple_
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from media_gateway.catalog.models import content, entity_mappings, offers
from media_gateway.catalog.repository.rows import content_from_row, offer_from_row
from media_gateway.catalog.schemas import Content, Offer


def _available_on(day: date) -> ColumnElement[bool]:
    """An offer is watchable on `day` from its first day through its `expires_on` day inclusive."""
    return and_(
        or_(offers.c.available_since.is_(None), offers.c.available_since <= day),
        or_(offers.c.expires_on.is_(None), offers.c.expires_on >= day),
    )


async def list_content(conn: AsyncConnection, ids: Sequence[uuid.UUID]) -> list[Content]:
    """The entities of `ids` (without offers or external ids), in the order of `ids`; missing ones skipped."""
    if not ids:
        return []
    rows = (await conn.execute(select(content).where(content.c.id.in_(list(ids))))).all()
    by_id = {row.id: content_from_row(row) for row in rows}
    return [by_id[i] for i in ids if i in by_id]


async def region_offers(
    conn: AsyncConnection, ids: Sequence[uuid.UUID], region: str, on: date
) -> dict[uuid.UUID, list[Offer]]:
    """Offers of each entity of `ids` that are watchable in `region` on `on`."""
    found: dict[uuid.UUID, list[Offer]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = await conn.execute(
        select(offers)
        .where(offers.c.content_id.in_(list(ids)), offers.c.region == region, _available_on(on))
        .order_by(offers.c.content_id, offers.c.platform, offers.c.monetization)
    )
    for row in rows:
        found[row.content_id].append(offer_from_row(row))
    return found


async def genre_title_counts(conn: AsyncConnection) -> dict[str, int]:
    genre = func.unnest(content.c.genres).table_valued("name").alias("genre")
    rows = await conn.execute(
        select(genre.c.name, func.count(func.distinct(content.c.id)))
        .select_from(content.join(genre, true()))
        .group_by(genre.c.name)
    )
    return {name: int(n) for name, n in rows}


@dataclass(frozen=True)
class PlatformTitles:
    platform: str
    titles: int
    regions: tuple[str, ...]
    monetizations: tuple[str, ...]


async def platform_title_counts(
    conn: AsyncConnection, on: date, region: str | None = None
) -> list[PlatformTitles]:
    """Per platform, how many titles are watchable on `on` (in `region` if given), most titles first."""
    query = select(
        offers.c.platform,
        func.count(func.distinct(offers.c.content_id)).label("titles"),
        func.array_agg(func.distinct(offers.c.region)).label("regions"),
        func.array_agg(func.distinct(offers.c.monetization)).label("monetizations"),
    ).where(_available_on(on))
    if region is not None:
        query = query.where(offers.c.region == region)
    rows = await conn.execute(
        query.group_by(offers.c.platform).order_by(literal_column("titles").desc(), offers.c.platform)
    )
    return [
        PlatformTitles(r.platform, int(r.titles), tuple(sorted(r.regions)), tuple(sorted(r.monetizations)))
        for r in rows
    ]


async def platform_has_offers(conn: AsyncConnection, platform: str) -> bool:
    found = await conn.execute(select(offers.c.platform).where(offers.c.platform == platform).limit(1))
    return found.first() is not None


async def trending_content(
    conn: AsyncConnection, region: str, on: date, limit: int, platform: str | None = None
) -> list[Content]:
    """The most popular titles with an offer watchable in `region` (on `platform`) on `on`."""
    offered = select(offers.c.content_id).where(
        offers.c.content_id == content.c.id, offers.c.region == region, _available_on(on)
    )
    if platform is not None:
        offered = offered.where(offers.c.platform == platform)
    rows = await conn.execute(
        select(content)
        .where(offered.exists())
        .order_by(content.c.popularity.desc().nulls_last(), content.c.id)
        .limit(limit)
    )
    return [content_from_row(row) for row in rows]


@dataclass(frozen=True)
class OfferChange:
    """A title arriving on or leaving a platform: the `day` of its latest arrival or earliest exit."""

    day: date
    content_id: uuid.UUID
    platform: str


async def offer_changes(
    conn: AsyncConnection,
    *,
    leaving: bool,
    region: str,
    start: date,
    end: date,
    on: date,
    limit: int,
    platform: str | None = None,
    after: OfferChange | None = None,
) -> list[OfferChange]:
    """One entry per (title, platform) with a watchable offer whose window edge lies in [start, end].

    Arrivals come newest first, departures soonest first; `after` is the last entry of the previous
    page (keyset pagination, so pages neither skip nor repeat while the catalog changes)."""
    edge = offers.c.expires_on if leaving else offers.c.available_since
    conditions = [offers.c.region == region, edge >= start, edge <= end, _available_on(on)]
    if platform is not None:
        conditions.append(offers.c.platform == platform)
    grouped = (
        select(
            (func.min(edge) if leaving else func.max(edge)).label("day"),
            offers.c.content_id,
            offers.c.platform,
        )
        .where(*conditions)
        .group_by(offers.c.content_id, offers.c.platform)
        .subquery()
    )
    query = select(grouped.c.day, grouped.c.content_id, grouped.c.platform)
    if after is not None:
        beyond = grouped.c.day > after.day if leaving else grouped.c.day < after.day
        query = query.where(
            or_(
                beyond,
                and_(
                    grouped.c.day == after.day,
                    tuple_(grouped.c.content_id, grouped.c.platform)
                    > tuple_(
                        literal(after.content_id, UUID(as_uuid=True)), literal(after.platform, String())
                    ),
                ),
            )
        )
    rows = await conn.execute(
        query.order_by(
            grouped.c.day.asc() if leaving else grouped.c.day.desc(),
            grouped.c.content_id,
            grouped.c.platform,
        ).limit(limit)
    )
    return [OfferChange(r.day, r.content_id, r.platform) for r in rows]


async def count_content(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(content))).scalar_one())


async def count_offers(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(offers))).scalar_one())


async def offers_by_platform(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(
        select(offers.c.platform, func.count(func.distinct(offers.c.content_id))).group_by(offers.c.platform)
    )
    return {platform: int(n) for platform, n in rows}


async def get_content(conn: AsyncConnection, entity_id: uuid.UUID) -> Content | None:
    row = (await conn.execute(select(content).where(content.c.id == entity_id))).one_or_none()
    if row is None:
        return None
    ids = (
        await conn.execute(
            select(entity_mappings.c.id_type, entity_mappings.c.external_id)
            .where(entity_mappings.c.entity_id == entity_id)
            .order_by(entity_mappings.c.id_type, entity_mappings.c.external_id)
        )
    ).all()
    offer_rows = (
        await conn.execute(
            select(offers)
            .where(offers.c.content_id == entity_id)
            .order_by(offers.c.region, offers.c.platform, offers.c.monetization)
        )
    ).all()
    return content_from_row(row, ids, offer_rows)
