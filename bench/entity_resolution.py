"""Entity resolution: match quality on perturbed TMDB 5000 copies, and id-lookup latency.

Quality: the 4,803 TMDB 5000 movies go in as entities (their TMDB id and a platform id mapped). Then:
- positives: one perturbed copy per movie, which must merge into it. Every copy has its ids removed
  (only a fresh platform id on another platform), so only fuzzy matching can find it; on top its
  title is changed (punctuation, article, diacritics, a typo, or left alone), its year moves by one
  (35 %), its runtime gets noise (50 %), and 30 % lose their credits (feeds often carry none);
- distractors: same title, 2-10 years apart, another movie's director, cast and runtime; must not
  merge. Also reported on their own: "hard" distractors, same title and year (+-0/1) with other
  credits; and the dataset's own remakes that share a title (they compete as candidates).
Each query is resolved against the originals only (nothing a query mints is kept).
precision = right merges / all merges; recall = right merges / positives.

Latency: resolve() of a record by its ids (a TMDB id and a platform id, both mapped), from the Redis
cache (warm; with the default existence check of the cached entity, and without it) and from
PostgreSQL (no cache; and cache on but flushed), next to the baselines measured in the same run: one
raw asyncpg SELECT of one mapping by primary key, and one raw Redis GET.

Runs on a scratch database `mg_bench_<random>` on 127.0.0.1:5432 (MG_BENCH_POSTGRES_DSN) and a
unique Redis prefix on 127.0.0.1:6379 (MG_BENCH_REDIS_URL); both are removed at the end. Data: TMDB
5000 (themoviedb.org; this product uses TMDB data but is not endorsed or certified by TMDB).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from media_gateway.catalog.models import content, entity_mappings
from media_gateway.catalog.schemas import CastMember, ExternalId, NormalizedContent, normalize_title
from media_gateway.core.db import make_engine
from media_gateway.core.migrations import run_migrations
from media_gateway.core.redis import make_redis, redis_key
from media_gateway.core.settings import Settings
from media_gateway.ingestion.datasets import TmdbMovie, load_tmdb5000
from media_gateway.ingestion.resolution import EntityResolver

ADMIN_DSN = os.environ.get("MG_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("MG_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
DATASET_DIR = (
    Path(os.environ.get("MG_BENCH_DATASETS", Path(tempfile.gettempdir()) / "mg-test-datasets")) / "tmdb5000"
)
LATENCY_SAMPLES = 3000
SEED = 20240601


# --- perturbations -----------------------------------------------------------------------------

_ACCENTS = {"a": "á", "e": "é", "i": "í", "o": "ö", "u": "ü", "n": "ñ", "c": "ç"}
_KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"


def _punctuation(title: str, rng: random.Random) -> str:
    options = [
        title.replace(":", " -").replace("'", ""),
        title.replace(" ", "  ").upper(),
        title.replace("&", "and").replace("-", " ") + ".",
        title.replace(" ", ". ", 1) if " " in title else title + "!",
        "".join(c for c in title if c.isalnum() or c == " "),
    ]
    changed = [o for o in options if o != title]
    return rng.choice(changed) if changed else title + "!"


def _article(title: str, rng: random.Random) -> str:
    first, _, rest = title.partition(" ")
    if first.lower() in ("the", "a", "an") and rest:
        return rng.choice([rest, f"{rest}, {first}"])
    return f"The {title}"


def _diacritic(title: str, rng: random.Random) -> str:
    stripped = "".join(c for c in unicodedata.normalize("NFKD", title) if not unicodedata.combining(c))
    if stripped != title:
        return stripped
    spots = [i for i, c in enumerate(title) if c.lower() in _ACCENTS]
    if not spots:
        return title
    chars = list(title)
    for i in rng.sample(spots, k=min(2, len(spots))):
        accented = _ACCENTS[chars[i].lower()]
        chars[i] = accented.upper() if chars[i].isupper() else accented
    return "".join(chars)


def _typo(title: str, rng: random.Random) -> str:
    letters = [i for i, c in enumerate(title) if c.isalpha()]
    i = rng.choice(letters)
    op = rng.choice(["substitute", "delete", "insert", "transpose"])
    if op == "substitute":
        return title[:i] + rng.choice(_KEYBOARD.replace(title[i].lower(), "")) + title[i + 1 :]
    if op == "delete":
        return title[:i] + title[i + 1 :]
    if op == "insert":
        return title[:i] + rng.choice(_KEYBOARD) + title[i:]
    j = i + 1 if i + 1 < len(title) else i - 1
    a, b = sorted((i, j))
    return title[:a] + title[b] + title[a] + title[b + 1 :]


def _title_perturbation(movie: TmdbMovie, rng: random.Random) -> tuple[str, str]:
    kinds = ["none", "punctuation", "article", "diacritic"]
    # A one-letter change to a very short title makes another word ("Cars"/"Cats"): not a typo to
    # forgive, so typos go only to titles of 6+ letters.
    if sum(c.isalpha() for c in movie.title) >= 6:
        kinds.append("typo")
    kind = rng.choice(kinds)
    fn: dict[str, Callable[[str, random.Random], str]] = {
        "punctuation": _punctuation,
        "article": _article,
        "diacritic": _diacritic,
        "typo": _typo,
    }
    return kind, fn[kind](movie.title, rng) if kind != "none" else movie.title


@dataclass(frozen=True, slots=True)
class Query:
    record: NormalizedContent
    truth: uuid.UUID | None  # None: must not merge
    group: str
    tags: tuple[str, ...]


def _record(
    title: str,
    movie: TmdbMovie,
    *,
    year: int | None,
    runtime: int | None,
    directors: tuple[str, ...],
    cast: tuple[str, ...],
    source_id: str,
) -> NormalizedContent:
    return NormalizedContent(
        title=title,
        year=year,
        runtime_minutes=runtime,
        directors=list(directors),
        cast=[CastMember(name=n, order=i) for i, n in enumerate(cast)],
        source_platform="prime_video",
        source_id=source_id,
    )


def build_queries(movies: list[TmdbMovie], ids: dict[int, uuid.UUID], rng: random.Random) -> list[Query]:
    queries: list[Query] = []
    for n, m in enumerate(movies):
        kind, title = _title_perturbation(m, rng)
        year, tags = m.year, [f"title:{kind}"]
        if year is not None and rng.random() < 0.35:
            year += rng.choice((-1, 1))
            tags.append("year+-1")
        runtime = m.runtime_minutes
        if runtime and rng.random() < 0.5:
            runtime = max(1, runtime + rng.randint(-10, 10))
            tags.append("runtime-noise")
        directors, cast = m.directors, tuple(c.name for c in m.cast[:5])
        if rng.random() < 0.3:
            directors, cast = (), ()
            tags.append("no-credits")
        rec = _record(title, m, year=year, runtime=runtime, directors=directors, cast=cast, source_id=f"p{n}")
        queries.append(Query(rec, ids[m.tmdb_id], "positive", tuple(tags)))

        if m.year is None:
            continue
        other = movies[rng.randrange(len(movies))]
        if other.directors == m.directors:
            continue
        other_cast = tuple(c.name for c in other.cast[:5])
        far = m.year + rng.choice((-1, 1)) * rng.randint(2, 10)
        rec = _record(
            m.title,
            m,
            year=far,
            runtime=other.runtime_minutes,
            directors=other.directors,
            cast=other_cast,
            source_id=f"d{n}",
        )
        queries.append(Query(rec, None, "distractor", ("year>=2",)))
        if other.directors and rng.random() < 0.25:
            near = m.year + rng.choice((-1, 0, 0, 1))
            rec = _record(
                m.title,
                m,
                year=near,
                runtime=other.runtime_minutes,
                directors=other.directors,
                cast=other_cast,
                source_id=f"h{n}",
            )
            queries.append(Query(rec, None, "hard_distractor", ("same-year-other-credits",)))
    return queries


# --- setup -----------------------------------------------------------------------------------------


async def seed(engine: AsyncEngine, movies: list[TmdbMovie]) -> dict[int, uuid.UUID]:
    ids = {m.tmdb_id: uuid.uuid4() for m in movies}
    rows, maps = [], []
    for m in movies:
        rows.append(
            {
                "id": ids[m.tmdb_id],
                "kind": "movie",
                "title": m.title,
                "title_normalized": normalize_title(m.title),
                "original_title": m.original_title,
                "year": m.year,
                "runtime_minutes": m.runtime_minutes,
                "directors": list(m.directors),
                "cast": [{"name": c.name, "character": c.character, "order": c.order} for c in m.cast],
                "content_hash": "bench",
            }
        )
        for id_type, value in (("tmdb", str(m.tmdb_id)), ("platform:netflix", f"nf-{m.tmdb_id}")):
            maps.append(
                {
                    "id_type": id_type,
                    "external_id": value,
                    "entity_id": ids[m.tmdb_id],
                    "confidence": 1.0,
                    "method": "new",
                }
            )
    async with engine.begin() as conn:
        await conn.execute(insert(content), rows)
        await conn.execute(insert(entity_mappings), maps)
        # A bulk-loaded table has no statistics until autovacuum reaches it, and without them the
        # planner sorts every title of the year band instead of walking the index; a long-running
        # catalog has them.
        await conn.execute(text("ANALYZE catalog.content, catalog.entity_mappings"))
    return ids


def _ratio(a: int, b: int) -> float:
    return round(a / b, 4) if b else 0.0


async def quality(engine: AsyncEngine, resolver: EntityResolver, queries: list[Query]) -> dict[str, object]:
    by_group: Counter[str] = Counter()
    merged_right: Counter[str] = Counter()
    merged_wrong: Counter[str] = Counter()
    tag_total: Counter[str] = Counter()
    tag_hit: Counter[str] = Counter()
    misses: list[dict[str, object]] = []
    false_merges: list[dict[str, object]] = []
    times: list[float] = []
    async with engine.connect() as conn:
        for q in queries:
            started = time.perf_counter()
            got = await resolver.resolve(q.record, conn)
            times.append(time.perf_counter() - started)
            await conn.rollback()
            by_group[q.group] += 1
            right = q.truth is not None and not got.is_new and got.entity_id == q.truth
            merged_right[q.group] += right
            merged_wrong[q.group] += (not got.is_new) and not right
            for tag in q.tags:
                tag_total[tag] += 1
                tag_hit[tag] += right if q.truth is not None else got.is_new
            example: dict[str, object] = {
                "title": q.record.title,
                "year": q.record.year,
                "tags": q.tags,
                "score": got.score,
            }
            if q.truth is not None and not right and len(misses) < 15:
                misses.append(example | {"method": got.method})
            if (not got.is_new) and not right and len(false_merges) < 15:
                false_merges.append(example | {"group": q.group})
    positives = by_group["positive"]
    tp = merged_right["positive"]
    fp_main = merged_wrong["positive"] + merged_wrong["distractor"]
    fp_all = fp_main + merged_wrong["hard_distractor"]
    return {
        "precision": _ratio(tp, tp + fp_main),
        "recall": _ratio(tp, positives),
        "targets": {"precision": 0.99, "recall": 0.95},
        "counts": {
            "positives": positives,
            "merged_correctly": tp,
            "positives_merged_into_wrong_entity": merged_wrong["positive"],
            "positives_not_merged": positives - tp - merged_wrong["positive"],
            "distractors": by_group["distractor"],
            "distractors_merged": merged_wrong["distractor"],
            "hard_distractors": by_group["hard_distractor"],
            "hard_distractors_merged": merged_wrong["hard_distractor"],
        },
        "precision_including_hard_distractors": _ratio(tp, tp + fp_all),
        "per_perturbation": {
            t: {"n": tag_total[t], "correct": _ratio(tag_hit[t], tag_total[t])} for t in sorted(tag_total)
        },
        "fuzzy_resolve_ms": _percentiles(times),
        "examples_missed": [_jsonable(m) for m in misses],
        "examples_false_merges": [_jsonable(m) for m in false_merges],
    }


def _jsonable(d: dict[str, object]) -> dict[str, object]:
    score = d.get("score")
    if score is not None:
        d = d | {
            "score": {
                k: getattr(score, k)
                for k in ("total", "title", "year", "runtime", "directors", "cast", "veto")
            }
        }
    return d


def _percentiles(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)

    def at(p: float) -> float:
        return round(s[min(len(s) - 1, int(p * len(s)))] * 1000, 3)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "n": len(s)}


async def _timed(fn: Callable[[], Awaitable[object]], n: int) -> dict[str, float]:
    for _ in range(min(200, n)):
        await fn()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - started)
    return _percentiles(samples)


async def latency(
    engine: AsyncEngine, settings: Settings, movies: list[TmdbMovie], rng: random.Random, db_name: str
) -> dict[str, object]:
    redis = make_redis(settings)
    sample = [rng.choice(movies) for _ in range(LATENCY_SAMPLES)]
    records = [
        NormalizedContent(
            title=f"Lookup {m.tmdb_id}",
            source_platform="netflix",
            source_id=f"nf-{m.tmdb_id}",
            external_ids=[ExternalId(id_type="tmdb", value=str(m.tmdb_id))],
        )
        for m in sample
    ]
    out: dict[str, object] = {}
    try:
        cached = EntityResolver(engine, redis, settings)
        started = time.perf_counter()
        warmed = await cached.warm()
        out["warm"] = {"mappings": warmed, "seconds": round(time.perf_counter() - started, 3)}
        uncached = EntityResolver(engine, None, settings)

        async with engine.connect() as conn:
            it = iter(range(10**9))

            async def run(resolver: EntityResolver) -> None:
                got = await resolver.resolve(records[next(it) % len(records)], conn)
                assert got.method in ("tmdb", "platform"), got

            # Default: a hit is confirmed by one primary-key probe of catalog.content.
            out["cached_resolve_ms"] = await _timed(lambda: run(cached), LATENCY_SAMPLES)
            trusting = EntityResolver(engine, redis, settings, verify_cached=False)
            out["cached_unverified_resolve_ms"] = await _timed(lambda: run(trusting), LATENCY_SAMPLES)
            out["db_resolve_ms"] = await _timed(lambda: run(uncached), LATENCY_SAMPLES)
            # Cache on but empty (resolve() never fills it): an MGET miss, then the same DB lookup.
            await _flush(redis, settings)
            out["cache_miss_then_db_resolve_ms"] = await _timed(lambda: run(cached), LATENCY_SAMPLES)
            await conn.rollback()

        out["targets_ms"] = {"cached_p99": 5.0, "db_p99": 20.0}
        out["baseline_raw_asyncpg_select_by_pk_ms"] = await _raw_pg(db_name, sample)
        keys = [redis_key(settings, "ingestion", "entity", "tmdb", str(m.tmdb_id)) for m in sample]
        await cached.warm()
        kit = iter(range(10**9))
        out["baseline_raw_redis_get_ms"] = await _timed(
            lambda: redis.get(keys[next(kit) % len(keys)]), LATENCY_SAMPLES
        )
    finally:
        await _flush(redis, settings)
        await redis.aclose()
    return out


async def _flush(redis: aioredis.Redis, settings: Settings) -> None:
    keys = [k async for k in redis.scan_iter(match=f"{settings.redis.prefix}:*", count=1000)]
    for i in range(0, len(keys), 1000):
        await redis.delete(*keys[i : i + 1000])


async def _raw_pg(db_name: str, sample: list[TmdbMovie]) -> dict[str, float]:
    conn = await asyncpg.connect(f"{ADMIN_DSN.rsplit('/', 1)[0]}/{db_name}")
    try:
        stmt = await conn.prepare(
            "SELECT entity_id FROM catalog.entity_mappings WHERE id_type = $1 AND external_id = $2"
        )
        it = iter(range(10**9))
        return await _timed(
            lambda: stmt.fetchval("tmdb", str(sample[next(it) % len(sample)].tmdb_id)), LATENCY_SAMPLES
        )
    finally:
        await conn.close()


async def main() -> dict[str, object]:
    run = uuid.uuid4().hex[:10]
    db_name = f"mg_bench_{run}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{db_name}"')
    await admin.close()
    settings = Settings(
        environment="test",
        database_url=f"{ADMIN_DSN.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+asyncpg://')}/{db_name}",
        redis_url=REDIS_URL,
        redis={"prefix": f"mgbench-{run}"},
    )
    engine = make_engine(settings)
    try:
        await run_migrations(settings)
        movies = await load_tmdb5000(DATASET_DIR)
        rng = random.Random(SEED)
        ids = await seed(engine, movies)
        queries = build_queries(movies, ids, rng)
        resolver = EntityResolver(engine, make_redis(settings), settings)
        titles = Counter(normalize_title(m.title) for m in movies)
        result: dict[str, object] = {
            "dataset": {
                "movies": len(movies),
                "titles_shared_by_2plus_movies": sum(1 for c in titles.values() if c > 1),
            },
            "quality": await quality(engine, resolver, queries),
            "latency": await latency(engine, settings, movies, rng, db_name),
        }
        if resolver.cache is not None:
            await resolver.cache.redis.aclose()
        return result
    finally:
        await engine.dispose()
        admin = await asyncpg.connect(ADMIN_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), default=str))
