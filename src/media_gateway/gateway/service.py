from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import ClassVar

import httpx
from fastapi import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from media_gateway.core.app import ServiceContext
from media_gateway.core.breaker import CircuitOpenError
from media_gateway.core.errors import ProblemError
from media_gateway.core.http import ServiceClient
from media_gateway.core.ratelimit import RateLimitRejected, remember_decision
from media_gateway.core.security.dependencies import require_user, token_verifier
from media_gateway.core.security.tokens import InvalidTokenError, Principal
from media_gateway.core.settings import ServiceName
from media_gateway.gateway.limits import TierLimiter, caller_of
from media_gateway.gateway.proxy import UpstreamProxy
from media_gateway.gateway.routing import Route, route_for
from media_gateway.gateway.schemas import AggregateHealth, UpstreamHealth

# Policy violation: what a WebSocket peer is closed with when the server cannot send an HTTP 429.
CLOSE_POLICY_VIOLATION = 1008


class GatewayRuntime:
    """What the gateway keeps for its lifetime: the upstream clients and the rate limiter."""

    KEY: ClassVar[str] = "gateway_runtime"

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.proxy = UpstreamProxy(ctx)
        self.limiter = TierLimiter(ctx)

    @classmethod
    @asynccontextmanager
    async def running(cls, ctx: ServiceContext) -> AsyncIterator[None]:
        ctx.extras[cls.KEY] = cls(ctx)
        try:
            yield
        finally:
            ctx.extras.pop(cls.KEY, None)

    async def handle(self, request: Request) -> Response:
        route = route_for(request.url.path)
        if route is None:
            raise ProblemError(404, f"No resource at {request.url.path}")
        try:
            principal = await self._principal(request, route)
        except ProblemError:
            # A refused caller still spends its address's budget: a flood of bad tokens is throttled
            # like any other anonymous traffic.
            await self.limiter.admit(caller_of(request, self.ctx, None))
            raise
        decision = await self.limiter.admit(caller_of(request, self.ctx, principal))
        if decision is not None:
            remember_decision(request, decision)
        return await self.proxy.forward(request, route)

    async def admit_socket(self, websocket: WebSocket) -> bool:
        """Count a live-sync connection against its address; False (and the socket refused) when it
        is over budget."""
        try:
            await self.limiter.admit(caller_of(websocket, self.ctx, None))
        except RateLimitRejected as rejected:
            if "websocket.http.response" in websocket.scope.get("extensions", {}):
                await websocket.send_denial_response(rejected.response)
            else:
                await websocket.close(code=CLOSE_POLICY_VIOLATION, reason="rate limited")
            return False
        return True

    async def _principal(self, request: Request, route: Route) -> Principal | None:
        if route.access == "user":
            return await require_user(request)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        try:
            return await token_verifier(self.ctx).verify(token.strip())
        except InvalidTokenError:
            # Perhaps the operator's token, perhaps a bad one: the upstream decides, per address.
            return None


class HealthAggregator:
    """Asks every other service whether it is ready, in parallel, through the gateway's own clients."""

    def __init__(self, clients: Mapping[ServiceName, ServiceClient]) -> None:
        self.clients = clients

    async def _probe(self, client: ServiceClient) -> UpstreamHealth:
        base_url = str(client.base_url).rstrip("/")
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
        names = list(self.clients)
        results = await asyncio.gather(*(self._probe(self.clients[name]) for name in names))
        services = dict(zip(names, results, strict=True))
        status = "ready" if all(r.status == "ready" for r in results) else "degraded"
        return AggregateHealth(status=status, services=services)
