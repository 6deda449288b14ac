"""`/health/live` and `/health/ready`. Ready means every dependency of this service answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from media_gateway.core.errors import PROBLEM_JSON

HealthCheck = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class DependencyCheck:
    name: str
    check: HealthCheck
    timeout_sec: float = 2.0


async def _run(dep: DependencyCheck) -> tuple[str, str | None, float]:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(dep.check(), dep.timeout_sec)
        error = None
    except TimeoutError:
        error = f"no answer within {dep.timeout_sec:g}s"
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    return dep.name, error, (time.perf_counter() - start) * 1000


def health_router(service: str) -> APIRouter:
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/live")
    async def live() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @router.get("/ready")
    async def ready(request: Request) -> JSONResponse:
        deps: list[DependencyCheck] = request.app.state.dependency_checks
        results = await asyncio.gather(*(_run(d) for d in deps))
        checks = {
            name: {"status": "ok" if error is None else "down", "latency_ms": round(ms, 2)}
            | ({"error": error} if error else {})
            for name, error, ms in results
        }
        failing = [name for name, error, _ in results if error is not None]
        if failing:
            return JSONResponse(
                {
                    "type": "https://media-gateway.dev/problems/not-ready",
                    "title": "Service Unavailable",
                    "status": 503,
                    "detail": f"{service} is not ready: {', '.join(failing)} not answering",
                    "service": service,
                    "failing": failing,
                    "checks": checks,
                },
                status_code=503,
                media_type=PROBLEM_JSON,
            )
        return JSONResponse({"status": "ready", "service": service, "checks": checks})

    return router
