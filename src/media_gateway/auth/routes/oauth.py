"""The OAuth endpoints: token, revocation, introspection, device authorization, metadata, JWKS."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from media_gateway.auth import grants
from media_gateway.auth.device import start_device_authorization
from media_gateway.auth.errors import OAuthError, invalid_client
from media_gateway.auth.introspection import introspect, revoke
from media_gateway.auth.limits import limit_device_authorization, limit_token_endpoint
from media_gateway.auth.oauth_clients import (
    GRANT_AUTHORIZATION_CODE,
    GRANT_CLIENT_CREDENTIALS,
    GRANT_DEVICE_CODE,
    GRANT_REFRESH_TOKEN,
    GRANT_TYPES,
    USER_SCOPES,
    authenticate_client,
    resolve_scope,
)
from media_gateway.auth.params import Params
from media_gateway.auth.repository import ClientRow
from media_gateway.auth.state import auth_state
from media_gateway.core.app import ServiceContext

router = APIRouter(tags=["oauth"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_GRANTS = {
    GRANT_AUTHORIZATION_CODE: grants.authorization_code_grant,
    GRANT_REFRESH_TOKEN: grants.refresh_token_grant,
    GRANT_CLIENT_CREDENTIALS: grants.client_credentials_grant,
    GRANT_DEVICE_CODE: grants.device_code_grant,
}


def oauth_error_response(exc: OAuthError) -> JSONResponse:
    body: dict[str, Any] = {"error": exc.error, "error_description": exc.description, **exc.extra}
    return JSONResponse(body, status_code=exc.status, headers={**NO_STORE, **exc.headers})


async def on_oauth_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OAuthError)
    return oauth_error_response(exc)


async def _form(request: Request) -> Params:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    form = await request.form()
    params = Params.of(form.multi_items())
    if params.duplicates:
        raise OAuthError(
            "invalid_request", f"repeated parameter(s): {', '.join(sorted(set(params.duplicates)))}"
        )
    return params


async def _client(ctx: ServiceContext, request: Request, params: Params) -> ClientRow:
    return await authenticate_client(
        auth_state(ctx).clients.get, request.headers.get("authorization"), params
    )


@router.post("/auth/token", dependencies=[Depends(limit_token_endpoint)])
async def token(request: Request) -> JSONResponse:
    ctx: ServiceContext = request.app.state.ctx
    params = await _form(request)
    grant_type = params.get("grant_type")
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required")
    handler = _GRANTS.get(grant_type)
    if handler is None:
        raise OAuthError("unsupported_grant_type", f"grant_type {grant_type} is not supported")
    client = await _client(ctx, request, params)
    if grant_type not in client.grant_types:
        raise OAuthError("unauthorized_client", f"this client may not use the {grant_type} grant")
    issued = await handler(ctx, client, params)
    return JSONResponse(issued.response(), headers=NO_STORE)


@router.post("/auth/revoke")
async def revoke_token(request: Request) -> JSONResponse:
    ctx: ServiceContext = request.app.state.ctx
    params = await _form(request)
    client = await _client(ctx, request, params)
    value = params.get("token")
    if not value:
        raise OAuthError("invalid_request", "token is required")
    await revoke(ctx, client, value)
    return JSONResponse({}, headers=NO_STORE)


@router.post("/auth/introspect")
async def introspect_token(request: Request) -> JSONResponse:
    ctx: ServiceContext = request.app.state.ctx
    params = await _form(request)
    client = await _client(ctx, request, params)
    if client.is_public:
        # RFC 7662 §2.1: the caller must be authorized; a public client proves nothing.
        raise invalid_client("introspection needs a confidential client")
    value = params.get("token")
    if not value:
        raise OAuthError("invalid_request", "token is required")
    return JSONResponse(await introspect(ctx, value), headers=NO_STORE)


@router.post("/auth/device", dependencies=[Depends(limit_device_authorization)])
async def device_authorization(request: Request) -> JSONResponse:
    ctx: ServiceContext = request.app.state.ctx
    params = await _form(request)
    client = await _client(ctx, request, params)
    if GRANT_DEVICE_CODE not in client.grant_types:
        raise OAuthError("unauthorized_client", "this client may not use the device grant")
    scope = resolve_scope(client, params.get("scope"), for_user=True)
    started = await start_device_authorization(ctx, client, scope)
    return JSONResponse(started.response(), headers=NO_STORE)


def server_metadata(ctx: ServiceContext) -> dict[str, Any]:
    issuer = ctx.settings.token_issuer
    auth_methods = ["client_secret_basic", "client_secret_post", "none"]
    metadata: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/auth/authorize",
        "token_endpoint": f"{issuer}/auth/token",
        "revocation_endpoint": f"{issuer}/auth/revoke",
        "introspection_endpoint": f"{issuer}/auth/introspect",
        "device_authorization_endpoint": f"{issuer}/auth/device",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "userinfo_endpoint": f"{issuer}/api/v1/users/me",
        # Only what a client may ask a user for: MCP clients request every advertised scope, and the
        # services' own (admin, internal) are granted to registered confidential clients only.
        "scopes_supported": list(USER_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "authorization_response_iss_parameter_supported": True,
    }
    if ctx.settings.auth.client_registration_enabled:
        metadata["registration_endpoint"] = f"{issuer}/auth/register"
    return metadata


@router.get("/.well-known/oauth-authorization-server")
async def oauth_metadata(request: Request) -> JSONResponse:
    return JSONResponse(server_metadata(request.app.state.ctx))


@router.get("/.well-known/openid-configuration")
async def openid_configuration(request: Request) -> JSONResponse:
    ctx: ServiceContext = request.app.state.ctx
    metadata = server_metadata(ctx)
    metadata.update(
        {
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": list(ctx.settings.auth.algorithms),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "email", "email_verified", "name"],
        }
    )
    return JSONResponse(metadata)


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> JSONResponse:
    keys = await auth_state(request.app.state.ctx).keys.get()
    # Short: services refetch on an unknown kid anyway, and retired keys should vanish soon.
    return JSONResponse(keys.jwks(), headers={"Cache-Control": "public, max-age=60"})
