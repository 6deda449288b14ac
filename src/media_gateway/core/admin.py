"""The admin bearer token that guards operator endpoints until service tokens from auth replace it."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from fastapi import Request

from media_gateway.core.errors import ProblemError
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
    """FastAPI dependency: the caller presents the admin token as a bearer token."""
    expected: str = request.app.state.ctx.settings.admin_token
    if not expected:
        raise ProblemError(403, "The admin API is disabled: set MG_ADMIN_TOKEN to enable it.")
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise ProblemError(
            401, "A valid admin bearer token is required.", headers={"WWW-Authenticate": "Bearer"}
        )
