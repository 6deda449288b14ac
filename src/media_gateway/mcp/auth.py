"""Authorization of the MCP HTTP transport (MCP authorization spec, OAuth 2.1 resource server).

Every request to `/mcp` needs a bearer access token from our auth server, verified like every other
service verifies one (cached JWKS, issuer, audience, expiry). Without one the answer is 401 with a
`WWW-Authenticate` challenge naming the RFC 9728 protected-resource metadata, which in turn names the
auth server, so a client can discover where to sign the user in."""

from __future__ import annotations

from collections.abc import Callable

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings

from media_gateway.core.security.tokens import InvalidTokenError, TokenVerifier
from media_gateway.core.settings import Settings

MCP_PATH = "/mcp"
PROTECTED_RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource"


def resource_url(settings: Settings) -> str:
    """The MCP endpoint as clients reach it: the OAuth resource identifier (RFC 8707, RFC 9728)."""
    return settings.mcp.public_url.rstrip("/") or f"{settings.service_url('mcp')}{MCP_PATH}"


def auth_settings(settings: Settings) -> AuthSettings:
    # Validated from strings, so a path-less issuer keeps its exact spelling (no trailing slash): RFC
    # 8414 compares issuers as strings.
    return AuthSettings.model_validate(
        {
            "issuer_url": settings.token_issuer,
            "resource_server_url": resource_url(settings),
            # Our tokens carry the system's audience (`MG_AUTH__AUDIENCE`), which the verifier
            # checks. A token asked for this resource (RFC 8707) names it in `aud` too, but tokens
            # from the API's own sign-in name none, and they are as much the user's.
            "validate_token_resource": False,
        }
    )


class AccessTokenVerifier:
    """The SDK's `TokenVerifier` protocol over the app's own verifier (one JWKS cache per app)."""

    def __init__(self, verifier: Callable[[], TokenVerifier]) -> None:
        self._verifier = verifier

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            principal = await self._verifier().verify(token)
        except InvalidTokenError:
            return None
        return AccessToken(
            token=token,
            # The SDK binds a session to (client, issuer, subject): a token of another user or client
            # cannot take over a session it did not open.
            client_id=principal.client_id or principal.subject,
            scopes=sorted(principal.scopes),
            expires_at=principal.expires_at,
            subject=principal.subject,
            claims=principal.claims,
        )


def request_token() -> str | None:
    """The bearer token the current MCP request was authorized with, if it came over HTTP."""
    access = get_access_token()
    return access.token if access is not None else None
