"""Who may call operator endpoints: the operator's admin token, or a client-credentials access token
with the `admin` scope (how services and automation call them)."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from fastapi import Request

from media_gateway.core.errors import ProblemError
from media_gateway.core.security.dependencies import token_verifier
from media_gateway.core.security.tokens import InvalidTokenError
from media_gateway.core.settings import Settings

ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 - a file name, not a secret


def ensure_admin_token(settings: Settings) -> Settings:
    """Settings with an admin token: the configured one, else one kept (0600) in the data dir."""
    if settings.admin_token:
        return settings
    path = Path(settings.data_dir) / ADMIN_TOKEN_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return settings.model_copy(update={"admin_token": path.read_text().strip()})


async def require_admin(request: Request) -> None:
    """FastAPI dependency: the admin token, or a client (not user) token with the `admin` scope."""
    ctx = request.app.state.ctx
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        raise ProblemError(401, "an admin bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    expected: str = ctx.settings.admin_token
    if expected and hmac.compare_digest(presented.encode(), expected.encode()):
        return
    try:
        principal = await token_verifier(ctx).verify(presented)
    except InvalidTokenError as exc:
        raise ProblemError(
            401, "invalid bearer token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from exc
    if principal.user_id is not None or not principal.has_scopes("admin"):
        raise ProblemError(
            403,
            "this endpoint needs a client token with the admin scope",
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="admin"'},
        )
