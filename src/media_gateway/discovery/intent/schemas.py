"""What a search query asks for, in catalog terms: the `Intent` every parser produces."""

from __future__ import annotations

import uuid
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from media_gateway.catalog.genres import CANONICAL_GENRES
from media_gateway.catalog.schemas import PLATFORMS, ContentKind, Monetization

# A closed vocabulary, so search can map each mood onto genres and keywords without guessing.
MOODS: Final[tuple[str, ...]] = (
    "dark",
    "feel-good",
    "funny",
    "tense",
    "romantic",
    "uplifting",
    "scary",
    "mind-bending",
    "sad",
    "relaxing",
    "exciting",
    "thought-provoking",
    "quirky",
    "epic",
    "nostalgic",
    "violent",
)

IntentSource = Literal["rules", "llm", "llm+rules", "cache"]

MIN_YEAR: Final = 1870
MAX_YEAR: Final = 2100
MAX_RUNTIME_MINUTES: Final = 2000


class ReferencedTitle(BaseModel):
    """A title the query compares against ("like Arrival"); `content_id` once found in the catalog."""

    model_config = ConfigDict(frozen=True)

    title: str = Field(min_length=1, max_length=300)
    content_id: uuid.UUID | None = None


class Intent(BaseModel):
    """Strict on purpose: anything outside our vocabularies is rejected here, so an LLM answer has to
    be mapped onto them (see `llm.py`) instead of leaking invented genres or platforms downstream."""

    genres: list[str] = []
    platforms: list[str] = []
    moods: list[str] = []
    themes: list[str] = []
    people: list[str] = []
    referenced_titles: list[ReferencedTitle] = []
    year_from: int | None = Field(default=None, ge=MIN_YEAR, le=MAX_YEAR)
    year_to: int | None = Field(default=None, ge=MIN_YEAR, le=MAX_YEAR)
    max_runtime_minutes: int | None = Field(default=None, ge=1, le=MAX_RUNTIME_MINUTES)
    kind: ContentKind | None = None
    monetization: list[Monetization] = []
    keywords: list[str] = []
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    source: IntentSource = "rules"

    @field_validator("genres")
    @classmethod
    def _canonical_genres(cls, genres: list[str]) -> list[str]:
        unknown = [g for g in genres if g not in CANONICAL_GENRES]
        if unknown:
            raise ValueError(f"not canonical genres: {unknown}")
        return list(dict.fromkeys(genres))

    @field_validator("platforms")
    @classmethod
    def _known_platforms(cls, platforms: list[str]) -> list[str]:
        unknown = [p for p in platforms if p not in PLATFORMS]
        if unknown:
            raise ValueError(f"unknown platforms: {unknown}")
        return list(dict.fromkeys(platforms))

    @field_validator("moods")
    @classmethod
    def _known_moods(cls, moods: list[str]) -> list[str]:
        unknown = [m for m in moods if m not in MOODS]
        if unknown:
            raise ValueError(f"unknown moods: {unknown}")
        return list(dict.fromkeys(moods))

    @field_validator("themes", "people", "keywords", "monetization")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(values))

    @model_validator(mode="after")
    def _ordered_years(self) -> Intent:
        if self.year_from is not None and self.year_to is not None and self.year_from > self.year_to:
            raise ValueError(f"year_from {self.year_from} is after year_to {self.year_to}")
        return self
