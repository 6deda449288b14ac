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

People. A query that is exactly a person's name of two to five words ("Forest Whitaker"), and every
name the intent found ("with Tom Hanks"), becomes a filter on the people field when the index knows it:
the keyword side then lists that person's titles (by the residual words, else by the prior), and
the semantic side keeps only titles with them. A bare name has no meaning an embedding could use,
so it gets no semantic side at all.

"Like <title>". Referenced titles the intent resolved to catalog ids (the "seeds") steer the
semantic side: the query vector becomes `normalize((1 - SEED_WEIGHT) * query + SEED_WEIGHT * mean
of the seeds' stored vectors)`, and the seeds themselves never appear in the results. With no
residual words the keyword side stays empty rather than browsing by popularity.

Candidate metadata (genres, offers, ratings, people ...) comes from memory, written together with
the keyword index (`KeywordIndex.metadata`), and so do the final page's cards (`cards.summary`): a
search reads no SQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from media_gateway.catalog.schemas import normalize_title
from media_gateway.core.embeddings import Embedder
from media_gateway.core.settings import Settings
from media_gateway.core.vectors import VectorIndex
from media_gateway.discovery.intent import Intent, IntentParser, normalize_query
from media_gateway.discovery.schemas import ContentSummary
from media_gateway.discovery.search.analysis import parse_person_key
from media_gateway.discovery.search.cards import search_result, summary
from media_gateway.discovery.search.certification import certification_age
from media_gateway.discovery.search.documents import KeywordFilters, KeywordPage
from media_gateway.discovery.search.filtering import (
    INTENT_FILTER_MIN_CONFIDENCE,
    Candidate,
    PostFilter,
    admits,
    effective_filters,
    explicit_filters,
    facets,
    prior,
    vector_filter,
)
from media_gateway.discovery.search.keyword import KeywordIndex
from media_gateway.discovery.search.queries import NEAR_TITLE
from media_gateway.discovery.search_schemas import (
    Facets,
    RankedItem,
    SearchOutcome,
    SearchRequest,
    SearchResponse,
)

logger = logging.getLogger(__name__)

KEYWORD_CANDIDATES: Final = 200
SEMANTIC_CANDIDATES: Final = 200
TITLE_CANDIDATES: Final = 10
FACET_CANDIDATES: Final = 500
# Cosine similarity below this is noise for MiniLM: unrelated texts score around 0 to 0.15.
MIN_SIMILARITY: Final = 0.2
PRIOR_WEIGHT: Final = 0.1
# Longer inputs are descriptions, not titles, whatever tantivy's title tier says.
MAX_TITLE_WORDS: Final = 12
# Inputs of this many words may be a bare person's name. A single word is left to the keyword search
# (which matches names too): "love" must not turn into the films of someone credited as "Love".
MIN_NAME_WORDS: Final = 2
MAX_NAME_WORDS: Final = 5
SEED_WEIGHT: Final = 0.7
# Query embeddings kept in process: a repeated query skips the model.
EMBEDDING_CACHE_ENTRIES: Final = 4_096


@dataclass(frozen=True, slots=True)
class _People:
    """People the query names that the index knows, as keyword filter terms and display names."""

    terms: tuple[tuple[str, ...], ...] = ()
    names: tuple[frozenset[str], ...] = ()
    # Names as the query wrote them, for match reasons and to take out of the keyword text.
    typed: tuple[str, ...] = ()
    bare: bool = False


