"""Rate-limiter overhead, measured with and without it in the same run; prints one JSON object.

    python -P bench/auth_ratelimit.py [--runs 3000]

(-P keeps bench/ off sys.path, where a script named like a stdlib module would shadow it.)

Two views, each interleaved with its baseline so machine noise hits both alike:
- store: `RateLimiter.hit()` (the GCRA Lua script, one round trip) against a bare Redis PING, the
  floor of any round trip;
- HTTP: the auth service's real `limit_login` dependency on an endpoint of an auth-service app
  (`create_service_app`, same middleware stack) served by uvicorn in a thread, against the same
  endpoint without it (the overhead: the difference of the two latency distributions), and against
  an endpoint that makes one bare Redis PING (what any Redis-backed limiter must pay at least).
The limit is set high enough never to reject. Redis is MG_REDIS_URL, else 127.0.0.1:6379; keys live
under a throwaway prefix that is deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import numpy as np
import redis.asyncio as aioredis
import uvicorn
from fastapi import APIRouter, Depends, Request

from media_gateway.auth.limits import limit_login
from media_gateway.core.app import create_service_app
from media_gateway.core.ratelimit import RateLimiter
from media_gateway.core.settings import Settings

TARGETS = {"limiter_overhead_p99_ms": 1.0}


def _stats(samples: list[float]) -> dict[str, float]:
    values = np.array(samples) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 4),
        "p95_ms": round(float(np.percentile(values, 95)), 4),
        "p99_ms": round(float(np.percentile(values, 99)), 4),
        "mean_ms": round(float(values.mean()), 4),
    }


async def _interleaved(runs: int, *arms: Callable[[], Awaitable[Any]]) -> list[list[float]]:
    """Latencies of each arm, called in turn `runs` times after a warm-up."""
    samples: list[list[float]] = [[] for _ in arms]
    for _ in range(min(200, runs)):
        for arm in arms:
            await arm()
    for i in range(runs):
        # Rotating which arm goes first cancels any systematic warm-cache advantage.
        for j in range(len(arms)):
            k = (i + j) % len(arms)
            start = time.perf_counter()
            await arms[k]()
            samples[k].append(time.perf_counter() - start)
    return samples


def _app(settings: Settings) -> Any:
    router = APIRouter()

    @router.post("/bench/plain")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    @router.post("/bench/redis-ping")
    async def redis_ping(request: Request) -> dict[str, bool]:
        # The floor of anything that asks Redis: one bare round trip on the app's own client.
        await request.app.state.ctx.redis.ping()
        return {"ok": True}

    @router.post("/bench/limited", dependencies=[Depends(limit_login)])
    async def limited() -> dict[str, bool]:
        return {"ok": True}

    return create_service_app("auth", settings, routers=[router])


class _Server:
    def __init__(self, app: Any) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


async def main(runs: int) -> dict[str, Any]:
    from media_gateway.core.ratelimit import install_rate_limiting

    redis_url = os.environ.get("MG_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"mgbench-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
        redis_url=redis_url,
        redis={"prefix": prefix},  # type: ignore[arg-type]
        log_json=True,
        log_level="WARNING",
        auth={"rate_limit_login_per_min": 1_000_000_000},  # type: ignore[arg-type]
    )
    redis = aioredis.from_url(redis_url)
    limiter = RateLimiter(redis)
    key = f"{prefix}:bench:store"
    result: dict[str, Any] = {
        "runs": runs,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        # Latency of anything that waits on I/O grows with the machine's run queue; read with it.
        "load_average_1m_before": round(os.getloadavg()[0], 2),
    }
    try:
        ping, hit = await _interleaved(runs, redis.ping, lambda: limiter.hit(key, 1_000_000_000, 60))
        result["store"] = {"redis_ping": _stats(ping), "limiter_hit": _stats(hit)}
        result["store"]["hit_minus_ping_p50_ms"] = round(
            result["store"]["limiter_hit"]["p50_ms"] - result["store"]["redis_ping"]["p50_ms"], 4
        )

        app = _app(settings)
        install_rate_limiting(app)
        with _Server(app) as server:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
                checked = await http.post("/bench/limited")
                checked.raise_for_status()
                assert "RateLimit-Remaining" in checked.headers, "the limiter is not in the path"

                async def call(path: str) -> None:
                    response = await http.post(path)
                    response.raise_for_status()

                plain, pinging, limited = await _interleaved(
                    runs,
                    lambda: call("/bench/plain"),
                    lambda: call("/bench/redis-ping"),
                    lambda: call("/bench/limited"),
                )
        without, floor, with_ = _stats(plain), _stats(pinging), _stats(limited)
        result["http"] = {
            "without_limiter": without,
            "with_one_redis_ping": floor,
            "with_limiter": with_,
            "overhead_p50_ms": round(with_["p50_ms"] - without["p50_ms"], 4),
            "overhead_p99_ms": round(with_["p99_ms"] - without["p99_ms"], 4),
            # What the limiter adds beyond the Redis round trip it cannot avoid.
            "over_redis_ping_p50_ms": round(with_["p50_ms"] - floor["p50_ms"], 4),
            "over_redis_ping_p99_ms": round(with_["p99_ms"] - floor["p99_ms"], 4),
        }
        result["load_average_1m_after"] = round(os.getloadavg()[0], 2)
        result["targets"] = TARGETS
        result["meets_target"] = result["http"]["overhead_p99_ms"] <= TARGETS["limiter_overhead_p99_ms"]
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.runs)), indent=2))
