"""Google sign-in as a way to finish a pending /auth/authorize request.

authorize: the pending request is checked, a state (with nonce, PKCE verifier and a browser-binding
hash) is kept in Redis for 10 minutes, and the browser goes to Google. callback: the state is
consumed once (GETDEL), the code exchanged, the ID token validated, the user found, linked or
created, and the original request finished with OUR authorization code, never Google's tokens."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass

from media_gateway.auth.authorization import complete_authorization, load_pending
from media_gateway.auth.errors import PendingAuthorizationNotFound
from media_gateway.auth.google import repository
from media_gateway.auth.google.clients import (
    GoogleOAuth,
    GoogleRejected,
    GoogleUnavailable,
    InvalidIdToken,
)
from media_gateway.auth.google.schemas import GoogleIdentity, PendingGoogleSignIn
from media_gateway.core.app import ServiceContext
from media_gateway.core.errors import ProblemError
from media_gateway.core.redis import redis_key

logger = logging.getLogger(__name__)

_CLIENT = "google_oauth"
PROBLEM_TYPE = "https://media-gateway.dev/problems/google-sign-in"


def _problem(status: int, detail: str) -> ProblemError:
    return ProblemError(status, detail, type_=PROBLEM_TYPE)


def google_oauth(ctx: ServiceContext) -> GoogleOAuth:
    if not ctx.settings.auth.google_client_id:
        raise ProblemError(404, "Google sign-in is not configured on this server")
    client = ctx.extras.get(_CLIENT)
    if not isinstance(client, GoogleOAuth):
        client = GoogleOAuth(ctx.settings)
        ctx.extras[_CLIENT] = client
    return client


def _state_key(ctx: ServiceContext, state: str) -> str:
    return redis_key(ctx.settings, "auth", "google", "state", state)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class GoogleRedirect:
    url: str
    # Set as a cookie on the browser; the callback must come back with it.
    browser_binding: str
    ttl_sec: int
    secure: bool


async def start_sign_in(ctx: ServiceContext, request_id: str | None) -> GoogleRedirect:
    google = google_oauth(ctx)
    if not request_id:
        raise _problem(400, "request_id is required: Google sign-in finishes an /auth/authorize request")
    try:
        await load_pending(ctx, request_id)
    except PendingAuthorizationNotFound as exc:
        raise _problem(400, "the authorization request is unknown or expired; start again") from exc
    state = secrets.token_urlsafe(32)
    binding = secrets.token_urlsafe(32)
    pending = PendingGoogleSignIn(
        request_id=request_id,
        nonce=secrets.token_urlsafe(32),
        # RFC 7636 §4.1: 43-128 characters of the unreserved set; 64 random bytes give 86.
        code_verifier=secrets.token_urlsafe(64),
        browser_binding_sha256=_sha256(binding),
    )
    ttl = ctx.settings.auth.google_state_ttl_sec
    await ctx.redis.set(_state_key(ctx, state), pending.model_dump_json(), ex=ttl)
    url = google.authorization_url(state=state, nonce=pending.nonce, code_verifier=pending.code_verifier)
    return GoogleRedirect(
        url=url,
        browser_binding=binding,
        ttl_sec=ttl,
        secure=google.redirect_uri.startswith("https://"),
    )


async def _take_state(ctx: ServiceContext, state: str | None) -> PendingGoogleSignIn:
    raw = await ctx.redis.getdel(_state_key(ctx, state)) if state else None
    if raw is None:
        raise _problem(400, "unknown or expired sign-in state; start the sign-in again")
    return PendingGoogleSignIn.model_validate_json(raw)


async def finish_sign_in(
    ctx: ServiceContext,
    *,
    state: str | None,
    code: str | None,
    error: str | None,
    browser_binding: str | None,
) -> str:
    """Where the browser goes next: the client's redirect_uri with our code and its state."""
    google = google_oauth(ctx)
    pending = await _take_state(ctx, state)
    if not browser_binding or not hmac.compare_digest(
        _sha256(browser_binding), pending.browser_binding_sha256
    ):
        raise _problem(400, "this sign-in was started in another browser; start it again")
    if error == "access_denied":
        raise _problem(403, "Google sign-in was cancelled (access_denied)")
    if error:
        raise _problem(400, f"Google answered with an error: {error[:64]}")
    if not code:
        raise _problem(400, "the callback has neither a code nor an error")
    try:
        identity = await google.sign_in(code=code, code_verifier=pending.code_verifier, nonce=pending.nonce)
    except GoogleRejected as exc:
        raise _problem(400, f"Google refused the authorization code ({exc})") from exc
    except InvalidIdToken as exc:
        logger.warning("google id token rejected", extra={"reason": str(exc)})
        raise _problem(400, f"the Google ID token is not valid: {exc}") from exc
    except GoogleUnavailable as exc:
        logger.warning("google unavailable", extra={"error": str(exc)})
        raise ProblemError(502, "Google could not be reached; try again") from exc
    user_id = await _user_for(ctx, identity)
    try:
        return await complete_authorization(ctx, pending.request_id, user_id)
    except PendingAuthorizationNotFound as exc:
        raise _problem(400, "the authorization request expired during sign-in; start again") from exc


async def _user_for(ctx: ServiceContext, identity: GoogleIdentity) -> uuid.UUID:
    """The user of this Google account: already linked, else linked by verified email, else new."""
    async with ctx.engine.begin() as conn:
        linked = await repository.user_for_subject(conn, identity.subject)
        if linked is not None:
            return linked
        if not identity.email or not identity.email_verified:
            raise _problem(
                403, "Google has not verified this account's email address, so it cannot be used here"
            )
        user_id = await repository.insert_user(conn, email=identity.email, display_name=identity.name)
        if user_id is None:
            existing = await repository.lock_user_by_email(conn, identity.email)
            if existing is None:
                raise RuntimeError("a user with this email vanished while locked")
            user_id, email_verified = existing
            if not email_verified:
                await repository.take_over_unverified_account(conn, user_id)
                logger.info("google sign-in took over an unverified account", extra={"user_id": str(user_id)})
        return await repository.link_identity(
            conn, subject=identity.subject, user_id=user_id, email=identity.email
        )
