"""POST /auth/register: RFC 7591 dynamic client registration (errors as RFC 7591 §3.2.2 JSON)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from media_gateway.auth.limits import limit_client_registration
from media_gateway.auth.registration import (
    check_registration_allowed,
    invalid_metadata,
    parse_registration,
    register_client,
)
from media_gateway.auth.routes.oauth import NO_STORE
from media_gateway.core.app import ServiceContext

router = APIRouter(tags=["oauth"])
MAX_BODY_BYTES = 64 * 1024


@router.post("/auth/register", status_code=201, dependencies=[Depends(limit_client_registration)])
async def register(request: Request) -> JSONResponse:
    ctx: ServiceContext = request.app.state.ctx
    check_registration_allowed(ctx, request.headers.get("authorization"))
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise invalid_metadata("the body must be application/json")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise invalid_metadata("the client metadata is too large")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_metadata("the body is not valid JSON") from exc
    registered = await register_client(ctx, parse_registration(body))
    return JSONResponse(registered, status_code=201, headers=NO_STORE)
