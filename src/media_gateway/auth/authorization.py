"""The authorization endpoint's logic: validating /auth/authorize, pending requests (kept in Redis
while the user signs in), and finishing them with an authorization code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from urllib.parse import urlencode

from media_gateway.auth import repository
from media_gateway.auth.errors import AuthorizationRequestError, OAuthError, PendingAuthorizationNotFound
from media_gateway.auth.issuance import new_opaque_token, token_hash
from media_gateway.auth.oauth_clients import GRANT_AUTHORIZATION_CODE, SERVICE_ONLY_SCOPES
from media_gateway.auth.params import Params
from media_gateway.auth.resources import resolve_resource
from media_gateway.core.app import ServiceContext
from media_gateway.core.redis import redis_key

_PKCE_VALUE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636 §4.1
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]+$")


@dataclass(frozen=True)
class PendingAuthorization:
    request_id: str
    client_id: str
    client_name: str
    redirect_uri: str
    scope: str
    state: str | None
    code_challenge: str
    # RFC 8707: the one resource the code, and every token of its family, is for.
    resource: str | None = None
    # Registered by anyone (RFC 7591): the consent page says the client is not ours.
    self_registered: bool = False


def pkce_s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_matches(verifier: str, challenge: str) -> bool:
    if not _PKCE_VALUE.match(verifier):
        return False
    return hmac.compare_digest(pkce_s256(verifier), challenge)


def redirect_with(redirect_uri: str, params: dict[str, str | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}"


def _pending_key(ctx: ServiceContext, request_id: str) -> str:
    return redis_key(ctx.settings, "auth", "authorize", request_id)


class AuthorizationRedirect(Exception):
    """An error reported back to the (already validated) redirect_uri."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


async def start_authorization(ctx: ServiceContext, params: Mapping[str, str]) -> PendingAuthorization:
    """Validates an authorization request and stores it pending the user's decision.

    Raises AuthorizationRequestError (never redirect: the redirect_uri is not trusted yet) or
    AuthorizationRedirect (an error for the client at its redirect_uri)."""
    client_id = params.get("client_id")
    if not client_id:
        raise AuthorizationRequestError("client_id is missing")
    async with ctx.engine.connect() as conn:
        client = await repository.client_by_id(conn, client_id)
    if client is None:
        raise AuthorizationRequestError("unknown client")
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is None:
        if len(client.redirect_uris) != 1:
            raise AuthorizationRequestError("redirect_uri is required for this client")
        redirect_uri = client.redirect_uris[0]
    # Exact string comparison (RFC 9700 §4.1.3): no prefix, wildcard or normalization.
    if redirect_uri not in client.redirect_uris:
        raise AuthorizationRequestError("redirect_uri is not registered for this client")
    state = params.get("state")
    issuer = ctx.settings.token_issuer

    def fail(error: str, description: str) -> AuthorizationRedirect:
        url = redirect_with(
            redirect_uri, {"error": error, "error_description": description, "state": state, "iss": issuer}
        )
        return AuthorizationRedirect(url)

    if isinstance(params, Params) and params.duplicates:
        if "resource" in params.duplicates:
            raise fail("invalid_target", "only one resource per request is supported")
        raise fail("invalid_request", "a parameter was repeated")
    if params.get("response_type") != "code":
        raise fail("unsupported_response_type", "only response_type=code is supported")
    if GRANT_AUTHORIZATION_CODE not in client.grant_types:
        raise fail("unauthorized_client", "this client may not use the authorization code grant")
    challenge = params.get("code_challenge")
    if not challenge:
        raise fail("invalid_request", "code_challenge is required (PKCE)")
    if params.get("code_challenge_method") != "S256":
        raise fail("invalid_request", "code_challenge_method must be S256")
    if not _PKCE_VALUE.match(challenge):
        raise fail("invalid_request", "malformed code_challenge")
    allowed = [s for s in client.scopes if s not in SERVICE_ONLY_SCOPES]
    requested = params.get("scope")
    if requested and requested.strip():
        wanted = requested.split()
        if any(not _SCOPE_TOKEN.match(s) or s not in allowed for s in wanted):
            raise fail("invalid_scope", "scope not allowed for this client")
        scope = " ".join(dict.fromkeys(wanted))
    else:
        scope = " ".join(allowed)
    try:
        resource = resolve_resource(ctx.settings, params.get("resource"))
    except OAuthError as exc:
        raise fail(exc.error, exc.description) from exc
    pending = PendingAuthorization(
        request_id=secrets.token_urlsafe(24),
        client_id=client.client_id,
        client_name=client.name,
        redirect_uri=redirect_uri,
        scope=scope,
        state=state,
        code_challenge=challenge,
        resource=resource,
        self_registered=client.self_registered,
    )
    await ctx.redis.set(
        _pending_key(ctx, pending.request_id),
        json.dumps(asdict(pending)),
        ex=ctx.settings.auth.authorization_request_ttl_sec,
    )
    return pending


async def load_pending(ctx: ServiceContext, request_id: str) -> PendingAuthorization:
    raw = await ctx.redis.get(_pending_key(ctx, request_id)) if request_id else None
    if raw is None:
        raise PendingAuthorizationNotFound(request_id)
    return PendingAuthorization(**json.loads(raw))


async def _take_pending(ctx: ServiceContext, request_id: str) -> PendingAuthorization:
    # GETDEL: a pending request is completed at most once, even by two concurrent submissions.
    raw = await ctx.redis.getdel(_pending_key(ctx, request_id)) if request_id else None
    if raw is None:
        raise PendingAuthorizationNotFound(request_id)
    return PendingAuthorization(**json.loads(raw))


async def complete_authorization(ctx: ServiceContext, request_id: str, user_id: uuid.UUID) -> str:
    """Finishes a pending /auth/authorize request for a user authenticated by whatever means, and
    returns where to send the browser: the client's redirect_uri with `code` and `state`.

    Raises PendingAuthorizationNotFound for an unknown, expired or already completed request."""
    pending = await _take_pending(ctx, request_id)
    code = new_opaque_token()
    async with ctx.engine.begin() as conn:
        await repository.insert_code(
            conn,
            code_hash=token_hash(code),
            client_id=pending.client_id,
            user_id=user_id,
            redirect_uri=pending.redirect_uri,
            scope=pending.scope,
            code_challenge=pending.code_challenge,
            resource=pending.resource,
            ttl_sec=ctx.settings.auth.authorization_code_ttl_sec,
        )
    return redirect_with(
        pending.redirect_uri, {"code": code, "state": pending.state, "iss": ctx.settings.token_issuer}
    )


async def deny_authorization(ctx: ServiceContext, request_id: str) -> str:
    pending = await _take_pending(ctx, request_id)
    return redirect_with(
        pending.redirect_uri,
        {
            "error": "access_denied",
            "error_description": "the user denied the request",
            "state": pending.state,
            "iss": ctx.settings.token_issuer,
        },
    )
