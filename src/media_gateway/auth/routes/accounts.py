"""The JSON account API: register, login, logout, the user's profile, device approval."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse, Response

from media_gateway.auth import accounts
from media_gateway.auth.device import decide_user_code, normalize_user_code
from media_gateway.auth.limits import limit_login, limit_register
from media_gateway.auth.routes.oauth import NO_STORE
from media_gateway.auth.schemas import (
    DeviceDecision,
    LoginRequest,
    LogoutRequest,
    ProfileUpdate,
    RegisterRequest,
    UserProfile,
)
from media_gateway.core.app import ServiceContext
from media_gateway.core.errors import ProblemError
from media_gateway.core.security.dependencies import CurrentUser
from media_gateway.core.security.tokens import Principal

router = APIRouter(tags=["accounts"])

_INVALID_LOGIN = "invalid email or password"


@router.post("/api/v1/auth/register", status_code=202, dependencies=[Depends(limit_register)])
async def register(request: Request, body: RegisterRequest) -> JSONResponse:
    ctx: ServiceContext = request.app.state.ctx
    await accounts.register(ctx, email=body.email, password=body.password, display_name=body.display_name)
    # The same answer whether or not the address already had an account.
    return JSONResponse(
        {"status": "accepted", "detail": "If this address can be registered, its account is ready: sign in."},
        status_code=202,
    )


@router.post("/api/v1/auth/login", dependencies=[Depends(limit_login)])
async def login(request: Request, body: LoginRequest) -> JSONResponse:
    ctx: ServiceContext = request.app.state.ctx
    try:
        issued = await accounts.login(ctx, email=body.email, password=body.password)
    except accounts.InvalidCredentials as exc:
        raise ProblemError(401, _INVALID_LOGIN) from exc
    return JSONResponse(issued.response(), headers=NO_STORE)


@router.post("/api/v1/auth/logout", status_code=204)
async def logout(
    request: Request, user: CurrentUser, body: Annotated[LogoutRequest | None, Body()] = None
) -> Response:
    ctx: ServiceContext = request.app.state.ctx
    assert user.user_id is not None
    await accounts.logout(
        ctx,
        user_id=user.user_id,
        session_id=user.claims.get("sid"),
        refresh_token=body.refresh_token if body else None,
    )
    return Response(status_code=204)


def _require_profile_scope(user: Principal) -> None:
    # A third-party app sees or edits the profile only if the user granted it `profile`.
    if not user.has_scopes("profile"):
        raise ProblemError(
            403,
            "this endpoint needs the scope: profile",
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="profile"'},
        )


@router.get("/api/v1/users/me")
async def me(request: Request, user: CurrentUser) -> UserProfile:
    assert user.user_id is not None
    _require_profile_scope(user)
    profile = await accounts.get_profile(request.app.state.ctx, user.user_id)
    if profile is None:
        raise ProblemError(404, "the account no longer exists")
    return profile


@router.patch("/api/v1/users/me")
async def update_me(request: Request, user: CurrentUser, body: ProfileUpdate) -> UserProfile:
    assert user.user_id is not None
    _require_profile_scope(user)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    for name in ("platforms", "favourite_genres"):
        if name in changes and changes[name] is None:
            changes[name] = []
    profile = await accounts.update_profile(request.app.state.ctx, user.user_id, changes)
    if profile is None:
        raise ProblemError(404, "the account no longer exists")
    return profile


@router.post("/auth/device/approve")
async def approve_device(request: Request, user: CurrentUser, body: DeviceDecision) -> JSONResponse:
    assert user.user_id is not None
    ctx: ServiceContext = request.app.state.ctx
    # Only our own apps may approve: a third-party app holding a user's token must not be able to
    # connect a device (and so obtain first-party tokens) on the user's behalf.
    if user.client_id != ctx.settings.auth.first_party_client_id:
        raise ProblemError(403, "only the Media Gateway apps may approve a device")
    decided = await decide_user_code(
        request.app.state.ctx, body.user_code, user.user_id, approve=body.approve
    )
    if not decided:
        raise ProblemError(
            404, "no pending device request has this code (unknown, expired or already decided)"
        )
    return JSONResponse(
        {
            "user_code": normalize_user_code(body.user_code) or body.user_code,
            "status": "approved" if body.approve else "denied",
        }
    )
