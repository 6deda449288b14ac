"""EntityResolver: which canonical entity a normalized record is, by external ids first, then by
fuzzy metadata matching, else a new entity.

The caller (the ingestion pipeline) does, per record and inside one transaction:

    resolution = await resolver.resolve(record, conn)
    ... write catalog.content under resolution.entity_id (a new entity's row must exist before its
        mappings: foreign key) ...
    pairs = await resolver.record(conn, resolution.entity_id, record, resolution)
    ... commit ...
    await resolver.cache_after_commit(pairs)

The cache is written only after the commit so it never holds a mapping that was rolled back.

Id strength: EIDR > IMDb > TMDB > TVDB > platform ids. The strongest id that is mapped to an entity of
the record's kind decides (a TMDB movie id and a TMDB TV id are different works with the same number).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from media_gateway.catalog.schemas import (
    ExternalId,
    IdType,
    NormalizedContent,
    normalize_title,
    platform_id_type,
)
from media_gateway.core.settings import Settings
from media_gateway.ingestion.resolution import repository
from media_gateway.ingestion.resolution.cache import DEFAULT_TTL_SEC, CacheEntry, EntityCache
from media_gateway.ingestion.resolution.repository import CandidateRow, MappingWrite
from media_gateway.ingestion.resolution.scoring import (
    AMBIGUITY_MARGIN,
    MERGE_THRESHOLD,
    MIN_TITLE_SIMILARITY,
    STRONG_ID_TYPES,
    TOP_CAST,
    Features,
    MatchScore,
    blocking_keys,
    score,
    title_forms,
    title_similarity,
)

logger = logging.getLogger(__name__)

Method = Literal["eidr", "imdb", "tmdb", "tvdb", "platform", "fuzzy", "new"]
IdPair = tuple[str, str]
KnownMapping = tuple[str, str, uuid.UUID]

_ID_ORDER: tuple[str, ...] = (IdType.EIDR, IdType.IMDB, IdType.TMDB, IdType.TVDB)
_PLATFORM_RANK = len(_ID_ORDER)
_UNMATCHABLE_RANK = _PLATFORM_RANK + 1
ID_CONFIDENCE: dict[str, float] = {"eidr": 1.0, "imdb": 0.995, "tmdb": 0.99, "tvdb": 0.99, "platform": 0.99}
# Below every id match, so a fuzzy merge can never take an id away from an id-based mapping.
FUZZY_MAX_CONFIDENCE = 0.98
# A strong id is the identity of the entity minted for it. A platform id on a minted entity is less
# sure (the entity may turn out to duplicate one that the platform did not give us an id for), so a
# later record linking that platform id to another entity through a strong id may move it.
NEW_STRONG_CONFIDENCE = 1.0
NEW_PLATFORM_CONFIDENCE = 0.95


def _rank(id_type: str) -> int:
    if id_type in _ID_ORDER:
        return _ID_ORDER.index(id_type)
    return _PLATFORM_RANK if id_type.startswith("platform:") else _UNMATCHABLE_RANK


_ID_METHODS: dict[str, Method] = {"eidr": "eidr", "imdb": "imdb", "tmdb": "tmdb", "tvdb": "tvdb"}


def _method_of(id_type: str) -> Method:
    return _ID_METHODS.get(id_type, "platform")


def canonical_id(id_type: str, value: str) -> IdPair:
    """The stored form: IMDb ids are lower case (tt...), EIDR upper case; surrounding blanks dropped."""
    value = value.strip()
    if id_type == IdType.IMDB:
        value = value.lower()
    elif id_type == IdType.EIDR:
        value = value.upper()
    return id_type, value


def record_ids(record: NormalizedContent) -> list[IdPair]:
    """The record's external ids, strongest first, including the platform's own id for it."""
    ids = [canonical_id(e.id_type, e.value) for e in record.external_ids]
    if record.source_id.strip():
        ids.append(canonical_id(platform_id_type(record.source_platform), record.source_id))
    unique = [p for p in dict.fromkeys(ids) if p[1]]
    return sorted(unique, key=lambda p: _rank(p[0]))


def record_features(record: NormalizedContent, ids: Iterable[IdPair] = ()) -> Features:
    cast = [c.name for c in sorted(record.cast, key=lambda c: c.order)][:TOP_CAST]
    return Features.build(
        [record.title, record.original_title],
        record.year,
        record.runtime_minutes,
        record.directors,
        cast,
        ids,
    )


def candidate_features(c: CandidateRow, record: Features) -> Features:
    # Names are only worth normalizing when the record has some to compare them with.
    return Features.build(
        [c.title, c.original_title],
        c.year,
        c.runtime_minutes,
        c.directors if record.directors else (),
        c.top_cast if record.cast else (),
        c.strong_ids,
    )


@dataclass(frozen=True, slots=True)
class Resolution:
    entity_id: uuid.UUID
    is_new: bool
    confidence: float
    method: Method
    # The external id that decided (id methods); None for fuzzy and new.
    matched_by: ExternalId | None = None
    # The best fuzzy candidate's breakdown: the merged one, or for "new" the best one turned down.
    score: MatchScore | None = None
    # Ids of this record that are mapped to another entity (or one of another kind).
    conflicts: tuple[ExternalId, ...] = ()
    # What the record's ids were mapped to when resolved: (id_type, external_id, entity_id).
    known: tuple[KnownMapping, ...] = ()


class EntityResolver:
    def __init__(
        self,
        engine: AsyncEngine | async_sessionmaker[AsyncSession],
        redis: aioredis.Redis | None,
        settings: Settings,
        *,
        cache_ttl_sec: int = DEFAULT_TTL_SEC,
        threshold: float = MERGE_THRESHOLD,
        verify_cached: bool = True,
    ) -> None:
        """`verify_cached`: check that a cached entity still exists (one primary-key probe) before
        trusting it. Off, a cache hit costs no PostgreSQL round trip at all, but an entity deleted
        by hand comes back under its old id (the catalog writer recreates a missing row) until its
        cache entries expire."""
        self.engine = engine
        self.settings = settings
        self.threshold = threshold
        self.verify_cached = verify_cached
        self.cache: EntityCache | None = (
            EntityCache(redis, settings, ttl_sec=cache_ttl_sec) if redis is not None else None
        )

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        if isinstance(self.engine, AsyncEngine):
            async with self.engine.connect() as conn:
                yield conn
        else:
            async with self.engine() as session:
                yield await session.connection()

    async def warm(self) -> int:
        """Copy every mapping from PostgreSQL into the cache (on service start)."""
        if self.cache is None:
            return 0
        started = time.perf_counter()
        async with self._connection() as conn:
            count = await self.cache.warm(conn)
        logger.info(
            "entity cache warmed",
            extra={"mappings": count, "seconds": round(time.perf_counter() - started, 3)},
        )
        return count

    async def _current_mappings(
        self, conn: AsyncConnection, ids: Sequence[IdPair]
    ) -> dict[IdPair, tuple[uuid.UUID, str]]:
        """(id -> (entity, kind)) for the record's matchable ids: cache first, then PostgreSQL for
        the misses that could outrank what the cache found."""
        hits = await self.cache.get_many(ids) if self.cache is not None else {}
        unverified = {p: e for p, (e, kind) in hits.items() if self.verify_cached or kind is None}
        current = {p: (e, kind) for p, (e, kind) in hits.items() if p not in unverified and kind is not None}
        if unverified:
            # A cached entity may have been deleted since (its mappings go with it, by cascade):
            # one primary-key probe keeps a deleted title from coming back under its old id.
            kinds = await repository.entity_kinds(conn, set(unverified.values()))
            stale = [p for p, e in unverified.items() if e not in kinds]
            if stale and self.cache is not None:
                await self.cache.delete_many(stale)
            current |= {p: (e, kinds[e]) for p, e in unverified.items() if e in kinds}
        best = min((_rank(t) for t, _ in current), default=_UNMATCHABLE_RANK)
        misses = [p for p in ids if p not in current and _rank(p[0]) < best]
        if misses:
            for row in await repository.lookup_mappings(conn, misses):
                current[(row.id_type, row.external_id)] = (row.entity_id, row.entity_kind)
        return current

    async def resolve(self, record: NormalizedContent, conn: AsyncConnection) -> Resolution:
        ids = record_ids(record)
        matchable = [p for p in ids if _rank(p[0]) < _UNMATCHABLE_RANK]
        current = await self._current_mappings(conn, matchable)
        known = tuple((t, v, e) for (t, v), (e, _) in current.items())

        chosen: IdPair | None = next(
            (p for p in matchable if p in current and current[p][1] == record.kind.value), None
        )
        if chosen is not None:
            entity_id = current[chosen][0]
            method = _method_of(chosen[0])
            return Resolution(
                entity_id=entity_id,
                is_new=False,
                confidence=ID_CONFIDENCE[method],
                method=method,
                matched_by=ExternalId(id_type=chosen[0], value=chosen[1]),
                conflicts=_conflicts(current, entity_id),
                known=known,
            )

        best, runner_up = await self._best_candidates(record, ids, conn)
        if best is not None and self._merges(best[0]):
            if runner_up is None or not self._merges(runner_up[0], best[0].total - AMBIGUITY_MARGIN):
                return Resolution(
                    entity_id=best[1],
                    is_new=False,
                    confidence=min(best[0].total, FUZZY_MAX_CONFIDENCE),
                    method="fuzzy",
                    score=best[0],
                    conflicts=_conflicts(current, best[1]),
                    known=known,
                )
            logger.info(
                "ambiguous fuzzy match; minting a new entity",
                extra={
                    "title": record.title,
                    "year": record.year,
                    "candidates": [str(best[1]), str(runner_up[1])],
                },
            )
        new_id = uuid.uuid4()
        return Resolution(
            entity_id=new_id,
            is_new=True,
            confidence=max((_new_confidence(t) for t, _ in ids), default=NEW_PLATFORM_CONFIDENCE),
            method="new",
            score=best[0] if best is not None else None,
            conflicts=_conflicts(current, new_id),
            known=known,
        )

    def _merges(self, match: MatchScore, floor: float = 0.0) -> bool:
        return match.veto is None and match.total >= max(self.threshold, floor)

    async def _best_candidates(
        self, record: NormalizedContent, ids: Sequence[IdPair], conn: AsyncConnection
    ) -> tuple[tuple[MatchScore, uuid.UUID] | None, tuple[MatchScore, uuid.UUID] | None]:
        anchor = normalize_title(record.title)
        keys = blocking_keys([record.title, record.original_title])
        if not anchor or not keys:
            return None, None
        rows = await repository.find_candidates(
            conn, kind=record.kind.value, keys=keys, anchor=anchor, year=record.year
        )
        mine = record_features(record, ids)
        # Most neighbours of the sorted-neighbourhood window have nothing in common with the title:
        # drop them on the title alone (they would be vetoed) before normalizing their credits.
        plausible = [
            row
            for row in rows
            if title_similarity(mine.titles, title_forms([row.title, row.original_title]))
            >= MIN_TITLE_SIMILARITY
        ]
        scored = sorted(
            ((score(mine, candidate_features(row, mine)), row.entity_id) for row in plausible),
            # Mergeable first, then by score; the id breaks ties so the choice is deterministic.
            key=lambda s: (s[0].veto is None, s[0].total, str(s[1])),
            reverse=True,
        )
        return (scored[0] if scored else None), (scored[1] if len(scored) > 1 else None)

    def _mapping_confidence(self, id_type: str, resolution: Resolution) -> float:
        if resolution.method == "new":
            return _new_confidence(id_type)
        return resolution.confidence

    async def record(
        self,
        conn: AsyncConnection,
        entity_id: uuid.UUID,
        record: NormalizedContent,
        resolution: Resolution,
    ) -> list[CacheEntry]:
        """Map every external id of the record to `entity_id` (upsert rule in repository.py).

        Returns the cache entries (id_type, external_id, entity_id, kind) to write once the
        transaction has committed (pass them to `cache_after_commit`). Ids that stay on another
        entity are logged, not returned."""
        ids = record_ids(record)
        writes = [
            MappingWrite(t, v, entity_id, self._mapping_confidence(t, resolution), resolution.method)
            for t, v in ids
        ]
        written = {(w.id_type, w.external_id): w for w in await repository.upsert_mappings(conn, writes)}
        before = {(t, v): e for t, v, e in resolution.known}
        for pair, w in written.items():
            previous = before.get(pair)
            if previous is not None and previous != entity_id:
                logger.info(
                    "entity mapping moved on stronger evidence",
                    extra={
                        "id_type": pair[0],
                        "external_id": pair[1],
                        "from": str(previous),
                        "to": str(entity_id),
                        "confidence": w.confidence,
                        "method": w.method,
                    },
                )
        unknown = [p for p in ids if p not in written and p not in before]
        if unknown:
            # Ids resolve() skipped (weaker than a cache hit) and the upsert left alone: learn where
            # they point so an unchanged mapping still gets cached.
            for row in await repository.lookup_mappings(conn, unknown):
                before[(row.id_type, row.external_id)] = row.entity_id
        pairs: list[CacheEntry] = []
        for pair in ids:
            if pair in written or before.get(pair) == entity_id:
                pairs.append((pair[0], pair[1], entity_id, record.kind.value))
            elif pair in before:
                logger.info(
                    "external id kept on its entity (new evidence not stronger)",
                    extra={
                        "id_type": pair[0],
                        "external_id": pair[1],
                        "kept": str(before[pair]),
                        "proposed": str(entity_id),
                    },
                )
        return pairs

    async def cache_after_commit(self, pairs: Iterable[CacheEntry]) -> int:
        if self.cache is None:
            return 0
        return await self.cache.set_many(pairs)


def _new_confidence(id_type: str) -> float:
    return NEW_STRONG_CONFIDENCE if id_type in STRONG_ID_TYPES else NEW_PLATFORM_CONFIDENCE


def _conflicts(current: dict[IdPair, tuple[uuid.UUID, str]], entity_id: uuid.UUID) -> tuple[ExternalId, ...]:
    return tuple(ExternalId(id_type=t, value=v) for (t, v), (e, _) in current.items() if e != entity_id)
