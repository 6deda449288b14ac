"""What the gateway adds: the same requests straight to a service and through the gateway.

`media-gateway serve sync` and `media-gateway serve gateway` run as processes of their own, as in
production, on a scratch database `mg_bench_gateway_<random>` on 127.0.0.1:5432 (MG_BENCH_POSTGRES_DSN)
and a scratch Redis prefix. 16 connections (8 users x 2 devices) read their user's watchlist of 20
titles, a user route: through the gateway each request is also token-checked, counted against the
user's rate limit in Redis and forwarded over a kept-alive connection.

Reported for each path, direct (the baseline) and through the gateway: open-loop latency at fixed
offered rates, closed-loop throughput, and the CPU per request of the gateway process itself.

    python bench/gateway.py [DURATION_SEC]
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loadgen import LoadResult, LoadSpec, http_request, run_load
from bench.sync_mutations import ADMIN_DSN, REDIS_URL, ServiceProcess
from tests.fakes.token_issuer import TestTokenIssuer

from media_gateway.core.migrations import run_migrations
from media_gateway.core.settings import Settings

USERS = 8
DEVICES_PER_USER = 2
WATCHLIST = 20
RATES = [100.0, 300.0]


async def _run(port: int, requests: list[list[bytes]], rate: float | None, duration: float) -> LoadResult:
    spec = LoadSpec("127.0.0.1", port, requests, duration_sec=duration, rate_per_sec=rate, processes=1)
    return await asyncio.to_thread(run_load, spec)


async def _measure(
    target: ServiceProcess, gateway: ServiceProcess, requests: list[list[bytes]], duration: float
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    await _run(target.port, requests, None, 1.0)
    for rate in [*RATES, None]:
        cpu_before = gateway.cpu_seconds()
        result = await _run(target.port, requests, rate, duration)
        summary = result.summary()
        summary["failed"] = sum(n for code, n in result.statuses.items() if code != 200) + result.errors
        if target is gateway:
            summary["gateway_cpu_ms_per_request"] = round(
                (gateway.cpu_seconds() - cpu_before) * 1000 / max(1, len(result.samples)), 3
            )
        out[f"open_{int(rate)}_per_sec" if rate else "closed_16_connections"] = summary
    return out


async def main() -> None:
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
    database = f"mg_bench_gateway_{uuid.uuid4().hex[:8]}"
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
                gateway_env = {
                    "MG_SERVICE_URLS__SYNC": sync.base,
                    # Far above the load, so every request is counted and none refused.
                    "MG_GATEWAY__RATE_LIMIT_USER_PER_MIN": "1000000",
                }
                async with ServiceProcess(
                    settings, issuer, service="gateway", extra_env=gateway_env
                ) as gateway:
                    users = [uuid.uuid4() for _ in range(USERS)]
                    tokens = {u: issuer.mint(u) for u in users}
                    async with httpx.AsyncClient(base_url=sync.base) as http:
                        for user in users:
                            for n in range(WATCHLIST):
                                r = await http.put(
                                    f"/api/v1/sync/watchlist/title-{n}",
                                    headers={"Authorization": f"Bearer {tokens[user]}"},
                                )
                                r.raise_for_status()
                    requests = [
                        [
                            http_request(
                                "GET",
                                "/api/v1/sync/watchlist",
                                headers={"Authorization": f"Bearer {tokens[users[i // DEVICES_PER_USER]]}"},
                            )
                        ]
                        for i in range(USERS * DEVICES_PER_USER)
                    ]
                    direct = await _measure(sync, gateway, requests, duration)
                    through = await _measure(gateway, gateway, requests, duration)
        overhead = {
            key: {
                "p50_ms": round(through[key]["p50_ms"] - direct[key]["p50_ms"], 2),
                "p99_ms": round(through[key]["p99_ms"] - direct[key]["p99_ms"], 2),
            }
            for key in direct
            if key.startswith("open_")
        }
        print(
            json.dumps(
                {
                    "request": "GET /api/v1/sync/watchlist (20 titles), user token",
                    "direct_to_sync": direct,
                    "through_gateway": through,
                    "gateway_overhead": overhead,
                },
                indent=2,
            )
        )
    finally:
        admin = await asyncpg.connect(ADMIN_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
