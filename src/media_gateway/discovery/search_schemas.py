"""Request and response models of hybrid search (`/api/v1/search`)."""

from __future__ import annotations

import uuid
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from media_gateway.catalog.genres import canonical_genre
from media_gateway.catalog.schemas import PLATFORMS, ContentKind, Monetization
from media_gateway.discovery.intent.schemas import MAX_RUNTIME_MINUTES, MAX_YEAR, MIN_YEAR, Intent
from media_gateway.discovery.schemas import ContentSummary
from media_gateway.discovery.search.certification import LADDER

MAX_QUERY_CHARS: Final = 500
MAX_PAGE_SIZE: Final = 100
# Bounds the work a deep page can cause; nobody pages a ranked list this far.
MAX_PAGE: Final = 1_000
MAX_FILTER_VALUES: Final = 20


class SearchFilters(BaseModel):
    """Explicit restrictions; each one given must hold. Unknown values are rejected rather than
    silently matching nothing, so a client's typo shows up as a 422 and not as an empty page."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    genres: list[str] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    platforms: list[str] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    monetization: list[Monetization] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    year_from: int | None = Field(default=None, ge=MIN_YEAR, le=MAX_YEAR)
    year_to: int | None = Field(default=None, ge=MIN_YEAR, le=MAX_YEAR)
    min_rating: float | None = Field(default=None, ge=0, le=10)
    max_runtime: int | None = Field(default=None, ge=1, le=MAX_RUNTIME_MINUTES)
    kind: ContentKind | None = None
    max_certification: str | None = Field(
        default=None,
        description=f"Mildest-first ladder {', '.join(LADDER)} (TV and other regions' ratings map onto "
        "it by age). Titles whose rating in the searched region is unknown are left out.",
    )
    only_my_services: bool = Field(
        default=False,
        description="Only titles on the platforms the signed-in user subscribes to (needs a token).",
    )

    @field_validator("max_certification")
    @classmethod
    def _known_certification(cls, value: str | None) -> str | None:
        if value is None:
            return None
        wanted = value.strip().upper()
        if wanted not in LADDER:
            raise ValueError(f"unknown certification {value!r}; one of {list(LADDER)}")
        return wanted

    @field_validator("genres")
    @classmethod
    def _canonical_genres(cls, genres: list[str]) -> list[str]:
        found: list[str] = []
        for name in genres:
            canonical = canonical_genre(name.strip())
            if canonical is None:
                raise ValueError(f"unknown genre {name!r}")
            found.append(canonical)
        return sorted(set(found))

    @field_validator("platforms")
    @classmethod
    def _known_platforms(cls, platforms: list[str]) -> list[str]:
        cleaned = [p.strip().casefold() for p in platforms]
        unknown = [p for p in cleaned if p not in PLATFORMS]
        if unknown:
            raise ValueError(f"unknown platforms: {unknown}")
        return sorted(set(cleaned))

    @field_validator("monetization")
    @classmethod
    def _sorted_monetization(cls, values: list[Monetization]) -> list[Monetization]:
        # Sorted and deduplicated: equivalent requests must share one cache key.
        return sorted(set(values))

    @model_validator(mode="after")
    def _ordered_years(self) -> SearchFilters:
        if self.year_from is not None and self.year_to is not None and self.year_from > self.year_to:
            raise ValueError(f"year_from {self.year_from} is after year_to {self.year_to}")
        return self


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    filters: SearchFilters = Field(default_factory=SearchFilters)
    region: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$")
    page: int = Field(default=1, ge=1, le=MAX_PAGE)
    page_size: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE)

    @field_validator("query")
    @classmethod
    def _not_blank(cls, query: str) -> str:
        if not query.strip():
            raise ValueError("query must contain something to search for")
        return query


class SearchResult(ContentSummary):
    score: float = Field(description="Relevance after fusion and the prior, 0 to 1; best first.")
    match_reasons: list[str]


class FacetCount(BaseModel):
    value: str
    count: int


class Facets(BaseModel):
    """Counts over the ranked candidate set (its best `FACET_CANDIDATES`), not just the page."""

    genres: list[FacetCount] = []
    platforms: list[FacetCount] = []
    monetization: list[FacetCount] = []
    decades: list[FacetCount] = []
    rating_buckets: list[FacetCount] = []


class Experiment(BaseModel):
    id: str
    variant: str


class SearchResponse(BaseModel):
    query: str
    region: str
    results: list[SearchResult]
    total: int
    page: int
    page_size: int
    intent: Intent
    facets: Facets
    took_ms: float
    cached: bool = Field(description="Whether the response came from the search cache.")
    personalized: bool = Field(
        default=False, description="Whether the signed-in user's affinities re-ranked the results."
    )
    experiment: Experiment | None = Field(
        default=None, description="The personalization A/B experiment and variant the user is in."
    )


class RankedItem(BaseModel):
    """One candidate of the ranked list kept beyond the page, so personalization can re-rank it."""

    id: uuid.UUID
    score: float
    reasons: list[str]


class SearchOutcome(BaseModel):
    """What the search cache stores: the user-agnostic response and the head of the ranked list."""

    response: SearchResponse
    ranking: list[RankedItem]
