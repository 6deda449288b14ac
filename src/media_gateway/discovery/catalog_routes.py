"""Catalog read endpoints of the discovery service: parse, call the service, return its model."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from media_gateway.discovery.catalog_service import CatalogService
from media_gateway.discovery.schemas import (
    Availability,
    ChangeFeed,
    ChangeType,
    ContentDetails,
    GenreList,
    PlatformList,
    Trending,
)

router = APIRouter(prefix="/api/v1", tags=["catalog"])

# Either case is accepted (`us` means US); anything but two letters is refused.
RegionQuery = Annotated[
    str | None, Query(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2 country code.")
]
# Same shape the ingestion normalizers allow for platform names.
PlatformQuery = Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9_]{1,30}$")]
LimitQuery = Annotated[int, Query(ge=1, le=100)]


def _service(request: Request) -> CatalogService:
    ctx = request.app.state.ctx
    return CatalogService(ctx.engine, ctx.settings.discovery.default_region)


# Declared before /content/{content_id}, which would otherwise claim "trending" as an id.
@router.get("/content/trending", response_model=Trending)
async def trending(
    request: Request, region: RegionQuery = None, platform: PlatformQuery = None, limit: LimitQuery = 20
) -> Trending:
    """The most popular titles watchable today in the region (default US), optionally on one platform."""
    return await _service(request).trending(region, platform, limit)


@router.get("/content/{content_id}", response_model=ContentDetails)
async def content_details(content_id: uuid.UUID, request: Request) -> ContentDetails:
    """All metadata, external ids and every offer in every region."""
    return await _service(request).details(content_id)


@router.get("/content/{content_id}/availability", response_model=Availability)
async def availability(content_id: uuid.UUID, request: Request, region: RegionQuery = None) -> Availability:
    """Offers watchable today in the region (default US), grouped by monetization, with deep links."""
    return await _service(request).availability(content_id, region)


@router.get("/genres", response_model=GenreList)
async def genres(request: Request) -> GenreList:
    """The canonical genre taxonomy with the number of titles in each genre."""
    return await _service(request).genres()


@router.get("/platforms", response_model=PlatformList)
async def platforms(request: Request, region: RegionQuery = None) -> PlatformList:
    """Platforms with the number of titles watchable today, in one region or (by default) anywhere."""
    return await _service(request).platforms(region)


@router.get("/changes", response_model=ChangeFeed)
async def changes(
    request: Request,
    change_type: Annotated[ChangeType, Query(alias="type")],
    region: RegionQuery = None,
    platform: PlatformQuery = None,
    days: Annotated[int, Query(ge=1, le=90)] = 7,
    limit: LimitQuery = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> ChangeFeed:
    """New arrivals of the last `days` (newest first) or titles leaving in the next `days` (soonest
    first) in the region (default US), one entry per title and platform, paged with `cursor`."""
    return await _service(request).changes(change_type, region, platform, days, limit, cursor)
