"""The catalog read API's logic: shaping repository reads, validating filters, paging the change feeds."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from media_gateway.catalog import repository as catalog
from media_gateway.catalog.genres import CANONICAL_GENRES
from media_gateway.catalog.schemas import MONETIZATION_ORDER, PLATFORMS, Content, Monetization
from media_gateway.core.errors import ProblemError
from media_gateway.discovery.schemas import (
    Availability,
    ChangeFeed,
    ChangeItem,
    ChangeType,
    ContentDetails,
    ContentSummary,
    GenreCount,
    GenreList,
    OfferGroup,
    PlatformCount,
    PlatformList,
    Trending,
    sorted_offers,
)

PLATFORM_NAMES: dict[str, str] = {
    "netflix": "Netflix",
    "prime_video": "Prime Video",
    "disney_plus": "Disney+",
    "hbo_max": "HBO Max",
    "hulu": "Hulu",
    "apple_tv_plus": "Apple TV+",
    "paramount_plus": "Paramount+",
    "peacock": "Peacock",
    "youtube": "YouTube",
    "tubi": "Tubi",
}
VALIDATION_PROBLEM = "https://media-gateway.dev/problems/validation"


def platform_name(platform: str) -> str:
    # Platforms arrive through the generic normalizer under any name; a readable fallback beats the id.
    return PLATFORM_NAMES.get(platform) or platform.replace("_", " ").title()


def invalid_query(param: str, message: str) -> ProblemError:
    """The same problem shape FastAPI's own query validation produces, for checks it cannot make."""
    return ProblemError(
        422,
        "The request is not valid.",
        title="Validation failed",
        type_=VALIDATION_PROBLEM,
        extra={"errors": [{"loc": ["query", param], "msg": message, "type": "value_error"}]},
    )


def today() -> date:
    return datetime.now(UTC).date()


