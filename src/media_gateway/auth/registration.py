"""RFC 7591 dynamic client registration: how an MCP assistant (or any app) becomes a client by itself.

A self-registered client is held to less than one an operator registers: user scopes only, the
authorization code grant (+ refresh), https or loopback redirect URIs, and it is marked so the consent
page tells the user it is not ours. A public one ("none") has no secret and, like every public client,
must use PKCE."""

from __future__ import annotations

import hmac
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from media_gateway.auth.errors import OAuthError
from media_gateway.auth.oauth_clients import (
    GRANT_AUTHORIZATION_CODE,
    GRANT_REFRESH_TOKEN,
    USER_SCOPES,
    create_client,
)
from media_gateway.auth.schemas import ClientRegistrationRequest
from media_gateway.core.app import ServiceContext

AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")
SELF_REGISTERED_GRANTS = (GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
UNNAMED = "Unnamed application"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def invalid_metadata(description: str) -> OAuthError:
    return OAuthError("invalid_client_metadata", description)


def invalid_redirect_uri(description: str) -> OAuthError:
    return OAuthError("invalid_redirect_uri", description)


def check_registration_allowed(ctx: ServiceContext, authorization: str | None) -> None:
    """Registration is on, and when the operator set `auth.registration_access_token` the caller
    presents it as a bearer token (compared in constant time)."""
    expected = ctx.settings.auth.registration_access_token.get_secret_value()
    if not ctx.settings.auth.client_registration_enabled:
        raise OAuthError(
            "access_denied",
            "dynamic client registration is disabled; ask the operator for a client",
            status=403,
        )
    if not expected:
        return
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise OAuthError(
            "invalid_token",
            "registration needs an initial access token",
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(presented.strip().encode(), expected.encode()):
        raise OAuthError(
            "invalid_token",
            "the initial access token is not valid",
            status=401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )


def _check_redirect_uri(uri: str) -> None:
    """https, or http on a loopback host (RFC 8252 §7.3); no fragment (RFC 6749 §3.1.2), no user info."""
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        raise invalid_redirect_uri(f"a redirect URI must not have a fragment: {uri}")
    if _CONTROL.search(uri) or " " in uri:
        raise invalid_redirect_uri("a redirect URI must not contain spaces or control characters")
    if parts.username is not None or parts.password is not None:
        raise invalid_redirect_uri(f"a redirect URI must not carry user info: {uri}")
    try:
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise invalid_redirect_uri(f"malformed redirect URI: {uri}") from exc
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and host in LOOPBACK_HOSTS:
        return
    raise invalid_redirect_uri(f"a redirect URI must be https, or http on a loopback address: {uri}")


@dataclass(frozen=True)
class RegistrationRequest:
    redirect_uris: list[str]
    auth_method: str
    grant_types: list[str]
    response_types: list[str]
    client_name: str | None
    scopes: list[str]


def parse_registration(body: Any) -> RegistrationRequest:
    """Validated client metadata; OAuthError with the RFC 7591 §3.2.2 error code otherwise."""
    if not isinstance(body, dict):
        raise invalid_metadata("the body must be a JSON object of client metadata")
    try:
        metadata = ClientRegistrationRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise invalid_metadata(f"{where}: {first['msg']}") from exc
    if metadata.token_endpoint_auth_method not in AUTH_METHODS:
        raise invalid_metadata(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
    grants = list(dict.fromkeys(metadata.grant_types))
    if not grants or any(g not in SELF_REGISTERED_GRANTS for g in grants):
        raise invalid_metadata(
            "a registered client may use the authorization_code and refresh_token grants only"
        )
    if GRANT_AUTHORIZATION_CODE not in grants:
        raise invalid_metadata("the refresh_token grant needs the authorization_code grant")
    response_types = list(dict.fromkeys(metadata.response_types))
    if response_types != ["code"]:
        # RFC 7591 §2.1: response types must match the grants; the code grant's is "code".
        raise invalid_metadata('response_types must be ["code"]')
    if not metadata.redirect_uris:
        raise invalid_redirect_uri("redirect_uris is required for the authorization_code grant")
    for uri in metadata.redirect_uris:
        _check_redirect_uri(uri)
    if metadata.client_name is not None and _CONTROL.search(metadata.client_name):
        raise invalid_metadata("client_name must not contain control characters")
    if metadata.scope is None or not metadata.scope.strip():
        scopes = list(USER_SCOPES)
    else:
        scopes = list(dict.fromkeys(metadata.scope.split()))
        refused = [s for s in scopes if s not in USER_SCOPES]
        if refused:
            raise invalid_metadata(
                f"scope not available to a registered client: {' '.join(refused)}; "
                f"allowed: {' '.join(USER_SCOPES)}"
            )
    return RegistrationRequest(
        redirect_uris=list(dict.fromkeys(metadata.redirect_uris)),
        auth_method=metadata.token_endpoint_auth_method,
        grant_types=grants,
        response_types=response_types,
        client_name=metadata.client_name,
        scopes=scopes,
    )


async def register_client(ctx: ServiceContext, request: RegistrationRequest) -> dict[str, Any]:
    """Registers the client; the RFC 7591 §3.2.1 response (its secret appears here only)."""
    async with ctx.engine.begin() as conn:
        created = await create_client(
            conn,
            name=request.client_name or UNNAMED,
            redirect_uris=request.redirect_uris,
            grant_types=request.grant_types,
            scopes=request.scopes,
            confidential=request.auth_method != "none",
            self_registered=True,
        )
    response: dict[str, Any] = {
        "client_id": created.client.client_id,
        "client_id_issued_at": int(time.time()),
        "redirect_uris": request.redirect_uris,
        "grant_types": request.grant_types,
        "response_types": request.response_types,
        "token_endpoint_auth_method": request.auth_method,
        "scope": " ".join(request.scopes),
    }
    if request.client_name is not None:
        response["client_name"] = request.client_name
    if created.secret is not None:
        response["client_secret"] = created.secret
        # 0: the secret does not expire (RFC 7591 §3.2.1).
        response["client_secret_expires_at"] = 0
    return response
