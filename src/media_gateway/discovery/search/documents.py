"""What goes into the keyword index and what comes out of it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, NamedTuple

from pydantic import BaseModel, Field

from media_gateway.catalog.schemas import Monetization


class OfferKey(NamedTuple):
    """One way to watch a title: enough of an offer to filter on."""

    platform: str
    region: str
    monetization: str


@dataclass(frozen=True, slots=True)
class CardOffer:
    """One offer as a result card shows it, with the window that says on which days it does."""

    platform: str
    region: str
    monetization: Monetization
    tier: str | None
    price: float | None
    currency: str | None
    quality: str | None
    deep_link_app: str | None
    deep_link_web: str | None
    deep_link_tv: str | None
    available_since: date | None
    # The last day the offer is watchable.
    expires_on: date | None

    def watchable_on(self, day: date) -> bool:
        return (self.available_since is None or self.available_since <= day) and (
            self.expires_on is None or self.expires_on >= day
        )


@dataclass(frozen=True, slots=True)
class KeywordDoc:
    """One catalog entity as the keyword index sees it.

    A dataclass rather than a model: a full rebuild makes one per catalog entity, and validation
    already happened when the catalog was written."""

    id: str
    title: str
    kind: str = "movie"
    original_title: str | None = None
    # Cast and directors, most prominent first.
    people: Sequence[str] = ()
    keywords: Sequence[str] = ()
    overview: str | None = None
    genres: Sequence[str] = ()
    offers: Sequence[OfferKey] = ()
    year: int | None = None
    runtime_minutes: int | None = None
    rating: float | None = None
    popularity: float | None = None
    vote_count: int | None = None
    # Region code -> age rating there ("US" -> "PG-13").
    certifications: Mapping[str, str] = field(default_factory=dict)
    # The top of the bill and the directors: what match reasons name. Empty means `people[:16]`.
    billed_people: Sequence[str] = ()
    # What only the result card shows. `card_offers` are all offers not yet expired when the document
    # was made, including ones that start later, so a card can be worked out for any day after;
    # `offers` are those of them watchable that day.
    poster: str | None = None
    is_original: bool = False
    card_offers: Sequence[CardOffer] = ()

    @property
    def platforms(self) -> list[str]:
        return sorted({o.platform for o in self.offers})

    @property
    def regions(self) -> list[str]:
        return sorted({o.region for o in self.offers})

    @property
    def monetization(self) -> list[str]:
        return sorted({o.monetization for o in self.offers})


@dataclass(frozen=True, slots=True)
class KeywordFilters:
    """Restrictions on a search; every one given must hold.

    Within genres and within each offer dimension any listed value will do. platforms, regions and
    monetization hold *together on one offer*: netflix + US + free means a free Netflix offer in
    the US, not a Netflix offer somewhere and a free one elsewhere."""

    genres: Sequence[str] = ()
    platforms: Sequence[str] = ()
    regions: Sequence[str] = ()
    monetization: Sequence[str] = ()
    year_min: int | None = None
    year_max: int | None = None
    min_rating: float | None = None
    max_runtime: int | None = None
    kind: str | None = None
    # Each group: `people_key` terms of one person (namesakes share a folded name); every group must
    # match. See `KeywordIndex.person_terms`.
    people: Sequence[Sequence[str]] = ()


class KeywordPage(NamedTuple):
    """One page of hits, best first, and how many documents matched in all."""

    hits: list[tuple[str, float]]
    total: int


class Suggestion(BaseModel):
    """One autocomplete entry: a title (with its content id) or a person (with what they are known for)."""

    kind: Literal["title", "person"]
    # The content id of a title; None for a person, who has no catalog entity of their own.
    id: str | None
    title: str
    year: int | None = None
    content_kind: str | None = None
    # Content ids of a person's best-known matching titles.
    known_for: list[str] = Field(default_factory=list)
    score: float


@dataclass(slots=True)
class BuildStats:
    documents: int = 0
    seconds: float = 0.0
    path: str = ""
