"""Personalized re-ranking of a (cached, user-agnostic) search outcome for one signed-in user.

final = (1 - w) * relevance + w * affinity over the head of the ranked list (the best
`personalization_candidates` by relevance, already in [0, 1]), so a title the user is likely to
enjoy can climb onto page 1; the tail keeps its order. w is the weight of the user's A/B variant
when SONA sends one, else `personalization_weight`.

Affinities are cached in Redis per (user, content) for `personalization_cache_ttl_sec`, with the
user's weight and experiment alongside: one MGET, and only the misses go to SONA, in one call.
SONA slow (past `personalization_budget_ms`), failing or behind an open breaker means the
unpersonalized answer with the same status, and `discovery_personalization_fallbacks_total{reason}`
counts it. A call that missed the budget is not cancelled: it finishes in the background (at most
`MAX_BACKGROUND_SCORES` at a time) and fills the affinity cache, so the user's next search is
personalized from Redis without waiting on SONA.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter
from redis.exceptions import RedisError

from media_gateway.core.metrics import metric_set
from media_gateway.core.redis import redis_key
from media_gateway.core.security.tokens import Principal
from media_gateway.core.settings import Settings
from media_gateway.discovery.clients import Affinities, PersonalizationUnavailable, SonaClient
from media_gateway.discovery.schemas import ContentSummary
from media_gateway.discovery.search_schemas import Experiment

logger = logging.getLogger(__name__)

CACHE_TIMEOUT_SEC: Final = 0.05
MAX_BACKGROUND_SCORES: Final = 64
_REDIS_ERRORS = (RedisError, OSError, TimeoutError)
VARIANT: Final = "variant"

SummaryLoader = Callable[[list[uuid.UUID], str], Awaitable[dict[uuid.UUID, ContentSummary]]]


@dataclass(frozen=True)
class PersonalizationMetrics:
    fallbacks: Counter
    applied: Counter

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> PersonalizationMetrics:
        return metric_set(registry, cls, cls._build)

    @classmethod
    def _build(cls, registry: CollectorRegistry) -> PersonalizationMetrics:
        return cls(
            fallbacks=Counter(
                "discovery_personalization_fallbacks",
                "Signed-in searches answered unpersonalized because SONA could not score in time.",
                ["reason"],
                registry=registry,
            ),
            applied=Counter(
                "discovery_personalization_applied", "Searches re-ranked for the user.", registry=registry
            ),
        )


class Personalizer:
    def __init__(
        self, settings: Settings, redis: aioredis.Redis, sona: SonaClient, registry: CollectorRegistry
    ) -> None:
        self._settings = settings
        self._redis = redis
        self._sona = sona
        self.metrics = PersonalizationMetrics.for_registry(registry)
        self._budget = settings.discovery.personalization_budget_ms / 1000
        self._background: set[asyncio.Task[Affinities]] = set()

    def _key(self, user: uuid.UUID, part: str) -> str:
        return redis_key(self._settings, "discovery", "affinity", str(user), part)

    async def apply(
        self,
        outcome: dict[str, Any],
        principal: Principal,
        request_page: int,
        request_page_size: int,
        load_summaries: SummaryLoader,
    ) -> dict[str, Any]:
        """The response of `outcome` (a `SearchOutcome` as JSON data, as the cache holds it) for this
        user, as JSON data: plain dicts end to end, since pydantic round trips cost more than the rest."""
        response: dict[str, Any] = outcome["response"]
        ranking: list[dict[str, Any]] = outcome["ranking"]
        user = principal.user_id
        cfg = self._settings.discovery
        head = ranking[: cfg.personalization_candidates]
        if user is None or not head:
            return response
        ids = [uuid.UUID(item["id"]) for item in head]
        try:
            affinities = await self._affinities(user, principal.token, ids)
        except PersonalizationUnavailable as exc:
            self.metrics.fallbacks.labels(reason=exc.reason).inc()
            logger.warning(
                "personalization unavailable; unpersonalized results",
                extra={"reason": exc.reason, "error": str(exc)},
            )
            return response
        weight = affinities.weight if affinities.weight is not None else cfg.personalization_weight
        self.metrics.applied.inc()
        experiment = affinities.experiment.model_dump() if affinities.experiment else None
        personalized = {**response, "personalized": weight > 0, "experiment": experiment}
        if weight <= 0:
            return personalized

        scores = affinities.scores
        blended = [
            (item, (1 - weight) * item["score"] + weight * scores.get(content_id, 0.0))
            for item, content_id in zip(head, ids, strict=True)
        ]
        # Stable: equal blends keep their relevance order.
        blended.sort(key=lambda pair: pair[1], reverse=True)
        ranked = [*blended, *((item, item["score"]) for item in ranking[len(head) :])]
        offset = (request_page - 1) * request_page_size
        page = ranked[offset : offset + request_page_size]
        known = {r["id"]: r for r in response["results"]}
        missing = [uuid.UUID(item["id"]) for item, _ in page if item["id"] not in known]
        loaded = await load_summaries(missing, response["region"]) if missing else {}
        cards = {str(i): card.model_dump(mode="json") for i, card in loaded.items()}
        results: list[dict[str, Any]] = []
        for item, score in page:
            if item["id"] in known:
                results.append({**known[item["id"]], "score": round(score, 6)})
            elif item["id"] in cards:
                card = {**cards[item["id"]], "score": round(score, 6), "match_reasons": item["reasons"]}
                results.append(card)
        return {**personalized, "results": results}

    async def _affinities(self, user: uuid.UUID, token: str, ids: list[uuid.UUID]) -> Affinities:
        variant_key = self._key(user, VARIANT)
        keys = [variant_key, *(self._key(user, str(i)) for i in ids)]
        cached: list[bytes | str | None] = [None] * len(keys)
        try:
            async with asyncio.timeout(CACHE_TIMEOUT_SEC):
                cached = list(await self._redis.mget(keys))
        except _REDIS_ERRORS as exc:
            logger.warning("affinity cache read failed", extra={"error": repr(exc)})
        scores: dict[uuid.UUID, float] = {}
        misses: list[uuid.UUID] = []
        for content_id, raw in zip(ids, cached[1:], strict=True):
            if raw is None:
                misses.append(content_id)
            else:
                scores[content_id] = float(raw)
        variant = orjson.loads(cached[0]) if cached[0] is not None else None
        if not misses and isinstance(variant, dict):
            experiment = variant.get("experiment")
            return Affinities(
                scores=scores,
                weight=variant.get("weight"),
                experiment=Experiment.model_validate(experiment) if experiment else None,
            )
        wanted = misses or ids
        task = asyncio.create_task(self._fetch(user, token, wanted))
        try:
            async with asyncio.timeout(self._budget):
                fresh = await asyncio.shield(task)
        except TimeoutError as exc:
            self._finish_in_background(task)
            raise PersonalizationUnavailable("timeout", "SONA answered too slowly") from exc
        scores |= {i: fresh.scores.get(i, 0.0) for i in wanted}
        return Affinities(scores=scores, weight=fresh.weight, experiment=fresh.experiment)

    async def _fetch(self, user: uuid.UUID, token: str, ids: list[uuid.UUID]) -> Affinities:
        fresh = await self._sona.score(token, ids)
        await self._store(user, {i: fresh.scores.get(i, 0.0) for i in ids}, fresh)
        return fresh

    def _finish_in_background(self, task: asyncio.Task[Affinities]) -> None:
        if len(self._background) >= MAX_BACKGROUND_SCORES:
            task.cancel()
            return
        self._background.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[Affinities]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.info("late personalization score failed", extra={"error": repr(task.exception())})

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()

    async def _store(self, user: uuid.UUID, scores: dict[uuid.UUID, float], fresh: Affinities) -> None:
        ttl = self._settings.discovery.personalization_cache_ttl_sec
        variant = {
            "weight": fresh.weight,
            "experiment": fresh.experiment.model_dump() if fresh.experiment else None,
        }
        try:
            async with asyncio.timeout(CACHE_TIMEOUT_SEC):
                pipe = self._redis.pipeline(transaction=False)
                pipe.set(self._key(user, VARIANT), orjson.dumps(variant), ex=ttl)
                for content_id, score in scores.items():
                    # A title SONA did not score is cached as 0 too, so it is not asked again.
                    pipe.set(self._key(user, str(content_id)), repr(score), ex=ttl)
                await pipe.execute()
        except _REDIS_ERRORS as exc:
            logger.warning("affinity cache write failed", extra={"error": repr(exc)})