def _normalized(vector: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(np.float32)


class HybridSearch:
    def __init__(
        self,
        settings: Settings,
        keywords: KeywordIndex,
        embedder: Embedder,
        vectors: VectorIndex,
        intents: IntentParser,
    ) -> None:
        self.settings = settings
        self._keywords = keywords
        self._embedder = embedder
        self._vectors = vectors
        self._intents = intents
        self._embeddings: OrderedDict[str, NDArray[np.float32]] = OrderedDict()

    def region(self, region: str | None) -> str:
        return (region or self.settings.discovery.default_region).upper()

    async def parse(self, query: str) -> Intent:
        return await self._intents.parse(query)

    async def search(self, request: SearchRequest) -> SearchOutcome:
        """The ranked page for `request` and the head of the ranked list (for personalization),
        computed afresh (the cache sits in front, see `hybrid_runtime`)."""
        started = time.perf_counter()
        region = self.region(request.region)
        intent = await self._intents.parse(request.query)
        people = self._people(request.query, intent)
        if people.bare:
            # The name is the whole query: whatever the parser read into it is not a filter.
            filters = explicit_filters(request.filters, region)
            intent = intent.model_copy(update={"people": list(people.typed)})
        else:
            filters = effective_filters(request.filters, intent, region)
        filters = dataclasses.replace(filters, people=people.terms)
        max_age = certification_age(request.filters.max_certification)
        post = PostFilter(filters, max_age, region, people.names)
        seeds = list(dict.fromkeys(t.content_id for t in intent.referenced_titles if t.content_id))
        keyword_text = self._keyword_text(request.query, intent, people)
        browse_only = not keyword_text.strip()
        keyword_search = (
            self._keywords.search(keyword_text, filters, KEYWORD_CANDIDATES)
            if not (seeds and browse_only)
            else _no_hits()
        )
        semantic_search = (
            self._semantic(request.query, filters, seeds) if not people.bare else _no_semantic_hits()
        )
        title_filters = explicit_filters(request.filters, region)
        if keyword_text == request.query and filters == title_filters and not (seeds and browse_only):
            # The intent took nothing out (an unsure parse, no known names): the title search would be
            # the keyword search again, so its page is the keyword page's head.
            keyword_page, semantic = await asyncio.gather(keyword_search, semantic_search)
            title_page = KeywordPage(keyword_page.hits[:TITLE_CANDIDATES], keyword_page.total)
        else:
            keyword_page, title_page, semantic = await asyncio.gather(
                keyword_search,
                self._keywords.search(request.query, title_filters, TITLE_CANDIDATES),
                semantic_search,
            )
        # Ids stay text (as the engines return them) until the page: str keys hash and compare in C.
        excluded = {str(i) for i in seeds}
        title_scores = {i: s for i, s in title_page.hits if s >= NEAR_TITLE and i not in excluded}
        keyword_ids = [i for i, _ in keyword_page.hits]
        keyword_ranked = [i for i in dict.fromkeys([*title_scores, *keyword_ids]) if i not in excluded]
        candidates = self._candidates([*keyword_ranked, *semantic], region)
        trusted = set(keyword_ranked)
        semantic = [i for i in semantic if i in candidates and admits(post, candidates[i])]
        # Title hits passed only the explicit filters, and a title typed in full ranks first even when
        # it is also someone's name; the rest passed every filter in tantivy but what only the
        # metadata knows.
        title_post = dataclasses.replace(post, people=())
        keyword_ranked = [
            i
            for i in keyword_ranked
            if i in candidates and admits(title_post if i in title_scores else post, candidates[i])
        ]

        cfg = self.settings.discovery
        fused: dict[str, float] = {}
        for weight, hits in ((cfg.keyword_weight, keyword_ranked), (cfg.semantic_weight, semantic)):
            for rank, content_id in enumerate(hits, start=1):
                fused[content_id] = fused.get(content_id, 0.0) + weight / (cfg.rrf_k + rank)
        best = max(fused.values(), default=0.0)
        max_log_pop = max([c.meta.log_popularity for c in candidates.values()], default=0.0)
        query_key = normalize_title(request.query)
        short = len(request.query.split()) <= MAX_TITLE_WORDS
        scored: list[tuple[int, float, str]] = []
        for content_id, value in fused.items():
            item = candidates[content_id]
            relevance = value / best if best > 0 else 0.0
            final = (1 - PRIOR_WEIGHT) * relevance + PRIOR_WEIGHT * prior(item.meta, max_log_pop)
            tier = 0
            if content_id in title_scores and short:
                tier = 2 if query_key in item.meta.title_keys else 1
            scored.append((tier, final, content_id))
        scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
        top_untiered = max((f for t, f, _ in scored if t == 0), default=0.0)
        ranked = [(i, 1.0 if t == 2 else max(f, top_untiered) if t == 1 else f, t) for t, f, i in scored]

        offset = (request.page - 1) * request.page_size
        page = ranked[offset : offset + request.page_size]
        head = max(cfg.personalization_candidates, offset + request.page_size)
        semantic_set = set(semantic)
        explain = _MatchReasons.of(request.query, intent, people, filters)
        reasons = {
            i: explain.why(candidates[i], tier, i in trusted, i in semantic_set)
            for i, _, tier in ranked[:head]
        }
        day = _today()
        results = [
            search_result(candidates[i].meta, region, day, round(s, 6), reasons[i]) for i, s, _ in page
        ]
        response = SearchResponse(
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
        ranking = [
            RankedItem(id=candidates[i].meta.id, score=round(s, 6), reasons=reasons[i])
            for i, s, _ in ranked[:head]
        ]
        return SearchOutcome(response=response, ranking=ranking)

    async def nothing(self, request: SearchRequest) -> SearchOutcome:
        """The empty answer for a request no title can satisfy (a user subscribed to nothing asking
        for only their services), with the intent still parsed."""
        started = time.perf_counter()
        intent = await self._intents.parse(request.query)
        response = SearchResponse(
            query=request.query,
            region=self.region(request.region),
            results=[],
            total=0,
            page=request.page,
            page_size=request.page_size,
            intent=intent,
            facets=Facets(),
            took_ms=_ms(started),
            cached=False,
        )
        return SearchOutcome(response=response, ranking=[])

    def _people(self, query: str, intent: Intent) -> _People:
        """Names the intent found, or the whole query when it is one, that the index knows."""
        found: list[tuple[str, list[str]]] = []
        for name in intent.people:
            terms = self._keywords.person_terms(name)
            if terms:
                found.append((name, terms))
        bare = False
        if not found and not intent.people and MIN_NAME_WORDS <= len(query.split()) <= MAX_NAME_WORDS:
            terms = self._keywords.person_terms(query)
            if terms:
                found.append((query.strip(), terms))
                bare = True
        return _People(
            terms=tuple(tuple(terms) for _, terms in found),
            names=tuple(frozenset(parse_person_key(t)[2].casefold() for t in terms) for _, terms in found),
            typed=tuple(name for name, _ in found),
            bare=bare,
        )

    @staticmethod
    def _keyword_text(query: str, intent: Intent, people: _People) -> str:
        """The words left once a confident intent took out its filters, and known people their
        names; blank browses the filtered set."""
        if people.bare:
            return ""
        if intent.confidence < INTENT_FILTER_MIN_CONFIDENCE and not people.typed:
            return query
        filtered = set(people.typed)
        names = [p for p in intent.people if p not in filtered]
        return " ".join([*names, *intent.keywords, *intent.themes])

    async def _query_vector(self, query: str) -> NDArray[np.float32]:
        key = normalize_query(query)
        cached = self._embeddings.get(key)
        if cached is not None:
            self._embeddings.move_to_end(key)
            return cached
        vector = await self._embedder.embed_one(query)
        self._embeddings[key] = vector
        if len(self._embeddings) > EMBEDDING_CACHE_ENTRIES:
            self._embeddings.popitem(last=False)
        return vector

    async def _semantic(self, query: str, filters: KeywordFilters, seeds: Sequence[uuid.UUID]) -> list[str]:
        try:
            if seeds:
                vector, seed_vectors = await asyncio.gather(
                    self._query_vector(query), self._vectors.vectors(seeds)
                )
                if seed_vectors:
                    unit = [_normalized(np.asarray(v)) for v in seed_vectors.values()]
                    mean = _normalized(np.mean(unit, axis=0))
                    vector = _normalized((1 - SEED_WEIGHT) * vector + SEED_WEIGHT * mean)
            else:
                vector = await self._query_vector(query)
            return await self._vectors.nearest_ids(
                vector, SEMANTIC_CANDIDATES, vector_filter(filters, seeds), score_threshold=MIN_SIMILARITY
            )
        except Exception:
            # Keyword results alone beat an error page.
            logger.exception("semantic search failed; keyword results only")
            return []

    def _candidates(self, ids: Sequence[str], region: str) -> dict[str, Candidate]:
        metas = self._keywords.metadata_by_key(dict.fromkeys(ids))
        return {i: Candidate(meta=m, offers=m.region_offers(region)) for i, m in metas.items()}

    async def summaries(
        self, ids: list[uuid.UUID], region: str, day: date | None = None
    ) -> dict[uuid.UUID, ContentSummary]:
        """Result cards of `ids` in `region` with the offers watchable on `day` (default today, UTC), from
        the index's memory: a card changes exactly when the indexed title does. Ids the index does not
        hold (deleted titles) are left out."""
        on = day or _today()
        return {i: summary(meta, region, on) for i, meta in self._keywords.metadata(ids).items()}


@dataclass(frozen=True, slots=True)
class _MatchReasons:
    """Why candidates matched one search. What depends only on the search is worked out once: the
    ranked head (100 titles) asks for its reasons on every uncached search."""

    # The query's words and the intent's keywords, folded.
    words: frozenset[str]
    # (as shown, folded, typed in the query): everyone the intent or the query names.
    people: tuple[tuple[str, str, bool], ...]
    filters: KeywordFilters

    @classmethod
    def of(cls, query: str, intent: Intent, people: _People, filters: KeywordFilters) -> _MatchReasons:
        words = {w for w in normalize_query(query).split() if len(w) > 2}
        words |= {k.casefold() for k in intent.keywords}
        named = dict.fromkeys([*intent.people, *people.typed])
        return cls(frozenset(words), tuple((p, p.casefold(), p in people.typed) for p in named), filters)

    def why(self, item: Candidate, tier: int, keyword: bool, semantic: bool) -> list[str]:
        meta = item.meta
        reasons: list[str] = []
        if tier == 2:
            reasons.append("title match")
        elif tier == 1:
            reasons.append("similar title")
        matched = self.words & meta.keywords
        if matched:
            reasons.extend(f"keyword: {word}" for word in sorted(matched))
        for person, folded, typed in self.people:
            if typed or folded in meta.people:
                reasons.append(f"with {person}")
        if keyword and tier == 0 and not reasons:
            reasons.append("keyword")
        if semantic:
            reasons.append("semantic")
        filters = self.filters
        if filters.genres:
            reasons.extend(f"genre: {g}" for g in filters.genres if g in meta.genres)
        if filters.platforms:
            reasons.extend(f"on {p}" for p in filters.platforms if p in item.offers.platforms)
        if filters.monetization:
            reasons.extend(m for m in filters.monetization if m in item.offers.monetization)
        return reasons


async def _no_hits() -> KeywordPage:
    return KeywordPage([], 0)


async def _no_semantic_hits() -> list[str]:
    return []


def _today() -> date:
    return datetime.now(UTC).date()


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
