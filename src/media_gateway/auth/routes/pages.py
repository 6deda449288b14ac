"""Browser-facing endpoints: the authorization endpoint with its sign-in page, the device page."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from media_gateway.auth import accounts, pages
from media_gateway.auth.authorization import (
    AuthorizationRedirect,
    PendingAuthorization,
    complete_authorization,
    deny_authorization,
    load_pending,
    start_authorization,
)
from media_gateway.auth.csrf import check_csrf, issue_csrf, set_csrf_cookie
from media_gateway.auth.device import decide_user_code, describe_user_code
from media_gateway.auth.errors import AuthorizationRequestError, PendingAuthorizationNotFound
from media_gateway.auth.limits import limit_authorize, limit_login
from media_gateway.auth.params import Params
from media_gateway.core.app import ServiceContext

router = APIRouter(tags=["pages"])

# The pages must not be framed (clickjacking) nor cached, and load nothing from elsewhere. No
# `form-action`: browsers apply it to the redirect that follows the post, i.e. to the client's
# redirect_uri on another origin.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


def _html(content: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(content, status_code=status, headers=PAGE_HEADERS)


def _secure(ctx: ServiceContext) -> bool:
    return ctx.settings.token_issuer.startswith("https://")


def _google_enabled(ctx: ServiceContext) -> bool:
    return bool(ctx.settings.auth.google_client_id)


async def _login_page(
    ctx: ServiceContext,
    pending: PendingAuthorization,
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    csrf = await issue_csrf(ctx)
    response = _html(
        pages.login_consent_page(
            request_id=pending.request_id,
            csrf_token=csrf,
            client_name=pending.client_name,
            scope=pending.scope,
            google_enabled=_google_enabled(ctx),
            error=error,
            self_registered=pending.self_registered,
            redirect_uri=pending.redirect_uri,
        ),
        status,
    )
    set_csrf_cookie(response, csrf, secure=_secure(ctx))
    return response


def _bad_request(message: str) -> HTMLResponse:
    return _html(pages.message_page("Cannot continue", message), 400)


@router.get("/auth/authorize", response_class=HTMLResponse, dependencies=[Depends(limit_authorize)])
async def authorize(request: Request) -> Response:
    ctx: ServiceContext = request.app.state.ctx
    try:
        pending = await start_authorization(ctx, Params.of(request.query_params.multi_items()))
    except AuthorizationRequestError as exc:
        return _bad_request(f"This sign-in link is not valid: {exc}.")
    except AuthorizationRedirect as redirect:
        return RedirectResponse(redirect.url, status_code=303, headers={"Cache-Control": "no-store"})
    return await _login_page(ctx, pending)


@router.post("/auth/authorize", response_class=HTMLResponse, dependencies=[Depends(limit_login)])
async def authorize_decision(request: Request) -> Response:
    ctx: ServiceContext = request.app.state.ctx
    form = Params.of((await request.form()).multi_items())
    request_id = form.get("request_id", "")
    if not await check_csrf(ctx, request, form.get("csrf_token")):
        return _bad_request("This form has expired. Go back to the application and start again.")
    try:
        pending = await load_pending(ctx, request_id)
        if form.get("action") == "deny":
            url = await deny_authorization(ctx, request_id)
            return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
        try:
            user = await accounts.authenticate(
                ctx, email=form.get("email", "").strip().lower(), password=form.get("password", "")
            )
        except accounts.InvalidCredentials:
            return await _login_page(ctx, pending, error="Invalid email or password.", status=401)
        url = await complete_authorization(ctx, request_id, user.id)
    except PendingAuthorizationNotFound:
        return _bad_request("This sign-in request has expired. Go back to the application and start again.")
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


async def _device_page(
    ctx: ServiceContext, *, user_code: str = "", error: str | None = None, status: int = 200
) -> HTMLResponse:
    csrf = await issue_csrf(ctx)
    response = _html(pages.device_page(csrf_token=csrf, user_code=user_code, error=error), status)
    set_csrf_cookie(response, csrf, secure=_secure(ctx))
    return response


@router.get("/auth/device", response_class=HTMLResponse)
async def device_form(request: Request) -> Response:
    return await _device_page(request.app.state.ctx, user_code=request.query_params.get("user_code", "")[:16])


@router.post("/auth/device/verify", response_class=HTMLResponse, dependencies=[Depends(limit_login)])
async def device_verify(request: Request) -> Response:
    ctx: ServiceContext = request.app.state.ctx
    form = Params.of((await request.form()).multi_items())
    user_code = form.get("user_code", "")[:16]
    if not await check_csrf(ctx, request, form.get("csrf_token")):
        return await _device_page(
            ctx, user_code=user_code, error="The form expired; please try again.", status=400
        )
    try:
        user = await accounts.authenticate(
            ctx, email=form.get("email", "").strip().lower(), password=form.get("password", "")
        )
    except accounts.InvalidCredentials:
        return await _device_page(ctx, user_code=user_code, error="Invalid email or password.", status=401)
    info = await describe_user_code(ctx, user_code)
    approve = form.get("action") != "deny"
    if info is None or not await decide_user_code(ctx, info.user_code, user.id, approve=approve):
        return await _device_page(ctx, user_code=user_code, error="Unknown or expired code.", status=400)
    if approve:
        return _html(
            pages.message_page(
                "Device connected", f"{info.client_name} is now signed in. You can close this page."
            )
        )
    return _html(pages.message_page("Request denied", "The device was not connected."))
