"""Sync service writes under load, and a full fetch of a 10,000-item watchlist.

32 devices (8 users x 4 devices) send acknowledged mutations (watchlist add/remove, progress reports)
for DURATION seconds against `media-gateway serve sync` in a subprocess, on a scratch database
`mg_bench_sync_<random>` on 127.0.0.1:5432 (MG_BENCH_POSTGRES_DSN) and a scratch Redis prefix.
Reports throughput, p50/p99 latency, and what group commit does: transactions and rows per mutation
from the service's own counters, and PostgreSQL commits per mutation (pg_stat_database xact_commit,
which also counts the event-outbox relay and reads).

Baselines measured in the same run, same concurrency: `GET /health/live` (the HTTP floor of the
process) and the same mutation load with group commit disabled (one mutation per transaction).
Targets: >= 1,000 acknowledged mutations/s with p99 <= 25 ms; 10k-item fetch p95 <= 100 ms.

    python bench/sync_mutations.py [DURATION_SEC]
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.token_issuer import TestTokenIssuer
from tests.support import free_port

from media_gateway.core.migrations import run_migrations
from media_gateway.core.settings import Settings
from media_gateway.sync.crdt import Timestamp

DEVICES = 32
DEVICES_PER_USER = 4
ADMIN_DSN = os.environ.get("MG_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("MG_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
WATCHLIST_SIZE = 10_000
FETCHES = 60


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(pick(0.95), 2),
        "p99_ms": round(pick(0.99), 2),
        "n": len(ordered),
    }


class SyncProcess:
    def __init__(self, settings: Settings, issuer: TestTokenIssuer, **sync_env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        auth = issuer.auth_settings()
        self.env = (
            os.environ
            | {
                "MG_DATABASE_URL": settings.effective_database_url,
                "MG_REDIS_URL": settings.effective_redis_url,
                "MG_REDIS__PREFIX": settings.redis.prefix,
                "MG_AUTH__ISSUER": auth["issuer"],
                "MG_AUTH__AUDIENCE": auth["audience"],
                "MG_AUTH__JWKS_URL": auth["jwks_url"],
                "MG_LOG_LEVEL": "WARNING",
                "MG_DATABASE__POOL_SIZE": "10",
            }
            | {f"MG_SYNC__{k.upper()}": v for k, v in sync_env.items()}
        )
        self.process: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> SyncProcess:
        command = [sys.executable, "-m", "media_gateway.cli", "serve", "sync", "--port", str(self.port)]
        self.process = subprocess.Popen(command, env=self.env, stdout=sys.stderr)  # noqa: ASYNC220
        async with httpx.AsyncClient(base_url=self.base) as http:
            for _ in range(600):
                try:
                    if (await http.get("/health/ready")).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("sync did not start")

    async def __aexit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=30)

    def cpu_seconds(self) -> float:
        """User + system CPU of the service process: on a shared machine, what a mutation costs."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def counters(self) -> dict[str, float]:
        async with httpx.AsyncClient(base_url=self.base) as http:
            text = (await http.get("/metrics")).text
        found: dict[str, float] = {}
        for name in ("transactions", "mutations", "rows"):
            match = re.search(rf"^mg_sync_commit_{name}_total (\S+)$", text, re.MULTILINE)
            found[name] = float(match.group(1)) if match else 0.0
        return found


async def _xact_commits(database: str) -> int:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        value = await conn.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", database)
        return int(value)
    finally:
        await conn.close()


Step = Callable[[httpx.AsyncClient, random.Random], Awaitable[httpx.Response]]


def _mutation(headers: dict[str, str]) -> Step:
    async def step(http: httpx.AsyncClient, rng: random.Random) -> httpx.Response:
        roll = rng.random()
        content = f"title-{rng.randrange(2_000)}"
        if roll < 0.45:
            return await http.put(f"/api/v1/sync/watchlist/{content}", headers=headers)
        if roll < 0.55:
            response = await http.delete(f"/api/v1/sync/watchlist/{content}", headers=headers)
            return response if response.status_code != 404 else httpx.Response(200)
        body = {
            "content_id": content,
            "position_seconds": rng.uniform(60, 5_000),
            "duration_seconds": 6_000,
            "state": "playing",
        }
        return await http.post("/api/v1/sync/progress", json=body, headers=headers)

    return step


def _live(_: dict[str, str]) -> Step:
    async def step(http: httpx.AsyncClient, rng: random.Random) -> httpx.Response:
        return await http.get("/health/live")

    return step


