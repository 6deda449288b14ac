"""The auth service's token endpoint and the access-token check every other service runs.

1. Refresh grant (rotation: one conditional UPDATE, a new refresh token, an RS256-signed JWT) at 16
   concurrent clients, each rotating its own token chain, against `media-gateway serve auth` on the
   machine's real PostgreSQL and Redis. Baselines at the same concurrency in the same run: `GET
   /health/live` (the HTTP floor of the service) and the client-credentials grant (client
   authentication and signing without database writes).
2. Access-token verification as another service does it: `core.security.tokens.TokenVerifier` with a
   warm JWKS cache, against a bare `jwt.decode` with the key already in hand (the library floor).
   Target: p50 <= 0.2 ms.

Latencies depend on what else the machine runs; `server_cpu_ms_per_request` (the service process's
CPU time per request) is the steadier figure. Prints one JSON object."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import jwt
import psutil
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import free_port

from media_gateway.core.migrations import run_migrations
from media_gateway.core.security.tokens import TokenVerifier
from media_gateway.core.settings import Settings

CLIENTS = 16
REQUESTS_PER_CLIENT = 60
VERIFY_ITERATIONS = 5000
ADMIN_DSN = os.environ.get("MG_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("MG_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "bench password 1234"  # noqa: S105 - a throwaway account


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
        "n": len(ordered),
    }


def _cpu_sec(server: psutil.Process) -> float:
    times = server.cpu_times()
    return float(times.user + times.system)


async def _drive(
    base: str,
    step: Callable[[httpx.AsyncClient, int], Awaitable[None]],
    per_client: int,
    server: psutil.Process | None = None,
) -> dict[str, float]:
    samples: list[float] = []
    cpu_before = _cpu_sec(server) if server else 0.0

    async def client_loop(index: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            for _ in range(per_client):
                started = time.perf_counter()
                await step(client, index)
                samples.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client_loop(i) for i in range(CLIENTS)))
    result = _percentiles(samples)
    result["per_sec"] = round(len(samples) / (time.perf_counter() - started), 1)
    if server is not None:
        # CPU the service spent per request: much steadier than latency on a shared machine.
        result["server_cpu_ms_per_request"] = round((_cpu_sec(server) - cpu_before) * 1000 / len(samples), 3)
    return result


async def _wait_ready(base: str, proc: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(300):
            if proc.returncode is not None:
                raise RuntimeError("the auth service exited")
            try:
                if (await http.get("/.well-known/jwks.json")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the auth service did not start")


async def _bench_http(base: str, client_id: str, server: psutil.Process) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        email = f"bench-{uuid.uuid4().hex[:8]}@example.test"
        r = await http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        r.raise_for_status()
        chains: list[str] = []
        access_token = ""
        for _ in range(CLIENTS):
            r = await http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            r.raise_for_status()
            chains.append(r.json()["refresh_token"])
            access_token = r.json()["access_token"]
        r = await http.post(
            "/api/v1/admin/clients",
            headers={"Authorization": "Bearer bench-admin"},
            json={"name": "bench", "grant_types": ["client_credentials"], "scopes": ["internal"]},
        )
        r.raise_for_status()
        service = r.json()

    async def live(client: httpx.AsyncClient, index: int) -> None:
        (await client.get("/health/live")).raise_for_status()

    async def client_credentials(client: httpx.AsyncClient, index: int) -> None:
        r = await client.post(
            "/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(service["client_id"], service["client_secret"]),
        )
        r.raise_for_status()

    async def refresh(client: httpx.AsyncClient, index: int) -> None:
        r = await client.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": chains[index], "client_id": client_id},
        )
        r.raise_for_status()
        chains[index] = r.json()["refresh_token"]

    await _drive(base, refresh, 5)  # warm-up: pools, caches
    return {
        "refresh_grant": await _drive(base, refresh, REQUESTS_PER_CLIENT, server),
        "baseline_client_credentials_grant": await _drive(
            base, client_credentials, REQUESTS_PER_CLIENT, server
        ),
        "baseline_health_live": await _drive(base, live, REQUESTS_PER_CLIENT, server),
        "access_token": access_token,
    }


async def _bench_verify(settings: Settings, token: str) -> dict[str, object]:
    async with httpx.AsyncClient() as http:
        verifier = TokenVerifier.from_settings(settings, http)
        principal = await verifier.verify(token)  # warms the JWKS cache
        assert principal.user_id is not None
        jwks = (await http.get(settings.jwks_url)).json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid))

    verified: list[float] = []
    for _ in range(VERIFY_ITERATIONS):
        started = time.perf_counter()
        await verifier.verify(token)
        verified.append((time.perf_counter() - started) * 1000)
    bare: list[float] = []
    for _ in range(VERIFY_ITERATIONS):
        started = time.perf_counter()
        jwt.decode(
            token,
            key=key,
            algorithms=["RS256"],
            audience=settings.auth.audience,
            issuer=settings.token_issuer,
        )
        bare.append((time.perf_counter() - started) * 1000)
    return {
        "token_verifier": _percentiles(verified),
        "baseline_bare_jwt_decode": _percentiles(bare),
        "target_p50_ms": 0.2,
    }


async def main() -> dict[str, object]:
    database = f"mg_bench_auth_{uuid.uuid4().hex[:8]}"
    data_dir = Path(tempfile.mkdtemp(prefix="mg-bench-auth-"))
    conn = await asyncpg.connect(ADMIN_DSN)
    await conn.execute(f'CREATE DATABASE "{database}"')
    await conn.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    database_url = (
        f"{ADMIN_DSN.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+asyncpg://')}/{database}"
    )
    env = {
        **os.environ,
        "MG_DATABASE_URL": database_url,
        "MG_REDIS_URL": REDIS_URL,
        "MG_REDIS__PREFIX": f"mgbench-{database}",
        "MG_DATA_DIR": str(data_dir),
        "MG_ADMIN_TOKEN": "bench-admin",
        "MG_SERVICE_URLS__AUTH": base,
        "MG_LOG_LEVEL": "WARNING",
        # The bench measures the grants, not the auth rate limits (which have their own bench).
        "MG_AUTH__RATE_LIMIT_TOKEN_PER_MIN": "100000000",
        "MG_AUTH__RATE_LIMIT_LOGIN_PER_MIN": "100000000",
        "MG_AUTH__RATE_LIMIT_REGISTER_PER_HOUR": "100000000",
    }
    settings = Settings(database_url=database_url, redis_url=REDIS_URL, service_urls={"auth": base})  # type: ignore[arg-type]
    proc: asyncio.subprocess.Process | None = None
    try:
        await run_migrations(settings, ["auth"])
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "media_gateway.cli", "serve", "auth", "--port", str(port), env=env
        )
        await _wait_ready(base, proc)
        http_results = await _bench_http(base, settings.auth.first_party_client_id, psutil.Process(proc.pid))
        token = str(http_results.pop("access_token"))
        verify_results = await _bench_verify(settings, token)
        return {"clients": CLIENTS, **http_results, "verification": verify_results}
    finally:
        if proc is not None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)
        conn = await asyncpg.connect(ADMIN_DSN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.close()
        redis = aioredis.from_url(REDIS_URL)
        keys = [key async for key in redis.scan_iter(match=f"mgbench-{database}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
