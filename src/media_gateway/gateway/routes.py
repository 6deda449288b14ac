from __future__ import annotations

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import JSONResponse
from starlette.responses import Response
from starlette.routing import Route

from media_gateway.gateway.relay import relay_websocket
from media_gateway.gateway.service import GatewayRuntime, HealthAggregator

router = APIRouter()
# Mounted after every other router of the app, so the gateway's own health and metrics win.
proxy_router = APIRouter()

PROXIED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def runtime(request: Request | WebSocket) -> GatewayRuntime:
    found: GatewayRuntime = request.app.state.ctx.extras[GatewayRuntime.KEY]
    return found


@router.get("/health/aggregate", tags=["health"])
async def aggregate_health(request: Request) -> JSONResponse:
    result = await HealthAggregator(runtime(request).proxy.clients).aggregate()
    return JSONResponse(result.model_dump(mode="json"), status_code=200 if result.status == "ready" else 503)


@proxy_router.websocket("/api/v1/sync/ws")
async def live_sync(websocket: WebSocket) -> None:
    gateway = runtime(websocket)
    if await gateway.admit_socket(websocket):
        await relay_websocket(websocket, gateway.ctx)


async def proxy(request: Request) -> Response:
    return await runtime(request).handle(request)


# A plain Starlette route: FastAPI's request handling (dependency solving, body and response models)
# has nothing to do for a proxy.
proxy_router.routes.append(Route("/{path:path}", proxy, methods=PROXIED_METHODS, include_in_schema=False))
