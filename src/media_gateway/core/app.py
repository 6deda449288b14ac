"""The one way a service app is assembled: shared plumbing around a domain's routers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from media_gateway.core.db import make_engine, make_sessionmaker, ping
from media_gateway.core.errors import install_problem_handlers
from media_gateway.core.health import DependencyCheck, health_router
from media_gateway.core.http import HttpClientFactory
from media_gateway.core.metrics import HttpMetrics, RequestTelemetryMiddleware, metrics_router
from media_gateway.core.redis import make_redis
from media_gateway.core.request_id import RequestIdMiddleware
from media_gateway.core.security.dependencies import close_token_verifier
from media_gateway.core.settings import ServiceName, Settings


@dataclass
class ServiceContext:
    """What every request handler of a service may reach through `request.app.state.ctx`."""

    service: ServiceName
    settings: Settings
    registry: CollectorRegistry
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: aioredis.Redis
    http: HttpClientFactory
    extras: dict[str, object] = field(default_factory=dict)


Hook = Callable[[ServiceContext], Awaitable[None]]
# A service hands over resources whose lifetime is the app's (a consumer task, an MCP session
# manager) as async context managers entered after the shared plumbing is up.
LifespanPart = Callable[[ServiceContext], AbstractAsyncContextManager[None]]


def create_service_app(
    service: ServiceName,
    settings: Settings,
    *,
    routers: Sequence[APIRouter] = (),
    extra_checks: Callable[[ServiceContext], Sequence[DependencyCheck]] | None = None,
    lifespan_parts: Sequence[LifespanPart] = (),
    title: str | None = None,
) -> FastAPI:
    registry = CollectorRegistry(auto_describe=True)
    engine = make_engine(settings, application_name=f"media-gateway-{service}")
    redis = make_redis(settings)
    ctx = ServiceContext(
        service=service,
        settings=settings,
        registry=registry,
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        redis=redis,
        http=HttpClientFactory(settings, registry=registry),
    )

    async def redis_ping() -> None:
        await redis.ping()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(engine.dispose)
            stack.push_async_callback(redis.aclose)
            stack.push_async_callback(ctx.http.aclose)
            stack.push_async_callback(close_token_verifier, ctx)
            for part in lifespan_parts:
                await stack.enter_async_context(part(ctx))
            yield

    app = FastAPI(
        title=title or f"Media Gateway {service}",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.sessionmaker = ctx.sessionmaker
    checks = [
        DependencyCheck("postgres", lambda: ping(engine)),
        DependencyCheck("redis", redis_ping),
    ]
    if extra_checks is not None:
        checks.extend(extra_checks(ctx))
    app.state.dependency_checks = checks

    install_problem_handlers(app)
    app.include_router(health_router(service))
    app.include_router(metrics_router(registry))
    for router in routers:
        app.include_router(router)
    # Added last so it runs first: the request id must exist before metrics and handlers log.
    app.add_middleware(RequestTelemetryMiddleware, metrics=HttpMetrics(service, registry))
    app.add_middleware(RequestIdMiddleware)
    return app
