"""The tools' logic: one or a few gateway calls each, shaped into short answers for an assistant."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Final

from media_gateway.mcp.clients import (
    CardIn,
    ContentOut,
    GatewayClient,
    GatewayError,
    OfferIn,
    PickIn,
)
from media_gateway.mcp.schemas import (
    ContinueWatching,
    InProgressTitle,
    Recommendations,
    RecommendedTitle,
    ResumeLink,
    SearchResults,
    SimilarTitles,
    TitleCard,
    TitleDetails,
    Watchlist,
    WatchlistChange,
    WatchlistEntry,
    WhereToWatch,
)

# A card names the cheapest few ways to watch; get_title lists them all.
OFFERS_PER_CARD: Final = 4
TOP_CAST: Final = 6
OVERVIEW_CHARS: Final = 700
# The watchlist answer names each title, one catalog read apiece: bounded in size and in parallelism.
WATCHLIST_TITLES: Final = 100
TITLE_LOOKUPS_AT_ONCE: Final = 8


class McpService:
    def __init__(self, gateway: GatewayClient) -> None:
        self.gateway = gateway

    async def search(
        self,
        token: str | None,
        query: str,
        region: str | None,
        platforms: list[str],
        genres: list[str],
        max_results: int,
    ) -> SearchResults:
        filters: dict[str, Any] = {}
        if platforms:
            filters["platforms"] = platforms
        if genres:
            filters["genres"] = genres
        body: dict[str, Any] = {"query": query, "page_size": max_results, "filters": filters}
        if region:
            body["region"] = region
        found = await self.gateway.search(token, body)
        return SearchResults(
            query=found.query,
            region=found.region,
            total=found.total,
            personalized=found.personalized,
            results=[_card(card) for card in found.results],
        )

    async def title(self, token: str | None, content_id: str, region: str | None) -> TitleDetails:
        content, availability = await asyncio.gather(
            self.gateway.content(token, content_id),
            self.gateway.availability(token, content_id, region),
            return_exceptions=True,
        )
        # The details' error first: an unknown id is a 404 there, which says the most.
        if isinstance(content, BaseException):
            raise content
        if isinstance(availability, BaseException):
            raise availability
        offers = [offer for group in availability.groups for offer in group.offers]
        overview = content.overview
        if overview and len(overview) > OVERVIEW_CHARS:
            overview = overview[: OVERVIEW_CHARS - 1].rstrip() + "…"
        return TitleDetails(
            content_id=content.id,
            title=content.title,
            original_title=content.original_title if content.original_title != content.title else None,
            year=content.year,
            kind=content.kind,
            genres=content.genres,
            rating=content.rating,
            runtime_minutes=content.runtime_minutes,
            overview=overview,
            directors=content.directors,
            cast=[member.name for member in sorted(content.cast, key=lambda m: m.order)[:TOP_CAST]],
            certification=content.certifications.get(availability.region),
            region=availability.region,
            watchable_now=bool(offers),
            where_to_watch=_where(offers),
        )

    async def recommend(self, token: str, limit: int, region: str | None) -> Recommendations:
        body: dict[str, Any] = {"limit": limit}
        if region:
            body["region"] = region
        picks = await self.gateway.recommendations(token, body)
        return Recommendations(
            region=region,
            personalized=not picks.cold_start,
            recommendations=[_pick(pick) for pick in picks.recommendations],
        )

    async def similar(self, token: str, content_id: str, limit: int, region: str | None) -> SimilarTitles:
        found = await self.gateway.similar(token, content_id, limit, region)
        return SimilarTitles(content_id=found.content_id, similar=[_pick(pick) for pick in found.similar])

    async def watchlist(self, token: str) -> Watchlist:
        listed = await self.gateway.watchlist(token)
        items = listed.items[:WATCHLIST_TITLES]
        limit = asyncio.Semaphore(TITLE_LOOKUPS_AT_ONCE)

        async def lookup(content_id: str) -> ContentOut | None:
            async with limit:
                return await self._title_or_none(token, content_id)

        contents = await asyncio.gather(*(lookup(item.content_id) for item in items))
        return Watchlist(
            count=listed.count,
            items=[
                WatchlistEntry(
                    content_id=item.content_id,
                    title=content.title if content else None,
                    year=content.year if content else None,
                    kind=content.kind if content else None,
                    added_at=item.added_at,
                )
                for item, content in zip(items, contents, strict=True)
            ],
        )

    async def add_to_watchlist(self, token: str, content_id: str) -> WatchlistChange:
        # Checked first, so an id the assistant made up is refused instead of stored.
        content = await self.gateway.content(token, content_id)
        result = await self.gateway.add_to_watchlist(token, content_id)
        return WatchlistChange(
            content_id=result.content_id, title=content.title, in_watchlist=result.in_watchlist
        )

    async def remove_from_watchlist(self, token: str, content_id: str) -> WatchlistChange:
        # Not checked against the catalog: a title that left it can still be taken off the list.
        result, content = await asyncio.gather(
            self.gateway.remove_from_watchlist(token, content_id), self._title_or_none(token, content_id)
        )
        return WatchlistChange(
            content_id=result.content_id,
            title=content.title if content else None,
            in_watchlist=result.in_watchlist,
        )

    async def continue_watching(self, token: str, limit: int) -> ContinueWatching:
        page = await self.gateway.continue_watching(token, limit)
        return ContinueWatching(
            items=[
                InProgressTitle(
                    content_id=item.content_id,
                    title=item.title,
                    year=item.year,
                    kind=item.kind,
                    position_seconds=item.position_seconds,
                    duration_seconds=item.duration_seconds,
                    percent_watched=round(item.completion * 100, 1) if item.completion is not None else None,
                    last_watched_at=item.updated_at,
                    resume=(
                        ResumeLink(
                            platform=item.deep_link.platform,
                            link=item.deep_link.web or item.deep_link.app or item.deep_link.tv,
                        )
                        if item.deep_link
                        else None
                    ),
                )
                for item in page.items
            ]
        )

    async def _title_or_none(self, token: str, content_id: str) -> ContentOut | None:
        try:
            return await self.gateway.content(token, content_id)
        except GatewayError:
            # A name is a courtesy here: the list or the change is the answer.
            return None


def _where(offers: Iterable[OfferIn]) -> list[WhereToWatch]:
    return [
        WhereToWatch(
            platform=offer.platform,
            monetization=offer.monetization,
            price=offer.price,
            currency=offer.currency,
            quality=offer.quality,
            link=offer.link,
        )
        for offer in offers
    ]


def _card_fields(card: CardIn) -> dict[str, Any]:
    return {
        "content_id": card.id,
        "title": card.title,
        "year": card.year,
        "kind": card.kind,
        "genres": card.genres,
        "rating": card.rating,
        "runtime_minutes": card.runtime_minutes,
        "where_to_watch": _where(card.offers[:OFFERS_PER_CARD]),
    }


def _card(card: CardIn) -> TitleCard:
    return TitleCard(**_card_fields(card))


def _pick(pick: PickIn) -> RecommendedTitle:
    return RecommendedTitle(**_card_fields(pick.content), why=pick.explanation)
