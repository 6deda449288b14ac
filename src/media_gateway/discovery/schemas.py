"""Response models of the discovery API. `ContentSummary` is the one card every list endpoint returns."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, Field

from media_gateway.catalog.schemas import (
    MONETIZATION_RANK,
    CastMember,
    Content,
    ContentKind,
    Monetization,
    Offer,
)


class DeepLinksOut(BaseModel):
    app: str | None = Field(None, description="Opens the title in the platform's mobile app.")
    web: str | None = Field(None, description="The title's page on the platform's website.")
    tv: str | None = Field(None, description="Opens the title in the platform's TV app.")


class OfferOut(BaseModel):
    platform: str
    region: str
    monetization: Monetization
    tier: str | None
    # A number for clients; two decimals survive a float exactly enough for display and sorting.
    price: float | None
    currency: str | None
    quality: str | None = Field(description="SD, HD or 4K.")
    deep_links: DeepLinksOut
    available_since: dt.date | None
    expires_on: dt.date | None = Field(description="The last day the offer is watchable.")

    @classmethod
    def from_catalog(cls, offer: Offer) -> OfferOut:
        return cls(
            platform=offer.platform,
            region=offer.region,
            monetization=offer.monetization,
            tier=offer.tier,
            price=float(offer.price) if offer.price is not None else None,
            currency=offer.currency,
            quality=offer.quality,
            deep_links=DeepLinksOut(**offer.deep_links.model_dump()),
            available_since=offer.available_since,
            expires_on=offer.expires_on,
        )


class OrderedOffer(Protocol):
    """What the order of offers on a card reads of an offer."""

    @property
    def platform(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def monetization(self) -> Monetization: ...
    @property
    def price(self) -> Decimal | float | None: ...


def offer_order(offer: OrderedOffer) -> tuple[int, Decimal | float, str, str]:
    """Sort key of the offers on a card: cheapest way to watch first, then by price, platform and region.

    A title has one offer per (platform, region, monetization), so this orders its offers totally."""
    return (
        MONETIZATION_RANK[offer.monetization],
        offer.price if offer.price is not None else -1,
        offer.platform,
        offer.region,
    )


def sorted_offers(offers: Iterable[Offer]) -> list[OfferOut]:
    """Cheapest way to watch first, then by price, platform and region."""
    return [OfferOut.from_catalog(o) for o in sorted(offers, key=offer_order)]


class ContentSummary(BaseModel):
    """A title as a result card: what it is, and where it can be watched now in the requested region."""

    id: uuid.UUID
    kind: ContentKind
    title: str
    original_title: str | None
    year: int | None
    genres: list[str]
    runtime_minutes: int | None
    rating: float | None = Field(description="Average audience rating, 0 to 10.")
    vote_count: int | None
    popularity: float | None
    certification: str | None = Field(description="The age rating in the requested region, if known.")
    poster: str | None
    is_original: bool
    region: str
    offers: list[OfferOut] = Field(description="Offers watchable today in `region`, cheapest first.")

    @classmethod
    def from_catalog(cls, item: Content, region: str, offers: Iterable[Offer]) -> ContentSummary:
        return cls(
            id=item.id,
            kind=item.kind,
            title=item.title,
            original_title=item.original_title,
            year=item.year,
            genres=item.genres,
            runtime_minutes=item.runtime_minutes,
            rating=item.rating,
            vote_count=item.vote_count,
            popularity=item.popularity,
            certification=item.certifications.get(region),
            poster=item.images.get("poster"),
            is_original=item.is_original,
            region=region,
            offers=sorted_offers(offers),
        )


class ExternalIdOut(BaseModel):
    id_type: str = Field(description="eidr, imdb, tmdb, tvdb or platform:<platform>.")
    value: str


class ContentDetails(BaseModel):
    """Everything the catalog knows about a title, with its offers in every region."""

    id: uuid.UUID
    kind: ContentKind
    title: str
    original_title: str | None
    year: int | None
    release_date: dt.date | None
    runtime_minutes: int | None
    overview: str | None
    genres: list[str]
    keywords: list[str]
    cast: list[CastMember]
    directors: list[str]
    certifications: dict[str, str]
    rating: float | None
    vote_count: int | None
    popularity: float | None
    images: dict[str, str]
    is_original: bool
    external_ids: list[ExternalIdOut]
    offers: list[OfferOut] = Field(description="Every known offer, in any region, including past windows.")
    updated_at: dt.datetime

    @classmethod
    def from_catalog(cls, item: Content) -> ContentDetails:
        return cls(
            **item.model_dump(
                include={
                    "id",
                    "kind",
                    "title",
                    "original_title",
                    "year",
                    "release_date",
                    "runtime_minutes",
                    "overview",
                    "genres",
                    "keywords",
                    "directors",
                    "certifications",
                    "rating",
                    "vote_count",
                    "popularity",
                    "images",
                    "is_original",
                    "updated_at",
                }
            ),
            cast=item.cast,
            external_ids=[ExternalIdOut(id_type=i.id_type, value=i.value) for i in item.external_ids],
            offers=sorted(sorted_offers(item.offers), key=lambda o: o.region),
        )


class OfferGroup(BaseModel):
    monetization: Monetization
    offers: list[OfferOut]


class Availability(BaseModel):
    content_id: uuid.UUID
    title: str
    region: str
    as_of: dt.date = Field(description="The day (UTC) the offers are watchable on.")
    total: int
    groups: list[OfferGroup] = Field(description="Non-empty groups, cheapest kind of offer first.")


class GenreCount(BaseModel):
    name: str
    title_count: int


class GenreList(BaseModel):
    genres: list[GenreCount] = Field(description="The whole canonical taxonomy, in its order.")


class PlatformCount(BaseModel):
    id: str
    name: str
    title_count: int = Field(description="Titles watchable today (in the requested region, if any).")
    regions: list[str]
    monetizations: list[Monetization]


class PlatformList(BaseModel):
    region: str | None
    as_of: dt.date
    platforms: list[PlatformCount] = Field(description="Platforms with at least one title, most first.")


class Trending(BaseModel):
    region: str
    platform: str | None
    as_of: dt.date
    items: list[ContentSummary]


class ChangeType(StrEnum):
    NEW = "new"
    LEAVING = "leaving"


class ChangeItem(BaseModel):
    date: dt.date = Field(description="Arrival day (new) or last watchable day (leaving) on `platform`.")
    platform: str
    offers: list[OfferOut] = Field(
        description="The title's offers on `platform` in the region that arrive or leave within the window."
    )
    content: ContentSummary


class ChangeFeed(BaseModel):
    type: ChangeType
    region: str
    platform: str | None
    days: int
    as_of: dt.date
    window_start: dt.date
    window_end: dt.date
    items: list[ChangeItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
