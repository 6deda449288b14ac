"""Hybrid search's filters and counts over candidates: what the engines are told to filter on, what is
checked on the candidates afterwards, the popularity and quality prior, and the facets."""

from __future__ import annotations

import uuid
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Final

from media_gateway.core.vectors import Range, VectorFilter
from media_gateway.discovery.intent import Intent
from media_gateway.discovery.search.certification import FALLBACK_REGION
from media_gateway.discovery.search.documents import KeywordFilters
from media_gateway.discovery.search.metadata import RATING_BUCKETS, RegionOffers, TitleMeta
from media_gateway.discovery.search_schemas import FacetCount, Facets, SearchFilters

# Rule-parsed intents this unsure ("... is a tv show" read as kind=series) must not filter.
INTENT_FILTER_MIN_CONFIDENCE: Final = 0.5


@dataclass(slots=True)
class Candidate:
    meta: TitleMeta
    # The offers watchable in the searched region.
    offers: RegionOffers


@dataclass(frozen=True, slots=True)
class PostFilter:
    """What the candidates are checked against after retrieval: the filters the vector payload
    cannot hold, and offer dimensions that must hold together on one offer."""

    filters: KeywordFilters
    max_certification_age: int | None = None
    region: str = ""
    # Each group: a person's display names (namesakes); every group must be among the title's people.
    people: tuple[frozenset[str], ...] = ()


def effective_filters(explicit: SearchFilters, intent: Intent, region: str) -> KeywordFilters:
    """Explicit filters win per dimension; the intent fills the ones left open when confident.

    Region restricts only together with a platform or monetization filter: a title unavailable in
    the region is still worth finding, but "on Netflix" means on Netflix here."""
    use = intent.confidence >= INTENT_FILTER_MIN_CONFIDENCE
    genres = explicit.genres or (intent.genres if use else [])
    platforms = explicit.platforms or (intent.platforms if use else [])
    monetization = [m.value for m in explicit.monetization] or (
        [m.value for m in intent.monetization] if use else []
    )
    explicit_years = explicit.year_from is not None or explicit.year_to is not None
    kind = explicit.kind or (intent.kind if use else None)
    runtime = explicit.max_runtime or (intent.max_runtime_minutes if use else None)
    return KeywordFilters(
        genres=genres,
        platforms=platforms,
        regions=[region] if platforms or monetization else [],
        monetization=monetization,
        year_min=explicit.year_from if explicit_years or not use else intent.year_from,
        year_max=explicit.year_to if explicit_years or not use else intent.year_to,
        min_rating=explicit.min_rating,
        max_runtime=runtime,
        kind=kind.value if kind else None,
    )


def explicit_filters(explicit: SearchFilters, region: str) -> KeywordFilters:
    return effective_filters(explicit, Intent(), region)


def vector_filter(filters: KeywordFilters, exclude: Iterable[uuid.UUID] = ()) -> VectorFilter:
    """The keyword filters the vector payload can hold. Rating, runtime, certification and people
    are not in it, and offer dimensions there are independent any-ofs: `admits` checks those on the
    candidates afterwards."""
    match: dict[str, Any] = {}
    for name, values in (
        ("genres", filters.genres),
        ("platforms", filters.platforms),
        ("regions", filters.regions),
        ("monetization", filters.monetization),
    ):
        if values:
            match[name] = list(values)
    if filters.kind:
        match["type"] = filters.kind
    ranges = {}
    if filters.year_min is not None or filters.year_max is not None:
        ranges["year"] = Range(gte=filters.year_min, lte=filters.year_max)
    return VectorFilter(match=match, ranges=ranges, exclude_ids=frozenset(exclude))


def admits(post: PostFilter, item: Candidate) -> bool:
    filters, meta = post.filters, item.meta
    if filters.min_rating is not None and (meta.rating is None or meta.rating < filters.min_rating):
        return False
    if filters.max_runtime is not None and (meta.runtime is None or meta.runtime > filters.max_runtime):
        return False
    if post.max_certification_age is not None:
        ages = meta.certification_ages
        age = ages.get(post.region, ages.get(FALLBACK_REGION))
        if age is None or age > post.max_certification_age:
            return False
    if any(not (names & meta.people) for names in post.people):
        return False
    if filters.platforms or filters.monetization:
        return any(
            (not filters.platforms or p in filters.platforms)
            and (not filters.monetization or m in filters.monetization)
            for p, m in item.offers.pairs
        )
    return True


def prior(meta: TitleMeta, max_log_popularity: float) -> float:
    """Half popularity (log-scaled, relative to the most popular candidate), half trusted rating."""
    popularity = meta.log_popularity / max_log_popularity if max_log_popularity else 0.0
    return 0.5 * min(popularity, 1.0) + 0.5 * meta.quality


def _count(tally: Tally[str], order: Sequence[str] | None = None) -> list[FacetCount]:
    if order is not None:
        return [FacetCount(value=v, count=tally[v]) for v in order if tally[v]]
    return [FacetCount(value=v, count=n) for v, n in sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))]


def facets(items: Sequence[Candidate]) -> Facets:
    metas = [i.meta for i in items]
    offers = [i.offers for i in items]
    decades = Tally([m.decade for m in metas if m.decade is not None])
    buckets = Tally([m.rating_bucket for m in metas if m.rating_bucket is not None])
    return Facets(
        genres=_count(Tally(chain.from_iterable([m.genres for m in metas]))),
        platforms=_count(Tally(chain.from_iterable([o.platforms for o in offers]))),
        monetization=_count(Tally(chain.from_iterable([o.monetization for o in offers]))),
        decades=_count(decades),
        rating_buckets=_count(buckets, [b for _, b in RATING_BUCKETS][::-1]),
    )
