from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from media_gateway.gateway.service import HealthAggregator

router = APIRouter()


@router.get("/health/aggregate", tags=["health"])
async def aggregate_health(request: Request) -> JSONResponse:
    result = await HealthAggregator(request.app.state.ctx).aggregate()
    return JSONResponse(result.model_dump(mode="json"), status_code=200 if result.status == "ready" else 503)
