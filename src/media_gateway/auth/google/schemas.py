"""What Google sign-in keeps and passes around."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel


@dataclass(frozen=True)
class GoogleIdentity:
    """The person Google vouched for, from a verified ID token (and userinfo, when it answered)."""

    subject: str
    email: str | None
    email_verified: bool
    name: str | None = None
    picture: str | None = None


class PendingGoogleSignIn(BaseModel):
    """Kept in Redis under the `state` we sent Google, until the callback consumes it."""

    request_id: str
    nonce: str
    code_verifier: str
    # sha256 of the cookie set on the browser that started the sign-in.
    browser_binding_sha256: str
