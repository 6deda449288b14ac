"""Search and autocomplete at 16 concurrent clients, straight against the discovery service, over the
demo catalog loaded by `media-gateway up`, uncached (every query distinct) and cached (repeats).

Baselines, measured in the same run at the same concurrency: `GET /health/live` (the HTTP floor of
the service) and autocomplete (the keyword index alone)."""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.stack import StackProcess
from tests.support import world_traversable_dir

from media_gateway.ingestion.datasets import TmdbMovie, load_tmdb5000

CLIENTS = 16
Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(pick(0.95), 2),
        "p99_ms": round(pick(0.99), 2),
        "n": len(ordered),
    }


async def _drive(requests: list[Request], base: str) -> dict[str, float]:
    queue: asyncio.Queue[Request] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    samples: list[float] = []

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            while not queue.empty():
                request = queue.get_nowait()
                started = time.perf_counter()
                response = await request(client)
                samples.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(CLIENTS)))
    result = _percentiles(samples)
    result["per_sec"] = round(len(samples) / (time.perf_counter() - started), 1)
    return result


def _queries(movies: list[TmdbMovie]) -> list[str]:
    queries = []
    for m in movies[:300]:
        queries.append(m.title)
        if m.overview:
            queries.append(" ".join(m.overview.split()[:8]))
        queries.append(
            f"{m.genres[0] if m.genres else 'drama'} movies from the {(m.year or 2000) // 10 * 10}s"
        )
    return list(dict.fromkeys(queries))


async def _bench(base: str, movies: list[TmdbMovie]) -> dict[str, object]:
    queries = _queries(movies)

    def search(q: str) -> Request:
        return lambda c: c.post("/api/v1/search", json={"query": q, "page_size": 20})

    def prefix(q: str) -> Request:
        return lambda c: c.get("/api/v1/search/autocomplete", params={"q": q[:5], "limit": 10})

    live = await _drive([lambda c: c.get("/health/live") for _ in range(800)], base)
    uncached = await _drive([search(q) for q in queries], base)
    cached = await _drive([search(q) for q in queries[:200]] * 3, base)
    autocomplete = await _drive([prefix(m.title) for m in movies[:800]], base)
    return {
        "clients": CLIENTS,
        "search_uncached": uncached,
        "search_cached": cached,
        "autocomplete": autocomplete,
        "baseline_health_live": live,
        "targets": {
            "search_p50_ms": 10,
            "search_p99_ms": 40,
            "autocomplete_p99_ms": 10,
            "cache_hit_p50_ms": 2,
        },
    }


def main() -> None:
    base_dir = world_traversable_dir("mg-bench-search-")
    stack = StackProcess.fresh(
        base_dir / "data", {"MG_INGESTION__DEMO_ON_START": "true", "MG_LOG_LEVEL": "WARNING"}
    )
    cache = stack.data_dir / "datasets" / "tmdb5000"
    movies = asyncio.run(load_tmdb5000(cache))
    stack.start()
    try:
        stack.wait_ready(timeout=120)
        token = (stack.data_dir / "admin-token").read_text().strip()
        with httpx.Client(base_url=stack.url("ingestion"), headers={"Authorization": f"Bearer {token}"}) as c:
            while True:
                jobs = c.get("/api/v1/admin/jobs").json()
                if any(j["source"] == "demo" and j["status"] == "succeeded" for j in jobs):
                    break
                if any(j["source"] == "demo" and j["status"] == "failed" for j in jobs):
                    raise SystemExit(f"demo ingest failed: {jobs}")
                time.sleep(2)
        time.sleep(3)  # let the keyword index and the search cache settle
        result = asyncio.run(_bench(stack.url("discovery"), movies))
    finally:
        stack.stop()
        shutil.rmtree(base_dir, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
