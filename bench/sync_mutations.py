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
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loadgen import LoadResult, LoadSpec, http_request, run_load
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
REQUESTS_PER_DEVICE = 2_000
# Offered loads of the open-loop runs (mutations/s from all devices together).
RATES = [500.0, 1000.0, 1500.0]


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


class ServiceProcess:
    """`media-gateway serve <service>` in a subprocess on the bench's database, Redis and test issuer."""

    def __init__(
        self,
        settings: Settings,
        issuer: TestTokenIssuer,
        workers: int = 1,
        *,
        service: str = "sync",
        extra_env: dict[str, str] | None = None,
        **sync_env: str,
    ) -> None:
        self.service = service
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
                "MG_WORKERS": str(workers),
            }
            | {f"MG_SYNC__{k.upper()}": v for k, v in sync_env.items()}
            | (extra_env or {})
        )
        self.process: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> ServiceProcess:
        command = [sys.executable, "-m", "media_gateway.cli", "serve", self.service, "--port", str(self.port)]
        self.process = subprocess.Popen(command, env=self.env, stdout=sys.stderr)  # noqa: ASYNC220
        async with httpx.AsyncClient(base_url=self.base) as http:
            for _ in range(600):
                try:
                    if (await http.get("/health/ready")).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.service} did not start")

    async def __aexit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=30)

    def cpu_seconds(self) -> float:
        """User + system CPU of the service's processes (the supervisor and its workers)."""
        assert self.process is not None
        root = psutil.Process(self.process.pid)
        return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])

    async def counters(self) -> dict[str, float]:
        async with httpx.AsyncClient(base_url=self.base) as http:
            text = (await http.get("/metrics")).text
        found: dict[str, float] = {}
        for name in ("transactions", "mutations", "rows"):
            match = re.search(rf"^mg_sync_commit_{name}_total (\S+)$", text, re.MULTILINE)
            found[name] = float(match.group(1)) if match else 0.0
        return found


async def _vacuum(database: str) -> None:
    """What autovacuum does between runs on a production server. This machine's PostgreSQL runs
    with autovacuum off, and without it the outbox's churn (a row in, a row out per mutation) and
    the progress updates leave dead rows that slow every later run down."""
    conn = await asyncpg.connect(ADMIN_DSN.rsplit("/", 1)[0] + f"/{database}")
    try:
        await conn.execute(
            "VACUUM (ANALYZE) sync.outbox, sync.operations, sync.user_progress, sync.user_watchlists"
        )
    finally:
        await conn.close()


async def _xact_commits(database: str) -> int:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        value = await conn.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", database)
        return int(value)
    finally:
        await conn.close()


def _device_requests(issuer: TestTokenIssuer, users: list[uuid.UUID], index: int) -> list[bytes]:
    """What one device sends, in order: 45 % watchlist adds, 10 % removes, 45 % progress reports."""
    rng = random.Random(index)
    headers = {
        "Authorization": f"Bearer {issuer.mint(users[index // DEVICES_PER_USER])}",
        "X-Device-ID": f"device-{index}",
    }
    requests = []
    for _ in range(REQUESTS_PER_DEVICE):
        roll = rng.random()
        content = f"title-{rng.randrange(2_000)}"
        if roll < 0.45:
            requests.append(http_request("PUT", f"/api/v1/sync/watchlist/{content}", headers=headers))
        elif roll < 0.55:
            requests.append(http_request("DELETE", f"/api/v1/sync/watchlist/{content}", headers=headers))
        else:
            body = {
                "content_id": content,
                "position_seconds": round(rng.uniform(60, 5_000), 1),
                "duration_seconds": 6_000,
                "state": "playing",
            }
            requests.append(
                http_request(
                    "POST",
                    "/api/v1/sync/progress",
                    headers=headers | {"Content-Type": "application/json"},
                    body=json.dumps(body).encode(),
                )
            )
    return requests


