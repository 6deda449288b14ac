"""The canonical catalog as data: what normalizers produce, the pipeline stores and readers get."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from media_gateway.catalog.genres import CANONICAL_GENRES

PLATFORMS: tuple[str, ...] = (
    "netflix",
    "prime_video",
    "disney_plus",
    "hbo_max",
    "hulu",
    "apple_tv_plus",
    "paramount_plus",
    "peacock",
    "youtube",
)

Region = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class ContentKind(StrEnum):
    MOVIE = "movie"
    SERIES = "series"
    SEASON = "season"
    EPISODE = "episode"


class Monetization(StrEnum):
    SUBSCRIPTION = "subscription"
    FREE = "free"
    ADS = "ads"
    RENT = "rent"
    BUY = "buy"
    ADDON = "addon"


# Cheapest for the viewer first: what they can watch without paying more comes before a purchase.
# Cards list offers in this order, and a playback session opens the first.
MONETIZATION_ORDER: tuple[Monetization, ...] = (
    Monetization.FREE,
    Monetization.ADS,
    Monetization.SUBSCRIPTION,
    Monetization.ADDON,
    Monetization.RENT,
    Monetization.BUY,
)
# Keyed by the enum, which also finds plain strings ("free" hashes and compares as Monetization.FREE).
MONETIZATION_RANK: dict[str, int] = {m: i for i, m in enumerate(MONETIZATION_ORDER)}


class IdType(StrEnum):
    """Kinds of external id, strongest first. Platform ids are `platform:<platform>`."""

    EIDR = "eidr"
    IMDB = "imdb"
    TMDB = "tmdb"
    TVDB = "tvdb"


def platform_id_type(platform: str) -> str:
    return f"platform:{platform}"


class ExternalId(BaseModel):
    model_config = ConfigDict(frozen=True)

    id_type: str = Field(min_length=2, max_length=40)
    value: str = Field(min_length=1, max_length=200)


class DeepLinks(BaseModel):
    app: str | None = None
    web: str | None = None
    tv: str | None = None


class CastMember(BaseModel):
    name: str
    character: str | None = None
    order: int = 0


class OfferIn(BaseModel):
    platform: str
    region: Region
    monetization: Monetization
    tier: str | None = None
    price: Decimal | None = Field(default=None, ge=0)
    currency: Currency | None = None
    quality: str | None = None  # SD, HD, 4K
    deep_links: DeepLinks = DeepLinks()
    platform_content_id: str
    available_since: date | None = None
    expires_on: date | None = None


class NormalizedContent(BaseModel):
    """One title as a platform knows it, already in canonical terms; not yet resolved to an entity."""

    kind: ContentKind = ContentKind.MOVIE
    title: str = Field(min_length=1, max_length=500)
    original_title: str | None = None
    year: int | None = Field(default=None, ge=1870, le=2100)
    release_date: date | None = None
    runtime_minutes: int | None = Field(default=None, ge=0, le=2000)
    overview: str | None = None
    genres: list[str] = []
    keywords: list[str] = []
    cast: list[CastMember] = []
    directors: list[str] = []
    certifications: dict[str, str] = {}
    popularity: float | None = None
    rating: float | None = Field(default=None, ge=0, le=10)
    vote_count: int | None = Field(default=None, ge=0)
    images: dict[str, str] = {}
    is_original: bool = False
    source_platform: str
    source_id: str
    external_ids: list[ExternalId] = []
    offers: list[OfferIn] = []

    @field_validator("genres")
    @classmethod
    def _only_canonical(cls, genres: list[str]) -> list[str]:
        unknown = [g for g in genres if g not in CANONICAL_GENRES]
        if unknown:
            raise ValueError(f"not canonical genres: {unknown}")
        return list(dict.fromkeys(genres))


class Rejection(BaseModel):
    source_id: str | None
    reason: str


class NormalizeResult(BaseModel):
    items: list[NormalizedContent] = []
    rejected: list[Rejection] = []
    unknown_genres: dict[str, int] = {}


class Offer(OfferIn):
    content_id: uuid.UUID
    updated_at: datetime


class Content(BaseModel):
    """A canonical catalog entity as stored."""

    id: uuid.UUID
    kind: ContentKind
    title: str
    original_title: str | None
    year: int | None
    release_date: date | None
    runtime_minutes: int | None
    overview: str | None
    genres: list[str]
    keywords: list[str]
    cast: list[CastMember]
    directors: list[str]
    certifications: dict[str, str]
    popularity: float | None
    rating: float | None
    vote_count: int | None
    images: dict[str, str]
    is_original: bool
    quality_score: float | None
    embedding_updated_at: datetime | None
    created_at: datetime
    updated_at: datetime
    external_ids: list[ExternalId] = []
    offers: list[Offer] = []


def normalize_title(title: str) -> str:
    """The blocking key for entity resolution: case, accents, punctuation and leading articles folded."""
    folded = unicodedata.normalize("NFKD", title.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    folded = folded.replace("&", " and ")
    cleaned = "".join(c if c.isalnum() else " " for c in folded)
    words = cleaned.split()
    if len(words) > 1 and words[0] in ("the", "a", "an"):
        words = words[1:]
    return " ".join(words)
