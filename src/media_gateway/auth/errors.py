"""Errors of the auth domain. OAuth endpoints answer RFC 6749 §5.2 JSON, not problem+json."""

from __future__ import annotations


class OAuthError(Exception):
    """An RFC 6749 §5.2 error response: `{"error": ..., "error_description": ...}`."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: dict[str, str] | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}
        self.extra = extra or {}


def invalid_client(description: str = "client authentication failed") -> OAuthError:
    # RFC 6749 §5.2: a failed client authentication is a 401 with a challenge.
    return OAuthError("invalid_client", description, status=401, headers={"WWW-Authenticate": "Basic"})


class PendingAuthorizationNotFound(Exception):
    """The /auth/authorize request this id named is unknown, expired or already completed."""


class AuthorizationRequestError(Exception):
    """The authorize request cannot be trusted to redirect (unknown client, bad redirect_uri): shown
    as a 400 page, never redirected."""