def _machine_busy_sec() -> float:
    """Busy CPU seconds of the whole machine (service, PostgreSQL, Redis and the load generator)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


async def _run(
    sync: ServiceProcess, requests: list[list[bytes]], rate: float | None, duration: float
) -> LoadResult:
    spec = LoadSpec("127.0.0.1", sync.port, requests, duration_sec=duration, rate_per_sec=rate, processes=1)
    return await asyncio.to_thread(run_load, spec)


def _check(result: LoadResult) -> dict[str, Any]:
    summary = result.summary()
    # A remove of a title the device's user does not have is an honest 404; anything else is an error.
    summary["failed"] = (
        sum(n for code, n in result.statuses.items() if code not in (200, 404)) + result.errors
    )
    return summary


async def _mutations(
    settings: Settings,
    issuer: TestTokenIssuer,
    database: str,
    duration: float,
    workers: int,
    rates: list[float],
    **sync_env: str,
) -> dict[str, Any]:
    users = [uuid.uuid4() for _ in range(DEVICES // DEVICES_PER_USER)]
    requests = [_device_requests(issuer, users, i) for i in range(DEVICES)]
    out: dict[str, Any] = {"workers": workers}
    async with ServiceProcess(settings, issuer, workers=workers, **sync_env) as sync:
        # Warm up first (JWKS fetch, pools, prepared statements), outside the counters.
        await _run(sync, requests, None, 1.0)
        await _vacuum(database)
        before, commits_before = await sync.counters(), await _xact_commits(database)
        cpu_before, busy_before = sync.cpu_seconds(), _machine_busy_sec()
        saturation = await _run(sync, requests, None, duration)
        cpu_after, busy_after = sync.cpu_seconds(), _machine_busy_sec()
        after, commits_after = await sync.counters(), await _xact_commits(database)
        closed = _check(saturation)
        mutations = after["mutations"] - before["mutations"]
        if mutations:
            closed["mutations_per_transaction"] = round(
                mutations / (after["transactions"] - before["transactions"]), 2
            )
            closed["rows_written_per_mutation"] = round((after["rows"] - before["rows"]) / mutations, 2)
            # Includes warm-up and the outbox relay's transactions; reads are not in pg_stat (no commit).
            closed["pg_commits_per_mutation"] = round((commits_after - commits_before) / mutations, 3)
            closed["service_cpu_ms_per_mutation"] = round((cpu_after - cpu_before) * 1000 / mutations, 3)
            closed["machine_cpu_ms_per_mutation"] = round((busy_after - busy_before) * 1000 / mutations, 3)
        out["closed_loop_saturation"] = closed
        for rate in rates:
            await _vacuum(database)
            out[f"open_loop_{int(rate)}_per_sec"] = _check(await _run(sync, requests, rate, duration))
    return out


async def _watchlist_fetch(settings: Settings, issuer: TestTokenIssuer) -> dict[str, Any]:
    async with ServiceProcess(settings, issuer) as sync:
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
            async with ServiceProcess(settings, issuer) as sync:
                live_requests = [[http_request("GET", "/health/live")]] * DEVICES
                await _run(sync, live_requests, None, 1.0)
                cpu_before = sync.cpu_seconds()
                live_run = await _run(sync, live_requests, None, duration / 2)
                live = _check(live_run)
                live["service_cpu_ms_per_request"] = round(
                    (sync.cpu_seconds() - cpu_before) * 1000 / max(1, len(live_run.samples)), 3
                )
            runs = {
                f"mutations_group_commit_{workers}_worker{'s' if workers > 1 else ''}": await _mutations(
                    settings, issuer, database, duration, workers, RATES
                )
                for workers in (1, 2)
            }
            single = await _mutations(
                settings,
                issuer,
                database,
                duration,
                1,
                [],
                group_commit_max_ops="1",
                group_commit_window_ms="0",
            )
            fetch = await _watchlist_fetch(settings, issuer)
        print(
            json.dumps(
                {
                    "devices": DEVICES,
                    "duration_sec": duration,
                    "load": "bench/loadgen.py: keep-alive HTTP/1.1, one connection per device; open loop "
                    "latencies count from each request's scheduled time",
                    **runs,
                    "baseline_mutations_one_per_transaction": single,
                    "baseline_health_live_closed_loop": live,
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