class _CursorBody(BaseModel):
    """What a change-feed cursor carries: the query it belongs to, its pinned day and the last entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    t: ChangeType
    r: str
    p: str | None
    d: int
    a: date
    k: tuple[date, uuid.UUID, str]


def encode_cursor(body: _CursorBody) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(body.model_dump(mode="json"))).rstrip(b"=").decode()


def decode_cursor(token: str) -> _CursorBody:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return _CursorBody.model_validate_json(raw)
    except (binascii.Error, ValueError, ValidationError) as exc:
        raise invalid_query("cursor", "Not a cursor this feed issued.") from exc


class CatalogService:
    def __init__(self, engine: AsyncEngine, default_region: str) -> None:
        self._engine = engine
        self._default_region = default_region

    def region(self, region: str | None) -> str:
        return (region or self._default_region).upper()

    async def _check_platform(self, conn: AsyncConnection, platform: str | None) -> None:
        if platform is None or platform in PLATFORMS:
            return
        if not await catalog.platform_has_offers(conn, platform):
            raise invalid_query("platform", f"Unknown platform {platform!r}.")

    async def _summaries(
        self, conn: AsyncConnection, items: list[Content], region: str, on: date
    ) -> list[ContentSummary]:
        offers = await catalog.region_offers(conn, [c.id for c in items], region, on)
        return [ContentSummary.from_catalog(c, region, offers[c.id]) for c in items]

    async def details(self, content_id: uuid.UUID) -> ContentDetails:
        async with self._engine.connect() as conn:
            item = await catalog.get_content(conn, content_id)
        if item is None:
            raise ProblemError(404, f"No content {content_id}.")
        return ContentDetails.from_catalog(item)

    async def availability(self, content_id: uuid.UUID, region: str | None) -> Availability:
        where, on = self.region(region), today()
        async with self._engine.connect() as conn:
            found = await catalog.list_content(conn, [content_id])
            if not found:
                raise ProblemError(404, f"No content {content_id}.")
            item = found[0]
            offers = (await catalog.region_offers(conn, [content_id], where, on))[content_id]
        groups = [
            OfferGroup(monetization=kind, offers=sorted_offers(o for o in offers if o.monetization is kind))
            for kind in MONETIZATION_ORDER
            if any(o.monetization is kind for o in offers)
        ]
        return Availability(
            content_id=content_id, title=item.title, region=where, as_of=on, total=len(offers), groups=groups
        )

    async def genres(self) -> GenreList:
        async with self._engine.connect() as conn:
            counts = await catalog.genre_title_counts(conn)
        return GenreList(genres=[GenreCount(name=g, title_count=counts.get(g, 0)) for g in CANONICAL_GENRES])

    async def platforms(self, region: str | None) -> PlatformList:
        where, on = (region.upper() if region else None), today()
        async with self._engine.connect() as conn:
            rows = await catalog.platform_title_counts(conn, on, where)
        return PlatformList(
            region=where,
            as_of=on,
            platforms=[
                PlatformCount(
                    id=r.platform,
                    name=platform_name(r.platform),
                    title_count=r.titles,
                    regions=list(r.regions),
                    monetizations=sorted(
                        (Monetization(m) for m in r.monetizations), key=MONETIZATION_ORDER.index
                    ),
                )
                for r in rows
            ],
        )

    async def trending(self, region: str | None, platform: str | None, limit: int) -> Trending:
        where, on = self.region(region), today()
        async with self._engine.connect() as conn:
            await self._check_platform(conn, platform)
            items = await catalog.trending_content(conn, where, on, limit, platform)
            summaries = await self._summaries(conn, items, where, on)
        return Trending(region=where, platform=platform, as_of=on, items=summaries)

    async def changes(
        self,
        kind: ChangeType,
        region: str | None,
        platform: str | None,
        days: int,
        limit: int,
        cursor: str | None,
    ) -> ChangeFeed:
        where = self.region(region)
        previous = decode_cursor(cursor) if cursor else None
        if previous is not None and (previous.t, previous.r, previous.p, previous.d) != (
            kind,
            where,
            platform,
            days,
        ):
            raise invalid_query("cursor", "The cursor belongs to a different query.")
        # A cursor keeps the day its first page was computed on, so crossing midnight mid-way through
        # the pages neither skips nor repeats entries.
        on = previous.a if previous else today()
        leaving = kind is ChangeType.LEAVING
        start, end = (on, on + timedelta(days=days)) if leaving else (on - timedelta(days=days), on)
        async with self._engine.connect() as conn:
            await self._check_platform(conn, platform)
            changes = await catalog.offer_changes(
                conn,
                leaving=leaving,
                region=where,
                start=start,
                end=end,
                on=on,
                limit=limit + 1,
                platform=platform,
                after=catalog.OfferChange(*previous.k) if previous else None,
            )
            page = changes[:limit]
            items = await catalog.list_content(conn, list(dict.fromkeys(c.content_id for c in page)))
            summaries = {s.id: s for s in await self._summaries(conn, items, where, on)}

        def in_window(day: date | None) -> bool:
            return day is not None and start <= day <= end

        feed_items = []
        for change in page:
            summary = summaries.get(change.content_id)
            if summary is None:  # deleted between the two reads
                continue
            offers = [
                o
                for o in summary.offers
                if o.platform == change.platform and in_window(o.expires_on if leaving else o.available_since)
            ]
            feed_items.append(
                ChangeItem(date=change.day, platform=change.platform, offers=offers, content=summary)
            )
        next_cursor = None
        if len(changes) > limit:
            last = page[-1]
            next_cursor = encode_cursor(
                _CursorBody(
                    t=kind, r=where, p=platform, d=days, a=on, k=(last.day, last.content_id, last.platform)
                )
            )
        return ChangeFeed(
            type=kind,
            region=where,
            platform=platform,
            days=days,
            as_of=on,
            window_start=start,
            window_end=end,
            items=feed_items,
            next_cursor=next_cursor,
        )
