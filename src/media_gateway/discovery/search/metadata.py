"""What ranking, post-filtering, facets, match reasons and result cards need of a title, held in memory
next to the keyword index (and written with it), so a search reads no SQL at all."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from media_gateway.catalog.schemas import normalize_title
from media_gateway.discovery.schemas import offer_order
from media_gateway.discovery.search.certification import certification_age
from media_gateway.discovery.search.documents import CardOffer, KeywordDoc

# People a title keeps for match reasons when the document does not say who is billed.
FALLBACK_PEOPLE = 16
VOTES_FOR_FULL_TRUST = 1_000
RATING_BUCKETS = ((8.0, "8-10"), (7.0, "7-8"), (6.0, "6-7"), (5.0, "5-6"), (0.0, "0-5"))


@dataclass(frozen=True, slots=True)
class RegionOffers:
    """A title's watchable offers in one region, in the shapes filters and facets count."""

    pairs: frozenset[tuple[str, str]]
    platforms: frozenset[str]
    monetization: frozenset[str]


NO_OFFERS = RegionOffers(frozenset(), frozenset(), frozenset())
_NO_CERTIFICATIONS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CardData:
    """What only the result card (`cards.summary`) shows of a title; the rest it takes from `TitleMeta`.

    Offers are kept once for all regions and days, in card order (`offer_order` orders a title's
    offers totally, so a card keeps the order by filtering)."""

    title: str
    original_title: str | None
    # As the catalog has them (None when unknown); ranking uses `TitleMeta.log_popularity` and `quality`.
    vote_count: int | None
    popularity: float | None
    poster: str | None
    is_original: bool
    # Region code -> age rating there.
    certifications: Mapping[str, str]
    # Not expired when the index was written, later ones included: a card is worked out for its day.
    offers: tuple[CardOffer, ...]


@dataclass(frozen=True, slots=True)
class TitleMeta:
    id: uuid.UUID
    kind: str
    title_keys: frozenset[str]
    year: int | None
    genres: tuple[str, ...]
    keywords: frozenset[str]
    people: frozenset[str]
    rating: float | None
    runtime: int | None
    # Region -> minimum age of the title's rating there (unparseable ratings left out).
    certification_ages: Mapping[str, int]
    # Offers watchable when the index was written, by region.
    offers: Mapping[str, RegionOffers]
    # Facet values, worked out once.
    decade: str | None
    rating_bucket: str | None
    card: CardData
    # The prior's two ingredients (`filtering.prior`), worked out once rather than per search.
    log_popularity: float
    # Rating in [0, 1], trusted in proportion to log(votes) up to `VOTES_FOR_FULL_TRUST`.
    quality: float

    def region_offers(self, region: str) -> RegionOffers:
        return self.offers.get(region, NO_OFFERS)


def _by_region(doc: KeywordDoc) -> dict[str, RegionOffers]:
    pairs: dict[str, set[tuple[str, str]]] = {}
    for offer in doc.offers:
        pairs.setdefault(offer.region, set()).add((offer.platform, offer.monetization))
    return {
        region: RegionOffers(frozenset(found), frozenset(p for p, _ in found), frozenset(m for _, m in found))
        for region, found in pairs.items()
    }


def _bucket(rating: float | None) -> str | None:
    if rating is None:
        return None
    return next(label for floor, label in RATING_BUCKETS if rating >= floor)


def _quality(rating: float | None, votes: int) -> float:
    trust = min(1.0, math.log1p(max(votes, 0)) / math.log1p(VOTES_FOR_FULL_TRUST))
    return min((rating or 0.0) / 10.0 * trust, 1.0)


def title_meta(doc: KeywordDoc) -> TitleMeta | None:
    """None for a document whose id is not a content id (only hand-made test corpora have those)."""
    try:
        content_id = uuid.UUID(doc.id)
    except ValueError:
        return None
    keys = {normalize_title(doc.title), normalize_title(doc.original_title or "")} - {""}
    billed = doc.billed_people or list(doc.people)[:FALLBACK_PEOPLE]
    ages = {region: certification_age(rating) for region, rating in doc.certifications.items()}
    return TitleMeta(
        id=content_id,
        kind=doc.kind,
        title_keys=frozenset(keys),
        year=doc.year,
        genres=tuple(doc.genres),
        keywords=frozenset(k.casefold() for k in doc.keywords),
        people=frozenset(p.casefold() for p in billed if p),
        rating=doc.rating,
        runtime=doc.runtime_minutes,
        certification_ages={r: a for r, a in ages.items() if a is not None},
        offers=_by_region(doc),
        decade=f"{doc.year // 10 * 10}s" if doc.year is not None else None,
        rating_bucket=_bucket(doc.rating),
        card=CardData(
            title=doc.title,
            original_title=doc.original_title,
            vote_count=doc.vote_count,
            popularity=doc.popularity,
            poster=doc.poster,
            is_original=doc.is_original,
            certifications=doc.certifications or _NO_CERTIFICATIONS,
            offers=tuple(sorted(doc.card_offers, key=offer_order)),
        ),
        log_popularity=math.log1p(max(doc.popularity or 0.0, 0.0)),
        quality=_quality(doc.rating, doc.vote_count or 0),
    )
