"""`HybridSearch`: keyword (tantivy) and semantic (vector) hits fused into one ranked, faceted page.

search(request) ─ intent ─┬─ keyword: residual text, all filters ─┐
                          ├─ titles: raw text, explicit filters ──┼─ RRF ─ prior ─ tiers ─ page
                          └─ semantic: query vector, filters ─────┘
Ranking, in order of precedence:
1. Title tiers. The catalog title (or original title) equal to the query after `normalize_title`
   ranks first, then a near title (tantivy's fuzzy whole-title tier). The title search uses the raw
   query and only the explicit filters, because the intent parser reads title words as filters
   ("The Truman *Show*" asks for a series) and must not hide the title that was typed.
2. Everything else by `final = (1 - PRIOR_WEIGHT) * relevance + PRIOR_WEIGHT * prior`, where
   relevance is the weighted reciprocal rank fusion (k = `rrf_k`) divided by its best value in the
   candidate set (so it lies in [0, 1]), and
   `prior = 0.5 * log1p(popularity) / log1p(max popularity among candidates)
          + 0.5 * rating / 10 * min(1, log1p(votes) / log1p(1000))`, also in [0, 1].
Reported scores stay in [0, 1] and never increase down the list: exact titles score 1, near titles
at least the best untiered score.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncEngine

from media_gateway.catalog import repository as catalog
from media_gateway.catalog.schemas import normalize_title
from media_gateway.core.embeddings import Embedder
from media_gateway.core.settings import Settings
from media_gateway.core.vectors import Range, VectorFilter, VectorIndex
from media_gateway.discovery.intent import Intent, IntentParser, normalize_query
from media_gateway.discovery.schemas import ContentSummary
from media_gateway.discovery.search import repository as search_repository
from media_gateway.discovery.search.documents import KeywordFilters
from media_gateway.discovery.search.keyword import KeywordIndex
from media_gateway.discovery.search.queries import NEAR_TITLE
from media_gateway.discovery.search_schemas import (
    FacetCount,
    Facets,
    SearchFilters,
    SearchRequest,
    SearchResponse,
    SearchResult,
)

logger = logging.getLogger(__name__)

KEYWORD_CANDIDATES: Final = 200
SEMANTIC_CANDIDATES: Final = 200
TITLE_CANDIDATES: Final = 10
FACET_CANDIDATES: Final = 500
# Cosine similarity below this is noise for MiniLM: unrelated texts score around 0 to 0.15.
MIN_SIMILARITY: Final = 0.2
PRIOR_WEIGHT: Final = 0.1
VOTES_FOR_FULL_TRUST: Final = 1_000
# Rule-parsed intents this unsure ("... is a tv show" read as kind=series) must not filter.
INTENT_FILTER_MIN_CONFIDENCE: Final = 0.5
# Longer inputs are descriptions, not titles, whatever tantivy's title tier says.
MAX_TITLE_WORDS: Final = 12
RATING_BUCKETS: Final = ((8.0, "8-10"), (7.0, "7-8"), (6.0, "6-7"), (5.0, "5-6"), (0.0, "0-5"))


@dataclass(slots=True)
class _Candidate:
    """What ranking, post-filtering, facets and match reasons need of one title."""

    id: uuid.UUID
    title_keys: frozenset[str]
    year: int | None
    genres: list[str]
    keywords: frozenset[str]
    people: frozenset[str]
    rating: float | None
    votes: int
    popularity: float
    runtime: int | None
    offers: set[tuple[str, str]] = field(default_factory=set)


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


def vector_filter(filters: KeywordFilters) -> VectorFilter:
    """The keyword filters the vector payload can hold. Rating and runtime are not in it, and offer
    dimensions there are independent any-ofs: `admits` checks those on the candidates afterwards."""
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
    return VectorFilter(match=match, ranges=ranges)


def admits(filters: KeywordFilters, item: _Candidate) -> bool:
    if filters.min_rating is not None and (item.rating is None or item.rating < filters.min_rating):
        return False
    if filters.max_runtime is not None and (item.runtime is None or item.runtime > filters.max_runtime):
        return False
    if filters.platforms or filters.monetization:
        return any(
            (not filters.platforms or p in filters.platforms)
            and (not filters.monetization or m in filters.monetization)
            for p, m in item.offers
        )
    return True


def prior(item: _Candidate, max_log_popularity: float) -> float:
    popularity = math.log1p(max(item.popularity, 0.0)) / max_log_popularity if max_log_popularity else 0.0
    trust = min(1.0, math.log1p(max(item.votes, 0)) / math.log1p(VOTES_FOR_FULL_TRUST))
    quality = (item.rating or 0.0) / 10.0 * trust
    return 0.5 * min(popularity, 1.0) + 0.5 * min(quality, 1.0)


def _count(values: Iterable[str], order: Sequence[str] | None = None) -> list[FacetCount]:
    tally = Tally(values)
    if order is not None:
        return [FacetCount(value=v, count=tally[v]) for v in order if tally[v]]
    return [FacetCount(value=v, count=n) for v, n in sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))]


def facets(items: Sequence[_Candidate]) -> Facets:
    def bucket(rating: float) -> str:
        return next(label for floor, label in RATING_BUCKETS if rating >= floor)

    return Facets(
        genres=_count(g for i in items for g in set(i.genres)),
        platforms=_count(p for i in items for p in {p for p, _ in i.offers}),
        monetization=_count(m for i in items for m in {m for _, m in i.offers}),
        decades=_count(f"{i.year // 10 * 10}s" for i in items if i.year is not None),
        rating_buckets=_count(
            (bucket(i.rating) for i in items if i.rating is not None), [b for _, b in RATING_BUCKETS][::-1]
        ),
    )


class HybridSearch:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        keywords: KeywordIndex,
        embedder: Embedder,
        vectors: VectorIndex,
        intents: IntentParser,
    ) -> None:
        self.settings = settings
        self._engine = engine
        self._keywords = keywords
        self._embedder = embedder
        self._vectors = vectors
        self._intents = intents

    def region(self, region: str | None) -> str:
        return (region or self.settings.discovery.default_region).upper()

    async def search(self, request: SearchRequest) -> SearchResponse:
        """The ranked page for `request`, computed afresh (the cache sits in front, see `hybrid_runtime`)."""
        started = time.perf_counter()
        region = self.region(request.region)
        intent = await self._intents.parse(request.query)
        filters = effective_filters(request.filters, intent, region)
        keyword_text = self._keyword_text(request.query, intent)
        keyword_page, title_page, semantic = await asyncio.gather(
            self._keywords.search(keyword_text, filters, KEYWORD_CANDIDATES),
            self._keywords.search(request.query, explicit_filters(request.filters, region), TITLE_CANDIDATES),
            self._semantic(request.query, filters),
        )
        title_scores = {uuid.UUID(i): s for i, s in title_page.hits if s >= NEAR_TITLE}
        keyword_ids = [uuid.UUID(i) for i, _ in keyword_page.hits]
        keyword_ranked = list(dict.fromkeys([*title_scores, *keyword_ids]))
        candidates = await self._candidates([*keyword_ranked, *semantic], region)
        trusted = set(keyword_ranked)
        semantic = [i for i in semantic if i in candidates and admits(filters, candidates[i])]
        keyword_ranked = [i for i in keyword_ranked if i in candidates]

        cfg = self.settings.discovery
        fused: dict[uuid.UUID, float] = {}
        for weight, hits in ((cfg.keyword_weight, keyword_ranked), (cfg.semantic_weight, semantic)):
            for rank, content_id in enumerate(hits, start=1):
                fused[content_id] = fused.get(content_id, 0.0) + weight / (cfg.rrf_k + rank)
        best = max(fused.values(), default=0.0)
        max_log_pop = max((math.log1p(max(c.popularity, 0.0)) for c in candidates.values()), default=0.0)
        query_key = normalize_title(request.query)
        short = len(request.query.split()) <= MAX_TITLE_WORDS
        scored: list[tuple[int, float, uuid.UUID]] = []
        for content_id, value in fused.items():
            item = candidates[content_id]
            relevance = value / best if best > 0 else 0.0
            final = (1 - PRIOR_WEIGHT) * relevance + PRIOR_WEIGHT * prior(item, max_log_pop)
            tier = 0
            if content_id in title_scores and short:
                tier = 2 if query_key in item.title_keys else 1
            scored.append((tier, final, content_id))
        scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
        top_untiered = max((f for t, f, _ in scored if t == 0), default=0.0)
        ranked = [(i, 1.0 if t == 2 else max(f, top_untiered) if t == 1 else f, t) for t, f, i in scored]

        offset = (request.page - 1) * request.page_size
        page = ranked[offset : offset + request.page_size]
        summaries = await self._summaries([i for i, _, _ in page], region)
        semantic_set = set(semantic)
        results = [
            SearchResult(
                **summaries[i].model_dump(),
                score=round(score, 6),
                match_reasons=self._reasons(
                    candidates[i], tier, i in trusted, i in semantic_set, intent, filters, request.query
                ),
            )
            for i, score, tier in page
            if i in summaries
        ]
        return SearchResponse(
            query=request.query,
            region=region,
            results=results,
            total=len(ranked),
            page=request.page,
            page_size=request.page_size,
            intent=intent,
            facets=facets([candidates[i] for i, _, _ in ranked[:FACET_CANDIDATES]]),
            took_ms=_ms(started),
            cached=False,
        )

    @staticmethod
    def _keyword_text(query: str, intent: Intent) -> str:
        """The words left once a confident intent took out its filters; blank browses the filtered set."""
        if intent.confidence < INTENT_FILTER_MIN_CONFIDENCE:
            return query
        return " ".join([*intent.people, *intent.keywords, *intent.themes])

    async def _semantic(self, query: str, filters: KeywordFilters) -> list[uuid.UUID]:
        try:
            vector = await self._embedder.embed_one(query)
            hits = await self._vectors.query(
                vector, SEMANTIC_CANDIDATES, vector_filter(filters), score_threshold=MIN_SIMILARITY
            )
        except Exception:
            # Keyword results alone beat an error page.
            logger.exception("semantic search failed; keyword results only")
            return []
        return [h.id for h in hits]

    async def _candidates(self, ids: Sequence[uuid.UUID], region: str) -> dict[uuid.UUID, _Candidate]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        day = _today()
        async with self._engine.connect() as conn:
            rows = await search_repository.candidate_rows(conn, wanted)
            found: dict[uuid.UUID, _Candidate] = {}
            for row in rows:
                cast = [name for name in row.cast_names or [] if isinstance(name, str)]
                keys = {row.title_normalized, normalize_title(row.original_title or "")} - {""}
                found[row.id] = _Candidate(
                    id=row.id,
                    title_keys=frozenset(keys),
                    year=row.year,
                    genres=list(row.genres or []),
                    keywords=frozenset(k.casefold() for k in row.keywords or []),
                    people=frozenset(p.casefold() for p in [*cast, *(row.directors or [])] if p),
                    rating=row.rating,
                    votes=row.vote_count or 0,
                    popularity=row.popularity or 0.0,
                    runtime=row.runtime_minutes,
                )
            offer_rows = await search_repository.watchable_offers(conn, list(found), region, day)
            for offer in offer_rows:
                found[offer.content_id].offers.add((offer.platform, offer.monetization))
        return found

    async def _summaries(self, ids: list[uuid.UUID], region: str) -> dict[uuid.UUID, ContentSummary]:
        if not ids:
            return {}
        async with self._engine.connect() as conn:
            items = await catalog.list_content(conn, ids)
            region_offers = await catalog.region_offers(conn, ids, region, _today())
        return {c.id: ContentSummary.from_catalog(c, region, region_offers[c.id]) for c in items}

    @staticmethod
    def _reasons(
        item: _Candidate,
        tier: int,
        keyword: bool,
        semantic: bool,
        intent: Intent,
        filters: KeywordFilters,
        query: str,
    ) -> list[str]:
        reasons: list[str] = []
        if tier == 2:
            reasons.append("title match")
        elif tier == 1:
            reasons.append("similar title")
        words = {w for w in normalize_query(query).split() if len(w) > 2}
        for word in sorted(words | {k.casefold() for k in intent.keywords}):
            if word in item.keywords:
                reasons.append(f"keyword: {word}")
        for person in intent.people:
            if person.casefold() in item.people:
                reasons.append(f"with {person}")
        if keyword and tier == 0 and not any(r.startswith("keyword: ") for r in reasons):
            reasons.append("keyword")
        if semantic:
            reasons.append("semantic")
        reasons.extend(f"genre: {g}" for g in filters.genres if g in item.genres)
        platforms = {p for p, _ in item.offers}
        reasons.extend(f"on {p}" for p in filters.platforms if p in platforms)
        monetization = {m for _, m in item.offers}
        reasons.extend(m for m in filters.monetization if m in monetization)
        return reasons


def _today() -> date:
    return datetime.now(UTC).date()


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
