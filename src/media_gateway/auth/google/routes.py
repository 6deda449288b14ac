"""GET /auth/oauth/google/authorize and /auth/oauth/google/callback (browser redirects)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse

from media_gateway.auth.google import service
from media_gateway.auth.google.clients import CALLBACK_PATH
from media_gateway.auth.limits import limit_authorize, limit_login
from media_gateway.core.app import ServiceContext

router = APIRouter(prefix="/auth/oauth/google", tags=["auth"])

BINDING_COOKIE = "mg_google_signin"
_NO_STORE = {"Cache-Control": "no-store"}


@router.get("/authorize", dependencies=[Depends(limit_authorize)], response_class=RedirectResponse)
async def google_authorize(
    request: Request,
    request_id: Annotated[str | None, Query(max_length=256)] = None,
) -> RedirectResponse:
    """Starts Google sign-in for a pending /auth/authorize request (its `request_id`)."""
    ctx: ServiceContext = request.app.state.ctx
    redirect = await service.start_sign_in(ctx, request_id)
    response = RedirectResponse(redirect.url, status_code=302, headers=_NO_STORE)
    # Lax: the cookie comes back on Google's top-level redirect to the callback, not on
    # cross-site subrequests.
    response.set_cookie(
        BINDING_COOKIE,
        redirect.browser_binding,
        max_age=redirect.ttl_sec,
        path=CALLBACK_PATH,
        httponly=True,
        secure=redirect.secure,
        samesite="lax",
    )
    return response


@router.get("/callback", dependencies=[Depends(limit_login)], response_class=RedirectResponse)
async def google_callback(
    request: Request,
    state: Annotated[str | None, Query(max_length=256)] = None,
    code: Annotated[str | None, Query(max_length=2048)] = None,
    error: Annotated[str | None, Query(max_length=256)] = None,
) -> RedirectResponse:
    """Google's redirect back; finishes the original request with our authorization code."""
    ctx: ServiceContext = request.app.state.ctx
    url = await service.finish_sign_in(
        ctx, state=state, code=code, error=error, browser_binding=request.cookies.get(BINDING_COOKIE)
    )
    response = RedirectResponse(url, status_code=302, headers=_NO_STORE)
    response.delete_cookie(BINDING_COOKIE, path=CALLBACK_PATH)
    return response
