"""Search, autocomplete and personalization at 16 concurrent clients, straight against the discovery
service over the demo catalog, plus the floors and a 100k-title synthetic catalog; prints one JSON.

    python bench/search.py [--synthetic 100000] [--no-alone]

1. `up` (all eight apps in one process, one event loop) with the demo catalog, on this machine's
   PostgreSQL and Redis (a fresh database and key prefix): search uncached (every query distinct),
   cached (repeats), autocomplete, and the same cached searches with a signed-in user's token
   (a user registered through the real auth service, scored by the real SONA): the difference is
   what personalization adds. Baseline in the same run: `GET /health/live` at the same concurrency.
2. `media-gateway serve discovery` alone on the same database, index and vectors (what a
   discovery container does): the same measurements minus personalization (SONA is not running).
3. Floors, in this process with nothing else running: the raw tantivy search of each query (the
   query the index builds, `Searcher.search` alone), the raw vector query (qdrant-edge, 200 nearest
   with the score threshold), the query embedding, and `HybridSearch.search` itself sequentially.
4. 100k synthetic titles (the TMDB catalog replicated as `bench/keyword_index.py` does, vectors = the
   demo's with noise): `HybridSearch.search` p50/p99 at 1 and 16 concurrent callers. Result cards
   come from the index's memory as in production; the synthetic documents carry no card offers, so
   their cards list none.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.keyword_index import CACHE, to_doc
from bench.loadgen import LoadSpec, http_request, run_load
from tests.e2e.stack import StackProcess
from tests.support import free_port, world_traversable_dir

from media_gateway.catalog.vectors import catalog_vector_replica
from media_gateway.core.db import make_engine
from media_gateway.core.embeddings import get_embedder
from media_gateway.core.http import HttpClientFactory
from media_gateway.core.redis import make_redis
from media_gateway.core.settings import Settings
from media_gateway.core.vectors import EdgeVectorIndex, VectorPoint
from media_gateway.discovery.intent import CatalogTitleResolver, IntentParser
from media_gateway.discovery.search.catalog_feed import catalog_docs
from media_gateway.discovery.search.hybrid import MIN_SIMILARITY, SEMANTIC_CANDIDATES, HybridSearch
from media_gateway.discovery.search.keyword import KeywordIndex
from media_gateway.discovery.search.queries import search_query
from media_gateway.discovery.search_schemas import SearchRequest
from media_gateway.ingestion.datasets import TmdbMovie, load_tmdb5000

CLIENTS = 16
ADMIN_DSN = os.environ.get("MG_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("MG_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "bench horse battery staple"  # noqa: S105 - a throwaway account
TARGETS = {
    "search_p50_ms": 10,
    "search_p99_ms": 40,
    "autocomplete_p99_ms": 10,
    "cache_hit_p50_ms": 2,
    "personalization_added_p50_ms": 10,
    "synthetic_100k_search_p99_ms": 100,
}
# Offered loads of the open-loop runs (requests/s from the 16 clients together).
OPEN_LOOP_RATES = [20.0, 40.0, 80.0]
LIGHT_OPEN_LOOP_RATES = [100.0, 200.0, 400.0]  # cache hits and autocomplete
RUN_SEC = 10.0


def _percentiles(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(pick(0.95), 2),
        "p99_ms": round(pick(0.99), 2),
        "n": len(ordered),
    }


async def _drive(
    requests: Sequence[bytes],
    base: str,
    clients: int = CLIENTS,
    *,
    rate: float | None = None,
    cycle: bool = False,
    duration: float = RUN_SEC,
    server: psutil.Process | None = None,
) -> dict[str, Any]:
    """`requests` dealt round-robin to `clients` keep-alive connections (bench/loadgen.py).
    Closed loop by default: each client sends its next request when the last one is answered.
    With `server`, also the CPU that process spent per request: steadier than latency on a shared
    machine."""
    if len(requests) < clients:
        requests = list(requests) * -(-clients // len(requests))
    lanes = [list(requests[i::clients]) for i in range(clients)]
    port = int(base.rsplit(":", 1)[1])
    spec = LoadSpec(
        "127.0.0.1", port, lanes, duration_sec=duration, warmup_sec=0.0, rate_per_sec=rate, cycle=cycle
    )
    before = server.cpu_times() if server else None
    result = await asyncio.to_thread(run_load, spec)
    failed = sum(n for code, n in result.statuses.items() if code != 200) + result.errors + result.unfinished
    if failed:
        raise SystemExit(f"{failed} requests failed: {result.summary()}")
    measured: dict[str, Any] = {**result.latency_ms, "per_sec": result.completed_per_sec}
    if server and before and result.samples:
        after = server.cpu_times()
        spent = after.user + after.system - before.user - before.system
        measured["server_cpu_ms_per_request"] = round(spent * 1000 / len(result.samples), 3)
    return measured


def _queries(movies: Sequence[TmdbMovie]) -> list[str]:
    """Distinct queries (titles, overview openings, genre + decade), so none is a cache hit."""
    queries = []
    for m in movies:
        queries.append(m.title)
        if m.overview:
            queries.append(" ".join(m.overview.split()[:8]))
        queries.append(
            f"{m.genres[0] if m.genres else 'drama'} movies from the {(m.year or 2000) // 10 * 10}s"
        )
    return list(dict.fromkeys(queries))


def _search(q: str, token: str | None = None) -> bytes:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    body = json.dumps({"query": q, "page_size": 20}).encode()
    return http_request("POST", "/api/v1/search", headers=headers, body=body)


def _prefix(q: str) -> bytes:
    return http_request("GET", "/api/v1/search/autocomplete?" + urlencode({"q": q[:5], "limit": 10}))


class _Queries:
    """Hands out queries never sent before in this run: every uncached measurement is uncached."""

    def __init__(self, queries: list[str]) -> None:
        self._queries = queries
        self._next = 0

    def take(self, n: int) -> list[str]:
        if self._next + n > len(self._queries):
            raise SystemExit(f"out of distinct queries ({len(self._queries)})")
        taken = self._queries[self._next : self._next + n]
        self._next += n
        return taken


async def _service_bench(base: str, movies: Sequence[TmdbMovie], server: psutil.Process) -> dict[str, Any]:
    fresh = _Queries(_queries(movies))
    live = await _drive([http_request("GET", "/health/live")], base, cycle=True, duration=5, server=server)
    # Warm-up: JIT-free Python still has its first-call costs (imports, pools, first searches).
    await _drive([_search(q) for q in fresh.take(200)], base)
    uncached = await _drive([_search(q) for q in fresh.take(1_500)], base, server=server)
    open_loop = {
        f"{int(rate)}_per_sec": await _drive(
            [_search(q) for q in fresh.take(int(rate * RUN_SEC) + CLIENTS)], base, rate=rate, server=server
        )
        for rate in OPEN_LOOP_RATES
    }
    repeated = [_search(q) for q in fresh.take(200)]
    await _drive(repeated, base)  # now cached
    cached = await _drive(repeated, base, cycle=True, server=server)
    prefixes = [_prefix(m.title) for m in movies]
    autocomplete = await _drive(prefixes, base, cycle=True, server=server)
    light = {
        name: {
            f"{int(rate)}_per_sec": await _drive(reqs, base, rate=rate, cycle=True, server=server)
            for rate in LIGHT_OPEN_LOOP_RATES
        }
        for name, reqs in (("search_cached", repeated), ("autocomplete", prefixes))
    }
    return {
        "search_uncached": uncached,
        "search_uncached_open_loop": open_loop,
        "search_cached": cached,
        "search_cached_open_loop": light["search_cached"],
        "autocomplete": autocomplete,
        "autocomplete_open_loop": light["autocomplete"],
        "baseline_health_live": live,
    }


async def _fallbacks(base: str) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=base) as client:
        body = (await client.get("/metrics")).text
    found = re.findall(
        r'^discovery_personalization_fallbacks_total\{reason="(\w+)"\} ([0-9.e+]+)$', body, re.M
    )
    return {reason: float(value) for reason, value in found}


async def _user_token(stack: StackProcess) -> str:
    """A user registered and signed in through the real auth service."""
    async with httpx.AsyncClient(base_url=stack.url("auth"), timeout=30) as auth:
        email = f"bench-{uuid.uuid4().hex[:8]}@example.test"
        registered = await auth.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        registered.raise_for_status()
        login = await auth.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        login.raise_for_status()
        token: str = login.json()["access_token"]
        return token


async def _personalization_bench(stack: StackProcess, movies: Sequence[TmdbMovie]) -> dict[str, Any]:
    """Cached searches, anonymous and signed in, interleaved per query so load hits both alike."""
    token, sequential_token = await _user_token(stack), await _user_token(stack)
    queries = _queries(movies)[:200]
    base = stack.url("discovery")
    before = await _fallbacks(base)
    await _drive([_search(q) for q in queries], base)  # every query cached
    anonymous = await _drive([_search(q) for q in queries], base)
    # Each query once per user: the first time a user's affinities are not cached yet.
    cold = await _drive([_search(q, token) for q in queries], base)
    anonymous_again = await _drive([_search(q) for q in queries], base)
    warm = await _drive([_search(q, token) for q in queries], base)
    after = await _fallbacks(base)
    # One client: what a user's search pays when the loop is not queueing 16 of them.
    sequential_anonymous = await _drive([_search(q) for q in queries[:100]], base, clients=1)
    sequential_cold = await _drive([_search(q, sequential_token) for q in queries[:100]], base, clients=1)
    sequential_warm = await _drive([_search(q, sequential_token) for q in queries[:100]], base, clients=1)
    settled = await _fallbacks(base)
    async with httpx.AsyncClient(base_url=base) as client:
        probe = (
            await client.post(
                "/api/v1/search",
                json={"query": queries[0], "page_size": 20},
                headers={"Authorization": f"Bearer {token}"},
            )
        ).json()
    baseline = statistics.fmean([anonymous["p50_ms"], anonymous_again["p50_ms"]])
    return {
        "note": "cached searches; personalized = the same with a user's token (real SONA in `up`)",
        "anonymous_cached": anonymous,
        "personalized_affinities_uncached": cold,
        "personalized_affinities_cached": warm,
        "added_p50_ms_affinities_uncached": round(cold["p50_ms"] - baseline, 2),
        "added_p50_ms_affinities_cached": round(warm["p50_ms"] - baseline, 2),
        "fallbacks_during_run": {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after},
        "one_client": {
            "anonymous_cached": sequential_anonymous,
            "personalized_affinities_uncached": sequential_cold,
            "personalized_affinities_cached": sequential_warm,
            "added_p50_ms_affinities_uncached": round(
                sequential_cold["p50_ms"] - sequential_anonymous["p50_ms"], 2
            ),
            "added_p50_ms_affinities_cached": round(
                sequential_warm["p50_ms"] - sequential_anonymous["p50_ms"], 2
            ),
            "fallbacks": {k: settled.get(k, 0.0) - after.get(k, 0.0) for k in settled},
        },
        "probe_personalized": probe.get("personalized"),
        "probe_experiment": probe.get("experiment"),
    }


def _wait_for_demo(stack: StackProcess) -> None:
    token = (stack.data_dir / "admin-token").read_text().strip()
    with httpx.Client(base_url=stack.url("ingestion"), headers={"Authorization": f"Bearer {token}"}) as c:
        while True:
            jobs = c.get("/api/v1/admin/jobs").json()
            if any(j["source"] == "demo" and j["status"] == "succeeded" for j in jobs):
                return
            if any(j["source"] == "demo" and j["status"] == "failed" for j in jobs):
                raise SystemExit(f"demo ingest failed: {jobs}")
            time.sleep(2)


def _wait_ready(url: str, process: StackProcess, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            assert process.process is not None
            if process.process.poll() is not None:
                raise SystemExit(f"discovery exited:\n{process.log()[-3000:]}")
            try:
                if client.get(f"{url}/health/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise SystemExit(f"discovery not ready after {timeout}s")


def _timed(samples: list[float], started: float) -> None:
    samples.append((time.perf_counter() - started) * 1000)


async def _floors(settings: Settings, movies: Sequence[TmdbMovie]) -> tuple[dict[str, Any], Any]:
    """Raw engine times on the demo catalog, sequential; returns them and the demo vectors."""
    engine = make_engine(settings)
    redis = make_redis(settings)
    root = settings.data_dir / "bench-floors"
    index = KeywordIndex(root / "keyword")
    embedder = get_embedder(settings)
    # What a discovery process holds: a replica of the catalog's vectors, loaded from PostgreSQL.
    vectors = catalog_vector_replica(settings, engine, embedder)
    http = HttpClientFactory(settings)
    try:
        await index.build(catalog_docs(engine))
        await vectors.open()
        intents = IntentParser(settings, redis, http, http.registry, CatalogTitleResolver(engine))
        hybrid = HybridSearch(settings, index, embedder, vectors, intents)
        queries = _queries(movies)[:300]
        live = index.tantivy_index
        assert live is not None
        searcher = live.searcher()
        built = [search_query(index.schema, searcher, q, None) for q in queries]
        embedded = [await embedder.embed_one(q) for q in queries]
        for q in queries[:20]:
            await hybrid.search(SearchRequest(query=q))
        raw_tantivy: list[float] = []
        raw_vector: list[float] = []
        embed: list[float] = []
        hybrid_ms: list[float] = []
        for i, q in enumerate(queries):
            started = time.perf_counter()
            searcher.search(built[i], 200, count=True, weight_by_field="prior")
            _timed(raw_tantivy, started)
            started = time.perf_counter()
            await vectors.nearest_ids(embedded[i], SEMANTIC_CANDIDATES, None, score_threshold=MIN_SIMILARITY)
            _timed(raw_vector, started)
            started = time.perf_counter()
            await embedder.embed_one(f"{q} again")
            _timed(embed, started)
            started = time.perf_counter()
            await hybrid.search(SearchRequest(query=f"{q} once"))
            _timed(hybrid_ms, started)
        ids = [m.id for m in index.all_metadata()]
        demo_vectors = await vectors.vectors(ids)
        await intents.aclose()
        return {
            "note": "one caller, in process, nothing else running; 200 candidates like search asks",
            "raw_tantivy_search": _percentiles(raw_tantivy),
            "raw_vector_query": _percentiles(raw_vector),
            "query_embedding": _percentiles(embed),
            "hybrid_search_in_process": _percentiles(hybrid_ms),
        }, demo_vectors
    finally:
        await vectors.aclose()
        await embedder.aclose()
        await index.aclose()
        await http.aclose()
        await redis.aclose()
        await engine.dispose()
        shutil.rmtree(root, ignore_errors=True)


async def _synthetic(
    settings: Settings, movies: Sequence[TmdbMovie], size: int, demo_vectors: dict[uuid.UUID, list[float]]
) -> dict[str, Any]:
    root = settings.data_dir / "bench-synthetic"
    rng = random.Random(size)
    docs = [
        to_doc(movies[i % len(movies)], str(uuid.UUID(int=i + 1)), rng, i // len(movies)) for i in range(size)
    ]
    index = KeywordIndex(root / "keyword")
    embedder = get_embedder(settings)
    vectors = EdgeVectorIndex(root / "vectors", embedder.dimension)
    engine = make_engine(settings)
    redis = make_redis(settings)
    http = HttpClientFactory(settings)
    try:
        started = time.perf_counter()
        await index.build(docs)
        keyword_build = time.perf_counter() - started
        await vectors.open()
        base = np.asarray(list(demo_vectors.values()), dtype=np.float32)
        noise = np.random.default_rng(1)
        started = time.perf_counter()
        for start in range(0, size, 5_000):
            chunk = range(start, min(size, start + 5_000))
            rows = base[[i % len(base) for i in chunk]] + noise.normal(0, 0.02, (len(chunk), base.shape[1]))
            points = [
                VectorPoint(
                    uuid.UUID(int=i + 1),
                    row,
                    {
                        "type": "movie",
                        "genres": list(docs[i].genres),
                        "platforms": docs[i].platforms,
                        "regions": docs[i].regions,
                        "monetization": docs[i].monetization,
                        "year": docs[i].year or 2000,
                        "popularity": docs[i].popularity or 0.0,
                    },
                )
                for i, row in zip(chunk, rows, strict=True)
            ]
            await vectors.upsert(points)
        vector_load = time.perf_counter() - started
        intents = IntentParser(settings, redis, http, http.registry, None)
        hybrid = HybridSearch(settings, index, embedder, vectors, intents)
        queries = _queries(movies)[:300]
        for q in queries[:10]:
            await hybrid.search(SearchRequest(query=q))
        sequential: list[float] = []
        for q in queries[:150]:
            started = time.perf_counter()
            await hybrid.search(SearchRequest(query=f"{q} one"))
            _timed(sequential, started)
        concurrent: list[float] = []
        pending = [f"{q} many" for q in queries]

        async def caller() -> None:
            while pending:
                q = pending.pop()
                started = time.perf_counter()
                await hybrid.search(SearchRequest(query=q))
                _timed(concurrent, started)

        await asyncio.gather(*(caller() for _ in range(CLIENTS)))
        await intents.aclose()
        return {
            "titles": size,
            "keyword_build_sec": round(keyword_build, 1),
            "vector_load_sec": round(vector_load, 1),
            "note": "HybridSearch.search in process (cards from memory, see the docstring); vectors "
            "exact-scanned (no HNSW optimize)",
            "search_1_caller": _percentiles(sequential),
            f"search_{CLIENTS}_callers": _percentiles(concurrent),
        }
    finally:
        await vectors.aclose()
        await embedder.aclose()
        await index.aclose()
        await http.aclose()
        await redis.aclose()
        await engine.dispose()
        shutil.rmtree(root, ignore_errors=True)


async def _database(name: str, *, drop: bool = False) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        if drop:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=100_000, help="0 skips the synthetic catalog")
    parser.add_argument("--no-alone", action="store_true", help="skip discovery served alone")

    parser.add_argument(
        "--reuse",
        nargs=3,
        metavar=("DATABASE_URL", "DATA_DIR", "REDIS_PREFIX"),
        help="a catalog a previous `up` already loaded with the demo (kept afterwards): skips the ingest",
    )
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    if args.reuse:
        dsn, data_dir, prefix = args.reuse[0], Path(args.reuse[1]), args.reuse[2]
        base_dir = None
        database = None
    else:
        database = f"mg_bench_search_{run}"
        base_dir = world_traversable_dir("mg-bench-search-")
        data_dir = base_dir / "data"
        dsn = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{database}"
        prefix = f"mgbench-{run}"
    env = {
        "MG_DATABASE_URL": dsn,
        "MG_REDIS_URL": REDIS_URL,
        "MG_REDIS__PREFIX": prefix,
        "MG_LOG_LEVEL": "WARNING",
    }
    settings = Settings(database_url=dsn, redis_url=REDIS_URL, redis={"prefix": prefix}, data_dir=data_dir)
    if database:
        asyncio.run(_database(database))
    movies = asyncio.run(load_tmdb5000(CACHE))
    result: dict[str, Any] = {"clients": CLIENTS, "targets": TARGETS}
    try:
        demo = "false" if args.reuse else "true"
        stack = StackProcess.fresh(data_dir, {**env, "MG_INGESTION__DEMO_ON_START": demo})
        cache = stack.data_dir / "datasets" / "tmdb5000"
        if CACHE.is_dir() and not cache.exists():
            shutil.copytree(CACHE, cache)
        stack.start()
        try:
            stack.wait_ready(timeout=180)
            if not args.reuse:
                _wait_for_demo(stack)
            time.sleep(3)  # let the keyword index and the search cache settle
            assert stack.process is not None
            server = psutil.Process(stack.process.pid)
            result["up"] = asyncio.run(_service_bench(stack.url("discovery"), movies, server))
            result["up"]["personalization"] = asyncio.run(_personalization_bench(stack, movies))
        finally:
            stack.stop()

        if not args.no_alone:
            alone = StackProcess(
                data_dir=data_dir,
                ports={**stack.ports, "discovery": free_port()},
                embedded_ports=stack.embedded_ports,
                extra_env=env,
            )
            alone.start("serve", "discovery")
            try:
                _wait_ready(alone.url("discovery"), alone)
                time.sleep(1)
                assert alone.process is not None
                server = psutil.Process(alone.process.pid)
                result["discovery_alone"] = asyncio.run(
                    _service_bench(alone.url("discovery"), movies, server)
                )
            finally:
                alone.stop()

        floors, demo_vectors = asyncio.run(_floors(settings, movies))
        result["floors_demo"] = floors
        if args.synthetic:
            result["synthetic"] = asyncio.run(_synthetic(settings, movies, args.synthetic, demo_vectors))
    finally:
        if database:
            asyncio.run(_database(database, drop=True))
        if base_dir:
            shutil.rmtree(base_dir, ignore_errors=True)
    result["met"] = _met(result)
    print(json.dumps(result, indent=2))


def _met(result: dict[str, Any]) -> dict[str, bool | None]:
    def at(*path: str) -> Any:
        node: Any = result
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    def le(value: Any, target: float) -> bool | None:
        return None if value is None else bool(value <= target)

    met: dict[str, bool | None] = {}
    for where in ("up", "discovery_alone"):
        met[f"{where}_search_p50"] = le(at(where, "search_uncached", "p50_ms"), TARGETS["search_p50_ms"])
        met[f"{where}_search_p99"] = le(at(where, "search_uncached", "p99_ms"), TARGETS["search_p99_ms"])
        met[f"{where}_autocomplete_p99"] = le(
            at(where, "autocomplete", "p99_ms"), TARGETS["autocomplete_p99_ms"]
        )
        met[f"{where}_cache_hit_p50"] = le(at(where, "search_cached", "p50_ms"), TARGETS["cache_hit_p50_ms"])
        for rate in OPEN_LOOP_RATES:
            run = f"{int(rate)}_per_sec"
            p50 = le(at(where, "search_uncached_open_loop", run, "p50_ms"), TARGETS["search_p50_ms"])
            p99 = le(at(where, "search_uncached_open_loop", run, "p99_ms"), TARGETS["search_p99_ms"])
            met[f"{where}_search_open_loop_{run}"] = None if p50 is None or p99 is None else p50 and p99
        for rate in LIGHT_OPEN_LOOP_RATES:
            run = f"{int(rate)}_per_sec"
            met[f"{where}_cache_hit_p50_open_loop_{run}"] = le(
                at(where, "search_cached_open_loop", run, "p50_ms"), TARGETS["cache_hit_p50_ms"]
            )
            met[f"{where}_autocomplete_p99_open_loop_{run}"] = le(
                at(where, "autocomplete_open_loop", run, "p99_ms"), TARGETS["autocomplete_p99_ms"]
            )
    met["personalization_added_p50"] = le(
        at("up", "personalization", "added_p50_ms_affinities_uncached"),
        TARGETS["personalization_added_p50_ms"],
    )
    synthetic = at("synthetic")
    if isinstance(synthetic, dict):
        met["synthetic_100k_search_p99"] = le(
            at("synthetic", f"search_{CLIENTS}_callers", "p99_ms"), TARGETS["synthetic_100k_search_p99_ms"]
        )
    return met


if __name__ == "__main__":
    main()
