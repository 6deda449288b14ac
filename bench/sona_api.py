"""SONA over HTTP: recommendations and the personalization score (100 ids) for synthetic users with up
to 500 interactions, over the demo catalog ingested through the real ingestion app.

The SONA service runs as its own process (`media-gateway serve sona`), as in a deployment; the bench
drives it with one client at a time (latency, not throughput). `GET /health/live` of the same
process is the baseline, measured in the same run. Per-user state is cached in the service for
`user_state_ttl_sec`; the first request of each user (which builds it) is reported apart.

    python bench/sona_api.py [--titles N] [--users N]

Prints one JSON object."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.token_issuer import TestTokenIssuer
from tests.ingestion.tmdb_data import cache_dir
from tests.support import free_port, serving, world_traversable_dir

from media_gateway.core.migrations import run_migrations
from media_gateway.core.settings import Settings
from media_gateway.ingestion.app import create_app as create_ingestion
from media_gateway.ingestion.datasets import fetch_tmdb5000, tmdb5000_dir

ADMIN_DSN = os.environ.get("MG_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("MG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ADMIN_TOKEN = "bench-admin-token"  # noqa: S105 - a throwaway token for a throwaway database
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HISTORY_SIZES = (5, 20, 50, 100, 200, 350, 500)


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": pick(0.95),
        "p99_ms": pick(0.99),
        "n": len(ordered),
    }


async def timed(samples: list[float], call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    started = time.perf_counter()
    response = await call()
    samples.append((time.perf_counter() - started) * 1000)
    response.raise_for_status()
    return response


async def ingest_demo(settings: Settings) -> float:
    started = time.perf_counter()
    async with (
        serving(create_ingestion(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as client,
    ):
        job = await client.post("/api/v1/admin/ingest", json={"source": "demo"}, headers=ADMIN)
        job.raise_for_status()
        while True:
            state = (await client.get(f"/api/v1/admin/jobs/{job.json()['id']}", headers=ADMIN)).json()
            if state["status"] == "succeeded":
                break
            if state["status"] == "failed":
                raise SystemExit(f"demo ingest failed: {state}")
            await asyncio.sleep(1.0)
    return time.perf_counter() - started


async def catalog(database_url: str) -> list[tuple[str, list[str], float]]:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch("SELECT id, genres, coalesce(popularity, 0) AS p FROM catalog.content")
    finally:
        await conn.close()
    return [(str(r["id"]), list(r["genres"]), float(r["p"])) for r in rows]


def synthetic_history(
    rng: random.Random, titles: list[tuple[str, list[str], float]], size: int
) -> list[dict[str, Any]]:
    """A user who likes two or three genres: titles drawn by popularity, mostly within those genres."""
    genres = sorted({g for _, gs, _ in titles for g in gs})
    liked = set(rng.sample(genres, k=min(len(genres), rng.choice((2, 3)))))
    weights = [(p + 1.0) * (6.0 if liked & set(gs) else 0.5) for _, gs, p in titles]
    picked: dict[str, None] = {}
    while len(picked) < min(size, len(titles)):
        picked[rng.choices(titles, weights=weights, k=1)[0][0]] = None
    now = datetime.now(UTC)
    events = []
    for i, content_id in enumerate(picked):
        when = (now - timedelta(days=rng.uniform(0, 120))).isoformat()
        roll = rng.random()
        if roll < 0.55:
            event = {"type": "completed", "content_id": content_id}
        elif roll < 0.8:
            event = {
                "type": "progress",
                "content_id": content_id,
                "completion": round(rng.uniform(0.05, 0.9), 3),
            }
        elif roll < 0.95:
            event = {"type": "rated", "content_id": content_id, "rating": rng.choice((2, 3, 4, 5, 5))}
        else:
            event = {"type": "dismissed", "content_id": content_id}
        events.append({"event_id": str(uuid.uuid4()), "occurred_at": when, **event, "_i": i})
    for event in events:
        event.pop("_i")
    return events


def start_sona(settings: Settings, issuer: TestTokenIssuer, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        {
            "MG_ENVIRONMENT": "test",
            "MG_DATABASE_URL": str(settings.database_url),
            "MG_REDIS_URL": REDIS_URL,
            "MG_REDIS__PREFIX": settings.redis.prefix,
            "MG_DATA_DIR": str(settings.data_dir),
            "MG_ADMIN_TOKEN": ADMIN_TOKEN,
            "MG_LOG_LEVEL": "WARNING",
            "MG_AUTH__ISSUER": issuer.auth_settings()["issuer"],
            "MG_AUTH__JWKS_URL": issuer.jwks_url,
            # Nothing listens there: cold start proceeds without onboarding, as when auth is down.
            "MG_SERVICE_URLS__AUTH": f"http://127.0.0.1:{free_port()}",
            "MG_SONA__TRAIN_ON_START": "false",
            "MG_SONA__RETRAIN_INTERVAL_SEC": "0",
            "MG_SONA__RETRAIN_AFTER_EVENTS": "100000000",
            "MG_SONA__MODEL_POLL_SEC": "0",
            "MG_SONA__USER_STATE_TTL_SEC": "600",
        }
    )
    cli = shutil.which("media-gateway") or str(Path(sys.executable).with_name("media-gateway"))
    return subprocess.Popen([cli, "serve", "sona", "--port", str(port)], env=env)


async def wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit("the SONA process exited")
            try:
                if (await client.get("/health/ready")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise SystemExit("SONA did not become ready")


async def stored_users(database_url: str) -> list[tuple[uuid.UUID, int]]:
    """The users a kept run created, with the number of titles each interacted with."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch("SELECT user_id, count(*) AS n FROM sona.user_items GROUP BY user_id")
    finally:
        await conn.close()
    return [(r["user_id"], int(r["n"])) for r in rows]


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    if args.reuse:
        name, data_dir = args.reuse[0], Path(args.reuse[1])
    else:
        name = f"mg_bench_sona_{uuid.uuid4().hex[:6]}"
        admin = await asyncpg.connect(ADMIN_DSN)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        data_dir = world_traversable_dir("mg-bench-sona-")
    if args.keep:
        print(json.dumps({"database": name, "data_dir": str(data_dir)}), file=sys.stderr)
    base_dsn = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    settings = Settings(
        environment="test",
        database_url=f"{base_dsn}/{name}",
        redis_url=REDIS_URL,
        redis={"prefix": f"mgbench-{name}"},  # type: ignore[arg-type]
        data_dir=data_dir,
        admin_token=ADMIN_TOKEN,
        log_level="WARNING",
        ingestion={"demo_titles": args.titles, "enrichment_interval_sec": 0},  # type: ignore[arg-type]
    )
    process: subprocess.Popen[bytes] | None = None
    try:
        await run_migrations(settings)
        ingest_sec = None
        if not args.reuse:
            await fetch_tmdb5000(cache_dir())
            shutil.copytree(cache_dir(), tmdb5000_dir(settings))
            ingest_sec = round(await ingest_demo(settings), 1)
        titles = await catalog(str(settings.database_url))
        previous = await stored_users(str(settings.database_url)) if args.reuse else []
        with TestTokenIssuer() as issuer:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            process = start_sona(settings, issuer, port)
            await wait_ready(base, process)
            rng = random.Random(7)
            users = []
            plan = previous or [
                (uuid.uuid4(), HISTORY_SIZES[i % len(HISTORY_SIZES)]) for i in range(args.users)
            ]
            for user_id, size in plan:
                users.append((user_id, {"Authorization": f"Bearer {issuer.mint(user_id)}"}, size))
            async with httpx.AsyncClient(base_url=base, timeout=300) as client:
                started = time.perf_counter()
                total_events = sum(size for _, size in previous)
                training: dict[str, Any] | None = None
                if previous and args.retrain:
                    train = await client.post(
                        "/api/v1/admin/sona/train", params={"all_adapters": True}, headers=ADMIN
                    )
                    train.raise_for_status()
                    training = train.json()
                if not previous:
                    for _, headers, size in users:
                        events = synthetic_history(rng, titles, size)
                        total_events += len(events)
                        for start in range(0, len(events), 500):
                            batch = events[start : start + 500]
                            sent = await client.post(
                                "/api/v1/events", json={"events": batch}, headers=headers
                            )
                            sent.raise_for_status()
                    train = await client.post("/api/v1/admin/sona/train", headers=ADMIN)
                    train.raise_for_status()
                    training = train.json()
                events_sec = time.perf_counter() - started

                live: list[float] = []
                for _ in range(300):
                    await timed(live, lambda: client.get("/health/live"))
                first: list[float] = []
                recs: list[float] = []
                recs_500: list[float] = []
                score: list[float] = []
                ids = [t[0] for t in titles]
                for _, headers, _size in users:
                    await timed(
                        first,
                        lambda h=headers: client.post(
                            "/api/v1/recommendations", json={"limit": 20}, headers=h
                        ),
                    )
                for _round in range(args.rounds):
                    for _, headers, size in users:
                        body = {"limit": 20}
                        if rng.random() < 0.3:
                            body["region"] = "US"
                        samples = recs_500 if size >= 500 else recs
                        await timed(
                            samples,
                            lambda h=headers, b=body: client.post(
                                "/api/v1/recommendations", json=b, headers=h
                            ),
                        )
                        wanted = rng.sample(ids, min(100, len(ids)))
                        await timed(
                            score,
                            lambda h=headers, c=wanted: client.post(
                                "/api/v1/personalization/score", json={"content_ids": c}, headers=h
                            ),
                        )
                embed_one: list[float] = []
                embed_batch: list[float] = []
                for i, (_, headers, _size) in enumerate(users[:40]):
                    text = f"a quiet drama about a lighthouse keeper, take {i}"
                    await timed(
                        embed_one,
                        lambda h=headers, t=text: client.post(
                            "/api/v1/embeddings", json={"texts": [t], "adapter": "personal"}, headers=h
                        ),
                    )
                    texts = [f"{text}, variant {j}" for j in range(16)]
                    await timed(
                        embed_batch,
                        lambda h=headers, t=texts: client.post(
                            "/api/v1/embeddings", json={"texts": t, "adapter": "personal"}, headers=h
                        ),
                    )
                live_after: list[float] = []
                for _ in range(300):
                    await timed(live_after, lambda: client.get("/health/live"))
        return {
            "catalog_titles": len(titles),
            "users": len(users),
            "interactions": total_events,
            "history_sizes": list(HISTORY_SIZES),
            "demo_ingest_sec": ingest_sec,
            "events_and_training_sec": round(events_sec, 2),
            "training": training,
            "reused_data": bool(args.reuse),
            "client": "1 connection, sequential requests, client in another process",
            "baseline_health_live": percentiles(live + live_after),
            "recommendations_steady": percentiles(recs + recs_500),
            "recommendations_users_with_500": percentiles(recs_500),
            "recommendations_first_per_user_state_build": percentiles(first),
            "personalization_score_100_ids": percentiles(score),
            "embeddings_1_text_personal_adapter": percentiles(embed_one),
            "embeddings_16_texts_personal_adapter": percentiles(embed_batch),
            "targets": {
                "recommendations_p50_ms": 20,
                "recommendations_p99_ms": 60,
                "personalization_score_100_p50_ms": 5,
                "embedding_per_item_ms (TASK-003)": 50,
            },
        }
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if not (args.keep or args.reuse):
            await _drop(name, data_dir)


async def _drop(name: str, data_dir: Path) -> None:
    shutil.rmtree(data_dir, ignore_errors=True)
    redis = aioredis.from_url(REDIS_URL)
    try:
        keys = [k async for k in redis.scan_iter(match=f"mgbench-{name}:*", count=1000)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--titles", type=int, default=0, help="demo catalog size (0: all 4,803)")
    parser.add_argument("--users", type=int, default=70)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the database and data dir (for profiling)")
    parser.add_argument("--retrain", action="store_true", help="with --reuse: train everything again first")
    parser.add_argument(
        "--reuse", nargs=2, metavar=("DATABASE", "DATA_DIR"), help="measure again on what --keep left"
    )
    result = asyncio.run(bench(parser.parse_args()))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
