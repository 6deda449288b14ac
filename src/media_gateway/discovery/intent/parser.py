"""`IntentParser`: the LLM first when one is configured (cached in Redis), the rules always.

parse(query) ─ normalize ─┬─ no LLM ──────────────────────────────► rules
                          └─ Redis hit ───────────────────────────► cached intent
                             miss ─ LLM ─┬─ ok ─ merge rules ─ cache if confident
                                         └─ failed ─────────────► rules (not cached)
then referenced titles are resolved to catalog ids (never cached: the catalog moves).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import httpx
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError
from redis.exceptions import RedisError

from media_gateway.core.http import HttpClientFactory
from media_gateway.core.metrics import metric_set
from media_gateway.core.redis import redis_key
from media_gateway.core.settings import Settings
from media_gateway.discovery.intent.llm import LlmIntentClient, LlmIntentError
from media_gateway.discovery.intent.rules import RuleBasedIntentParser, normalize_query, smart_title
from media_gateway.discovery.intent.schemas import Intent, ReferencedTitle
from media_gateway.discovery.intent.titles import TitleResolver

logger = logging.getLogger(__name__)

# A cache slower than a rules parse is worth little; past this a Redis call counts as a miss.
CACHE_TIMEOUT_SEC: Final = 0.25
RESOLVE_TIMEOUT_SEC: Final = 1.0
_REDIS_ERRORS = (RedisError, OSError, TimeoutError)


@dataclass(frozen=True)
class IntentMetrics:
    cache_hits: Counter
    cache_misses: Counter
    llm_failures: Counter

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> IntentMetrics:
        """Parsers of one app share one set."""
        return metric_set(registry, cls, cls._build)

    @classmethod
    def _build(cls, registry: CollectorRegistry) -> IntentMetrics:
        return cls(
            cache_hits=Counter(
                "mg_intent_cache_hits", "Intent parses answered from Redis.", registry=registry
            ),
            cache_misses=Counter(
                "mg_intent_cache_misses",
                "Intent parses not in Redis (the LLM was asked).",
                registry=registry,
            ),
            llm_failures=Counter(
                "mg_intent_llm_failures",
                "LLM intent parses that failed and fell back to the rules, by reason.",
                ["reason"],
                registry=registry,
            ),
        )


def cache_key(settings: Settings, normalized_query: str) -> str:
    digest = hashlib.sha256(normalized_query.encode("utf-8")).hexdigest()
    return redis_key(settings, "discovery", "intent", digest)


def merge(llm: Intent, rules: Intent) -> Intent:
    """The LLM's reading, with the gaps it left filled from the rules.

    Lists the rules read precisely (platforms, genres, moods, monetization) are unions; fuzzier
    ones (people, titles, themes, keywords) and single values only fill what the LLM left empty.
    """
    update: dict[str, Any] = {}
    for name in ("platforms", "genres", "moods", "monetization"):
        ours: list[Any] = getattr(llm, name)
        extra = [v for v in getattr(rules, name) if v not in ours]
        if extra:
            update[name] = [*ours, *extra]
    for name in ("people", "referenced_titles", "themes", "keywords"):
        if not getattr(llm, name) and getattr(rules, name):
            update[name] = getattr(rules, name)
    for name in ("max_runtime_minutes", "kind"):
        if getattr(llm, name) is None and getattr(rules, name) is not None:
            update[name] = getattr(rules, name)
    year_from = llm.year_from if llm.year_from is not None else rules.year_from
    year_to = llm.year_to if llm.year_to is not None else rules.year_to
    if (year_from, year_to) != (llm.year_from, llm.year_to) and (
        year_from is None or year_to is None or year_from <= year_to
    ):
        update |= {"year_from": year_from, "year_to": year_to}
    if not update:
        return llm.model_copy(update={"source": "llm"})
    # Validated again: the union of two valid intents is rechecked rather than trusted.
    return Intent.model_validate(llm.model_dump() | update | {"source": "llm+rules"})


class IntentParser:
    """Parses search queries into `Intent`s; one per app, shared by all requests."""

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis | None,
        http: HttpClientFactory | httpx.AsyncClient | None,
        registry: CollectorRegistry,
        title_resolver: TitleResolver | None = None,
        *,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = IntentMetrics.for_registry(registry)
        self.rules = RuleBasedIntentParser(today=today)
        self._redis = redis
        self._resolver = title_resolver
        self._llm: LlmIntentClient | None = None
        if settings.llm.url:
            if redis is None:
                raise ValueError("the LLM intent path needs Redis for its cache")
            self._llm = LlmIntentClient(settings.llm, http, today=today)
        # Concurrent parses of one uncached query share a single LLM call.
        self._inflight: dict[str, asyncio.Task[Intent]] = {}

    @property
    def uses_llm(self) -> bool:
        return self._llm is not None

    async def aclose(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        if self._llm is not None:
            await self._llm.aclose()

    async def parse(self, query: str) -> Intent:
        normalized = normalize_query(query)
        if not normalized:
            return Intent(source="rules")
        if self._llm is None:
            intent = self.rules.parse(normalized)
        else:
            intent = await self._parse_with_llm(normalized)
        return await self._resolve_titles(intent)

    async def _parse_with_llm(self, normalized: str) -> Intent:
        key = cache_key(self.settings, normalized)
        cached = await self._cache_get(key)
        if cached is not None:
            self.metrics.cache_hits.inc()
            return cached.model_copy(update={"source": "cache"})
        self.metrics.cache_misses.inc()
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._ask_llm(key, normalized))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        # Shielded: a caller that gives up does not cancel the answer the others are waiting for.
        return await asyncio.shield(task)

    async def _ask_llm(self, key: str, normalized: str) -> Intent:
        assert self._llm is not None
        rules = self.rules.parse(normalized)
        try:
            llm = await self._llm.parse(normalized)
        except LlmIntentError as exc:
            self._fail(exc.reason, exc)
            return rules
        except Exception as exc:  # a bug in parsing the answer must not fail the search
            self._fail("error", exc)
            return rules
        intent = merge(llm, rules)
        if intent.confidence >= self.settings.discovery.intent_cache_min_confidence:
            await self._cache_set(key, intent)
        return intent

    def _fail(self, reason: str, exc: Exception) -> None:
        self.metrics.llm_failures.labels(reason=reason).inc()
        logger.warning(
            "LLM intent parse failed, using the rules", extra={"reason": reason, "error": str(exc)}
        )

    async def _cache_get(self, key: str) -> Intent | None:
        assert self._redis is not None
        try:
            async with asyncio.timeout(CACHE_TIMEOUT_SEC):
                raw = await self._redis.get(key)
        except _REDIS_ERRORS as exc:
            logger.warning("intent cache read failed", extra={"error": repr(exc)})
            return None
        if raw is None:
            return None
        try:
            return Intent.model_validate_json(raw)
        except ValidationError:
            # Written by an older schema: parse afresh, and the new answer overwrites it.
            return None

    async def _cache_set(self, key: str, intent: Intent) -> None:
        assert self._redis is not None
        try:
            async with asyncio.timeout(CACHE_TIMEOUT_SEC):
                await self._redis.set(
                    key, intent.model_dump_json(), ex=self.settings.discovery.intent_ttl_sec
                )
        except _REDIS_ERRORS as exc:
            logger.warning("intent cache write failed", extra={"error": repr(exc)})

    async def _resolve_titles(self, intent: Intent) -> Intent:
        if self._resolver is None or not intent.referenced_titles:
            return intent
        titles = [t.title for t in intent.referenced_titles]
        # The rules split "like A and B" into two titles; asking for "A and B" too lets
        # "Pride and Prejudice" be found whole.
        joined = [f"{a} and {b}" for a, b in itertools.pairwise(titles)]
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_SEC):
                found = await self._resolver([*titles, *joined])
        except Exception as exc:  # the catalog being down degrades, it does not fail the parse
            logger.warning("referenced title lookup failed", extra={"error": repr(exc)})
            return intent
        resolved: list[ReferencedTitle] = []
        i = 0
        while i < len(titles):
            pair = f"{titles[i]} and {titles[i + 1]}" if i + 1 < len(titles) else None
            if pair in found and not (titles[i] in found and titles[i + 1] in found):
                resolved.append(ReferencedTitle(title=smart_title(pair.casefold()), content_id=found[pair]))
                i += 2
                continue
            resolved.append(ReferencedTitle(title=titles[i], content_id=found.get(titles[i])))
            i += 1
        return intent.model_copy(update={"referenced_titles": list(dict.fromkeys(resolved))})