async def _load(
    base: str, issuer: TestTokenIssuer, make_step: Callable[[dict[str, str]], Step], duration: float
) -> dict[str, float]:
    users = [uuid.uuid4() for _ in range(DEVICES // DEVICES_PER_USER)]
    samples: list[float] = []
    deadline = 0.0
    warmup_end = 0.0
    errors = 0

    async def device(index: int, http: httpx.AsyncClient) -> None:
        nonlocal errors
        user = users[index // DEVICES_PER_USER]
        headers = {"Authorization": f"Bearer {issuer.mint(user)}", "X-Device-ID": f"device-{index}"}
        step = make_step(headers)
        rng = random.Random(index)
        while (now := time.perf_counter()) < deadline:
            started = now
            response = await step(http, rng)
            if response.status_code != 200:
                errors += 1
            if started >= warmup_end:
                samples.append((time.perf_counter() - started) * 1000)

    limits = httpx.Limits(max_connections=DEVICES, max_keepalive_connections=DEVICES)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        warmup_end = time.perf_counter() + 1.0
        deadline = warmup_end + duration
        await asyncio.gather(*(device(i, http) for i in range(DEVICES)))
    result = _percentiles(samples)
    result["per_sec"] = round(len(samples) / duration, 1)
    result["errors"] = errors
    return result


async def _mutations(
    settings: Settings, issuer: TestTokenIssuer, database: str, duration: float, **sync_env: str
) -> dict[str, Any]:
    async with SyncProcess(settings, issuer, **sync_env) as sync:
        # Warm up first (JWKS fetch, TLS context, pools, prepared statements), outside the counters.
        await _load(sync.base, issuer, _mutation, 1.0)
        before, commits_before = await sync.counters(), await _xact_commits(database)
        cpu_before = sync.cpu_seconds()
        result: dict[str, Any] = await _load(sync.base, issuer, _mutation, duration)
        cpu_after = sync.cpu_seconds()
        after, commits_after = await sync.counters(), await _xact_commits(database)
        mutations = after["mutations"] - before["mutations"]
        if mutations:
            result["mutations_per_transaction"] = round(
                mutations / (after["transactions"] - before["transactions"]), 2
            )
            result["rows_written_per_mutation"] = round((after["rows"] - before["rows"]) / mutations, 2)
            # Includes warm-up and the outbox relay's transactions; reads are not in pg_stat (no commit).
            result["pg_commits_per_mutation"] = round((commits_after - commits_before) / mutations, 3)
            result["service_cpu_ms_per_mutation"] = round((cpu_after - cpu_before) * 1000 / mutations, 3)
        return result


async def _watchlist_fetch(settings: Settings, issuer: TestTokenIssuer) -> dict[str, Any]:
    async with SyncProcess(settings, issuer) as sync:
        user, empty = uuid.uuid4(), uuid.uuid4()
        headers = {"Authorization": f"Bearer {issuer.mint(user)}"}
        empty_headers = {"Authorization": f"Bearer {issuer.mint(empty)}"}
        stamp = Timestamp(int(time.time() * 1000) - 60_000, 0, "bench").encode()
        async with httpx.AsyncClient(base_url=sync.base, timeout=120) as http:
            for start in range(0, WATCHLIST_SIZE, 2_000):
                ops = [
                    {"op_id": str(uuid.uuid4()), "kind": "watchlist.add", "content_id": f"t{i}", "hlc": stamp}
                    for i in range(start, start + 2_000)
                ]
                response = await http.post("/api/v1/sync/batch", json={"operations": ops}, headers=headers)
                response.raise_for_status()
            await asyncio.sleep(3)  # let the outbox relay finish publishing the adds' events

            async def timed(h: dict[str, str], expect: int) -> list[float]:
                samples = []
                for _ in range(FETCHES):
                    started = time.perf_counter()
                    response = await http.get("/api/v1/sync/watchlist", headers=h)
                    samples.append((time.perf_counter() - started) * 1000)
                    assert response.json()["count"] == expect
                return samples

            full = _percentiles(await timed(headers, WATCHLIST_SIZE))
            floor = _percentiles(await timed(empty_headers, 0))
            size = len((await http.get("/api/v1/sync/watchlist", headers=headers)).content)
        return {"items": WATCHLIST_SIZE, "response_bytes": size, "full": full, "empty_baseline": floor}


async def main() -> None:
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    database = f"mg_bench_sync_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    base_dsn = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    settings = Settings(
        database_url=f"{base_dsn}/{database}", redis_url=REDIS_URL, redis={"prefix": f"mgbench-{database}"}
    )
    try:
        await run_migrations(settings, ["sync"])
        with TestTokenIssuer() as issuer:
            async with SyncProcess(settings, issuer) as sync:
                await _load(sync.base, issuer, _live, 1.0)
                cpu_before = sync.cpu_seconds()
                live = await _load(sync.base, issuer, _live, duration / 2)
                live["service_cpu_ms_per_request"] = round(
                    (sync.cpu_seconds() - cpu_before) * 1000 / max(1, live["n"]), 3
                )
            grouped = await _mutations(settings, issuer, database, duration)
            single = await _mutations(
                settings, issuer, database, duration, group_commit_max_ops="1", group_commit_window_ms="0"
            )
            fetch = await _watchlist_fetch(settings, issuer)
        print(
            json.dumps(
                {
                    "devices": DEVICES,
                    "duration_sec": duration,
                    "mutations_group_commit": grouped,
                    "baseline_mutations_one_per_transaction": single,
                    "baseline_health_live": live,
                    "watchlist_fetch_10k": fetch,
                    "targets": {"mutations_per_sec": 1000, "mutation_p99_ms": 25, "fetch_10k_p95_ms": 100},
                },
                indent=2,
            )
        )
    finally:
        admin = await asyncpg.connect(ADMIN_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
        redis = aioredis.from_url(REDIS_URL)
        keys = [k async for k in redis.scan_iter(match=f"{settings.redis.prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
