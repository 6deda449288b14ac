"""Recommendations, similar titles and the personalization score, from the in-memory models."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from media_gateway.catalog.schemas import MONETIZATION_RANK
from media_gateway.core.errors import ProblemError
from media_gateway.core.security.tokens import Principal
from media_gateway.core.vectors import VectorFilter, VectorIndexError
from media_gateway.sona.experiments import ExperimentService
from media_gateway.sona.explanations import context_factors, explain
from media_gateway.sona.models import SOURCE_WEIGHTS, BlendedItem, apply_boost, blend, mmr
from media_gateway.sona.repository import catalog
from media_gateway.sona.repository.catalog import OfferRow, SummaryRow
from media_gateway.sona.runtime import SonaRuntime
from media_gateway.sona.schemas import (
    ContentSummary,
    ExperimentRef,
    OfferSummary,
    Recommendation,
    RecommendationRequest,
    RecommendationResponse,
    SimilarItem,
    SimilarResponse,
)
from media_gateway.sona.state import CatalogState, UserState, catalog_vectors

COLD_START_WEIGHTS: dict[str, float] = {
    "trending": 0.40,
    "onboarding": 0.30,
    "graph": 0.10,
    "content": 0.10,
    "context": 0.10,
}
SIMILAR_WEIGHTS: dict[str, float] = {"collaborative": 0.35, "content": 0.35, "graph": 0.30}
# The score endpoint has no context; the other three keep their relative weights.
_SCORE_WEIGHTS = {k: SOURCE_WEIGHTS[k] for k in ("collaborative", "content", "graph")}
_SCORE_TOTAL = sum(_SCORE_WEIGHTS.values())
_MMR_INLINE_MAX = 80


def _top(values: np.ndarray, mask: np.ndarray, k: int) -> list[int]:
    """Positions of the k largest positive values where mask holds."""
    eligible = np.flatnonzero(mask & (values > 0))
    if eligible.size > k:
        eligible = eligible[np.argpartition(-values[eligible], k - 1)[:k]]
    return [int(i) for i in eligible[np.argsort(-values[eligible], kind="stable")]]


def _summary(item: SummaryRow, region: str, offers: Iterable[OfferRow]) -> ContentSummary:
    ordered = sorted(
        offers, key=lambda o: (MONETIZATION_RANK.get(o.monetization, 9), o.price or 0, o.platform)
    )
    return ContentSummary(
        id=item.id,
        kind=item.kind,
        title=item.title,
        year=item.year,
        genres=item.genres,
        runtime_minutes=item.runtime_minutes,
        rating=item.rating,
        popularity=item.popularity,
        certification=item.certifications.get(region),
        poster=item.poster,
        directors=item.directors,
        region=region,
        offers=[
            OfferSummary(
                platform=o.platform,
                monetization=o.monetization,
                quality=o.quality,
                price=o.price,
                currency=o.currency,
                deep_link=o.deep_link,
            )
            for o in ordered
        ],
    )


class Recommender:
    def __init__(self, runtime: SonaRuntime, experiments: ExperimentService) -> None:
        self.runtime = runtime
        self.experiments = experiments
        self.cfg = runtime.cfg

    # --- shared ------------------------------------------------------------------------------------

    async def _summaries(
        self, ids: Sequence[str], region: str, platforms: Sequence[str] | None, require_offer: bool
    ) -> dict[str, ContentSummary]:
        uuids = [uuid.UUID(i) for i in ids]
        async with self.runtime.engine.connect() as conn:
            found = await catalog.cards(conn, uuids, region, datetime.now(UTC).date())
        wanted = set(platforms) if platforms else None
        out: dict[str, ContentSummary] = {}
        for item, offers in found.values():
            own = [o for o in offers if wanted is None or o.platform in wanted]
            if require_offer and not own:
                continue
            out[str(item.id)] = _summary(item, region, own)
        return out

    async def _content_candidates(
        self,
        vector: np.ndarray,
        limit: int,
        region: str | None,
        platforms: Sequence[str] | None,
        exclude: Collection[str],
    ) -> dict[str, float]:
        """Nearest titles to `vector` in the vector index, filtered there by region and platform.

        Excluded titles are over-fetched and dropped here: an id list in the filter costs more
        (thousands of UUID conversions per request) than the extra hits."""
        match: dict[str, Any] = {}
        if region:
            match["regions"] = region
        if platforms:
            match["platforms"] = list(platforms)
        try:
            hits = await self.runtime.vectors.query(
                vector,
                limit=limit + len(exclude),
                filter=VectorFilter(match=match) if match else None,
                with_payload=False,
            )
        except (VectorIndexError, ValueError):
            return {}
        found: dict[str, float] = {}
        for hit in hits:
            key = str(hit.id)
            if key not in exclude:
                found[key] = hit.score
                if len(found) == limit:
                    break
        return found

    # --- recommendations ---------------------------------------------------------------------------

    async def recommend(self, principal: Principal, request: RecommendationRequest) -> RecommendationResponse:
        user_id = principal.user_id
        assert user_id is not None
        state = await self.runtime.user_state(user_id, principal.token)
        cat = state.catalog
        cold = state.engaged <= self.cfg.cold_start_max_interactions
        onboarding = await self.runtime.onboarding(str(user_id), principal.token) if cold else None

        assigned = await self.experiments.variant_for(self.cfg.recommendations_experiment_key, user_id)
        config: dict[str, Any] = dict(assigned[1].get("config", {})) if assigned else {}
        weights = dict(COLD_START_WEIGHTS if cold else SOURCE_WEIGHTS)
        overrides = config.get("weights")
        if isinstance(overrides, dict):
            weights.update({k: float(v) for k, v in overrides.items() if isinstance(v, int | float)})
        lam = config.get("mmr_lambda", self.cfg.mmr_lambda)
        lam = float(lam) if isinstance(lam, int | float) and 0 <= lam <= 1 else self.cfg.mmr_lambda

        platforms = request.platforms
        if platforms is None and cold and onboarding is not None and onboarding.platforms:
            platforms = list(onboarding.platforms)
        display_region = (
            request.region or (onboarding.region if onboarding else None) or self.cfg.default_region
        )
        filter_region = request.region or (display_region if platforms or cold else None)
        if filter_region is None and not platforms:
            mask = np.ones(cat.size, dtype=bool)
        else:
            mask = cat.mask(filter_region, platforms).copy()
        excluded = (
            state.seen
            if request.exclude_watched
            else frozenset(c for c, item in state.items.items() if item.dismissed)
        )
        for cid in excluded:
            i = cat.index.get(cid)
            if i is not None:
                mask[i] = False

        k = self.cfg.candidates_per_source
        per_source: dict[str, dict[str, float]] = {}
        for source, values in (("collaborative", state.collaborative), ("graph", state.graph)):
            if weights.get(source, 0) > 0 and values.size:
                picked = _top(values, mask, k)
                if picked:
                    per_source[source] = {cat.rows[i].id: float(values[i]) for i in picked}
        if weights.get("content", 0) > 0 and state.preference is not None:
            hits = await self._content_candidates(state.preference, k, filter_region, platforms, excluded)
            kept = {c: s for c, s in hits.items() if (i := cat.index.get(c)) is not None and mask[i]}
            if kept:
                per_source["content"] = kept
        favourites = {g.casefold() for g in (onboarding.favourite_genres if onboarding else ())}
        if cold:
            picked = _top(cat.popularity + 1e-6, mask, k)
            per_source["trending"] = {cat.rows[i].id: float(cat.popularity[i]) for i in picked}
            if favourites:
                overlap = np.array(
                    [len(g & favourites) / len(favourites) for g in cat.genres], dtype=np.float32
                )
                boosted = overlap * (0.5 + 0.5 * cat.popularity)
                chosen = _top(boosted, mask, k)
                if chosen:
                    per_source["onboarding"] = {cat.rows[i].id: float(boosted[i]) for i in chosen}
        candidates = {c for scores in per_source.values() for c in scores}
        factors: dict[str, float] = {}
        if request.context is not None and candidates:
            factors = context_factors(cat, candidates, request.context)
            per_source["context"] = factors

        blended = blend(per_source, weights)
        pool = blended[: max(3 * request.limit, 60)]
        if state.adapter is not None and state.preference is not None and pool:
            pool = self._lora_boost(cat, state, pool)
        vectors = catalog_vectors(cat, (item.content_id for item in pool))
        take = min(len(pool), request.limit + 10)
        if len(pool) > _MMR_INLINE_MAX:
            diverse = await asyncio.to_thread(mmr, pool, vectors, lam=lam, limit=take)
        else:
            # A few dozen items: cheaper here than the hop to a thread.
            diverse = mmr(pool, vectors, lam=lam, limit=take)

        summaries = await self._summaries(
            [item.content_id for item in diverse],
            display_region,
            platforms,
            require_offer=filter_region is not None or bool(platforms),
        )
        recommendations = []
        for item in diverse:
            summary = summaries.get(item.content_id)
            if summary is None:
                continue
            sources = self._sources(item, factors)
            recommendations.append(
                Recommendation(
                    content=summary,
                    score=round(float(item.score), 6),
                    sources=sources,
                    explanation=explain(
                        cat, state, item, sources, request.context, display_region, favourites
                    ),
                )
            )
            if len(recommendations) == request.limit:
                break
        experiment = None
        if assigned is not None:
            experiment = ExperimentRef(
                id=assigned[0].id, key=assigned[0].key, variant=str(assigned[1]["name"])
            )
        return RecommendationResponse(
            recommendations=recommendations,
            generated_at=datetime.now(UTC),
            ttl_seconds=self.cfg.recommendations_ttl_sec,
            cold_start=cold,
            experiment=experiment,
        )

    def _lora_boost(self, cat: CatalogState, state: UserState, pool: list[BlendedItem]) -> list[BlendedItem]:
        assert state.adapter is not None
        assert state.preference is not None
        positions = [cat.index[item.content_id] for item in pool]
        adapted = state.adapter.apply(cat.vectors[positions])
        similarity = adapted @ state.preference
        boost = self.cfg.lora_boost
        factors = {
            item.content_id: 1.0 + boost * max(0.0, float(sim)) if cat.has_vector[pos] else 1.0
            for item, pos, sim in zip(pool, positions, similarity, strict=True)
        }
        return apply_boost(pool, factors)

    @staticmethod
    def _sources(item: BlendedItem, factors: Mapping[str, float]) -> list[str]:
        ranked = sorted(item.sources.items(), key=lambda kv: (-kv[1], kv[0]))
        # Context only adjusts what the others proposed; it is named when it actually helped.
        return [s for s, _ in ranked if s != "context" or factors.get(item.content_id, 1.0) > 1.0]

    # --- similar -----------------------------------------------------------------------------------

    async def similar(self, content_id: uuid.UUID, limit: int, region: str | None) -> SimilarResponse:
        model = self.runtime.model
        cat = model.catalog
        key = str(content_id)
        if key not in cat.index:
            async with self.runtime.engine.connect() as conn:
                if not await catalog.existing_ids(conn, [content_id]):
                    raise ProblemError(404, f"no content {content_id}")
        k = max(limit * 3, 30)
        per_source: dict[str, dict[str, float]] = {}
        if model.ease is not None:
            found = dict(model.ease.similar(key, k))
            if found:
                per_source["collaborative"] = found
        if model.graph is not None:
            hits = model.graph.recommend({key: 1.0}, hops=1, limit=k)
            if hits:
                per_source["graph"] = {h.content_id: h.score for h in hits}
        vector = cat.vector(key)
        if vector is None:
            fetched = (await self.runtime.vectors.vectors([content_id])).get(content_id)
            vector = np.asarray(fetched, dtype=np.float32) if fetched is not None else None
        if vector is not None:
            content = await self._content_candidates(vector, k, None, None, {key})
            if content:
                per_source["content"] = content
        ranked = [item for item in blend(per_source, SIMILAR_WEIGHTS) if item.content_id != key][: limit + 5]
        shown_region = region or self.cfg.default_region
        summaries = await self._summaries(
            [i.content_id for i in ranked], shown_region, None, require_offer=False
        )
        similar = []
        for item in ranked:
            summary = summaries.get(item.content_id)
            if summary is None:
                continue
            sources = self._sources(item, {})
            names = {
                "collaborative": "watched by the same viewers",
                "content": "similar story and tone",
                "graph": "shares genres, cast or crew",
            }
            similar.append(
                SimilarItem(
                    content=summary,
                    score=round(float(item.score), 6),
                    sources=sources,
                    explanation="; ".join(names[s] for s in sources if s in names).capitalize(),
                )
            )
            if len(similar) == limit:
                break
        return SimilarResponse(content_id=content_id, similar=similar)

    # --- personalization score ---------------------------------------------------------------------

    async def score(self, principal: Principal, content_ids: Sequence[uuid.UUID]) -> dict[str, Any]:
        """The body of a `ScoreResponse`, built with numpy (the hot path of every personalized search)."""
        user_id = principal.user_id
        assert user_id is not None
        state = await self.runtime.user_state(user_id, principal.token)
        cat = state.catalog
        weight: float | None = None
        experiment: dict[str, str] | None = None
        assigned = await self.experiments.variant_for(self.cfg.search_experiment_key, user_id)
        if assigned is not None:
            raw = assigned[1].get("config", {}).get("weight")
            if isinstance(raw, int | float) and 0 <= raw <= 1:
                weight = float(raw)
            experiment = {"id": str(assigned[0].id), "variant": str(assigned[1]["name"])}
        keys = [str(c) for c in content_ids]
        positions = np.array([cat.index.get(k, -1) for k in keys], dtype=np.int64)
        known = positions >= 0
        picked = np.where(known, positions, 0)
        parts = {
            name: np.where(known, values[picked], 0.0).astype(np.float64)
            if values.size
            else np.zeros(len(keys))
            for name, values in (
                ("collaborative", state.collaborative),
                ("content", state.content),
                ("graph", state.graph),
            )
        }
        total = sum(_SCORE_WEIGHTS[name] * part for name, part in parts.items()) / _SCORE_TOTAL
        totals = np.clip(total, 0.0, 1.0).tolist()
        c, t, g = parts["collaborative"].tolist(), parts["content"].tolist(), parts["graph"].tolist()
        return {
            "scores": dict(zip(keys, totals, strict=True)),
            "components": {
                k: {"collaborative": c[i], "content": t[i], "graph": g[i]} for i, k in enumerate(keys)
            },
            "weight": weight,
            "experiment": experiment,
        }
