"""The token endpoint's grants (RFC 6749 §4, RFC 8628 §3.4)."""

from __future__ import annotations

import uuid

from media_gateway.auth import repository
from media_gateway.auth.authorization import pkce_matches
from media_gateway.auth.errors import OAuthError
from media_gateway.auth.issuance import IssuedTokens, issue_client_token, issue_user_tokens, token_hash
from media_gateway.auth.oauth_clients import resolve_scope
from media_gateway.auth.params import Params
from media_gateway.auth.repository import ClientRow
from media_gateway.auth.resources import granted_resource, resolve_resource
from media_gateway.core.app import ServiceContext


def _required(params: Params, name: str) -> str:
    value = params.get(name)
    if not value:
        raise OAuthError("invalid_request", f"{name} is required")
    return value


async def authorization_code_grant(ctx: ServiceContext, client: ClientRow, params: Params) -> IssuedTokens:
    code = _required(params, "code")
    verifier = params.get("code_verifier")
    code_hash = token_hash(code)
    # Malformed or foreign before the code is spent; a mismatch with the code's resource spends it.
    requested_resource = resolve_resource(ctx.settings, params.get("resource"))
    error: OAuthError | None = None
    issued: IssuedTokens | None = None
    async with ctx.engine.begin() as conn:
        row = await repository.consume_code(conn, code_hash)
        if row is None:
            exists, family_id = await repository.used_code_family(conn, code_hash)
            if exists and family_id is not None:
                # A replayed code means it leaked: everything issued from it goes (RFC 6749 §4.1.2).
                await repository.revoke_family(conn, family_id, "authorization code replayed")
            error = OAuthError("invalid_grant", "the authorization code is invalid or was already used")
        elif row.expired:
            error = OAuthError("invalid_grant", "the authorization code has expired")
        elif row.client_id != client.client_id:
            error = OAuthError("invalid_grant", "the authorization code was issued to another client")
        elif params.get("redirect_uri", row.redirect_uri) != row.redirect_uri:
            error = OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
        elif not verifier:
            error = OAuthError("invalid_grant", "code_verifier is required (PKCE)")
        elif not pkce_matches(verifier, row.code_challenge):
            error = OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        elif requested_resource is not None and requested_resource != row.resource:
            error = OAuthError("invalid_target", "the authorization code was not issued for this resource")
        else:
            issued = await issue_user_tokens(
                ctx,
                conn,
                client_id=client.client_id,
                user_id=row.user_id,
                scope=row.scope,
                resource=row.resource,
            )
            assert issued.family_id is not None
            await repository.set_code_family(conn, code_hash, issued.family_id)
    if error is not None:
        raise error
    assert issued is not None
    return issued


async def refresh_token_grant(ctx: ServiceContext, client: ClientRow, params: Params) -> IssuedTokens:
    refresh = _required(params, "refresh_token")
    refresh_hash = token_hash(refresh)
    error: OAuthError | None = None
    issued: IssuedTokens | None = None
    async with ctx.engine.begin() as conn:
        rotated = await repository.rotate_refresh_token(conn, refresh_hash, client.client_id)
        if rotated is None:
            state = await repository.refresh_token_state(conn, refresh_hash)
            if (
                state is not None
                and state.client_id == client.client_id
                and state.rotated
                and not state.revoked
            ):
                # RFC 9700 §4.14.2: a rotated token used again was stolen (by someone): the whole
                # family goes, the legitimate holder signs in again.
                await repository.revoke_family(conn, state.family_id, "refresh token reused")
            error = OAuthError("invalid_grant", "the refresh token is invalid, expired or revoked")
        elif rotated.user_id is None:
            error = OAuthError("invalid_grant", "the refresh token has no user")
        else:
            family_scope = rotated.scope.split()
            requested = params.get("scope")
            scope = rotated.scope
            if requested:
                wanted = requested.split()
                if any(s not in family_scope for s in wanted):
                    # Raised inside the transaction: the rotation rolls back and the token stays usable.
                    raise OAuthError("invalid_scope", "a refresh may only narrow the original scope")
                scope = " ".join(dict.fromkeys(wanted))
            # Raised here too: a refused resource leaves the refresh token usable.
            resource = granted_resource(ctx.settings, rotated.resource, params.get("resource"))
            issued = await issue_user_tokens(
                ctx,
                conn,
                client_id=client.client_id,
                user_id=rotated.user_id,
                scope=scope,
                family_id=rotated.family_id,
                resource=resource,
            )
    if error is not None:
        raise error
    assert issued is not None
    return issued


async def client_credentials_grant(ctx: ServiceContext, client: ClientRow, params: Params) -> IssuedTokens:
    if client.is_public:
        raise OAuthError("unauthorized_client", "client_credentials needs a confidential client")
    scope = resolve_scope(client, params.get("scope"), for_user=False)
    resource = resolve_resource(ctx.settings, params.get("resource"))
    return await issue_client_token(ctx, client_id=client.client_id, scope=scope, resource=resource)


async def device_code_grant(ctx: ServiceContext, client: ClientRow, params: Params) -> IssuedTokens:
    device_code = _required(params, "device_code")
    if params.get("resource") is not None:
        # The device authorization request names no resource, so there is none to bind the grant to.
        raise OAuthError("invalid_target", "resource indicators are not supported with the device grant")
    device_hash = token_hash(device_code)
    error: OAuthError | None = None
    issued: IssuedTokens | None = None
    async with ctx.engine.begin() as conn:
        poll = await repository.lock_device_code(conn, device_hash)
        if poll is None or poll.client_id != client.client_id:
            error = OAuthError("invalid_grant", "unknown device_code")
        elif poll.status == "issued":
            error = OAuthError("invalid_grant", "the tokens for this device_code were already issued")
        elif poll.expired:
            error = OAuthError("expired_token", "the device_code has expired; start over")
        elif poll.status == "denied":
            error = OAuthError("access_denied", "the user denied the request")
        elif poll.status == "approved" and isinstance(poll.user_id, uuid.UUID):
            await repository.record_device_poll(
                conn, device_hash, interval_sec=poll.interval_sec, status="issued"
            )
            issued = await issue_user_tokens(
                ctx, conn, client_id=client.client_id, user_id=poll.user_id, scope=poll.scope
            )
        elif poll.since_last_poll is not None and poll.since_last_poll < poll.interval_sec:
            # RFC 8628 §3.5: polled too fast; the interval grows by 5 s for every later poll.
            interval = poll.interval_sec + 5
            await repository.record_device_poll(conn, device_hash, interval_sec=interval)
            error = OAuthError("slow_down", "polling too fast", extra={"interval": interval})
        else:
            await repository.record_device_poll(conn, device_hash, interval_sec=poll.interval_sec)
            error = OAuthError("authorization_pending", "the user has not decided yet")
    if error is not None:
        raise error
    assert issued is not None
    return issued
