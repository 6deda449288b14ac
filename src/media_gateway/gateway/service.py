from __future__ import annotations

import asyncio
import time

import httpx

from media_gateway.core.app import ServiceContext
from media_gateway.core.breaker import CircuitOpenError
from media_gateway.core.settings import SERVICE_NAMES, ServiceName
from media_gateway.gateway.schemas import AggregateHealth, UpstreamHealth


class HealthAggregator:
    """Asks every other service whether it is ready, in parallel, through the resilient client."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def _probe(self, service: ServiceName) -> UpstreamHealth:
        base_url = self.ctx.settings.service_url(service)
        client = self.ctx.http.client(service, base_url)
        start = time.perf_counter()
        try:
            response = await client.get("/health/ready")
        except (httpx.HTTPError, CircuitOpenError) as exc:
            return UpstreamHealth(
                status="unreachable",
                url=base_url,
                latency_ms=round((time.perf_counter() - start) * 1000, 2),
                detail=type(exc).__name__,
            )
        latency = round((time.perf_counter() - start) * 1000, 2)
        if response.status_code == 200:
            return UpstreamHealth(status="ready", url=base_url, latency_ms=latency)
        detail = None
        if response.headers.get("content-type", "").endswith("json"):
            detail = response.json().get("detail")
        return UpstreamHealth(status="not_ready", url=base_url, latency_ms=latency, detail=detail)

    async def aggregate(self) -> AggregateHealth:
        upstreams = [s for s in SERVICE_NAMES if s != "gateway"]
        results = await asyncio.gather(*(self._probe(s) for s in upstreams))
        services = dict(zip(upstreams, results, strict=True))
        status = "ready" if all(r.status == "ready" for r in results) else "degraded"
        return AggregateHealth(status=status, services=services)
