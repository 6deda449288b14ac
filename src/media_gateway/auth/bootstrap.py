"""First start: the signing key, the first-party app client and the services' own client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from media_gateway.auth import repository
from media_gateway.auth.oauth_clients import (
    GRANT_AUTHORIZATION_CODE,
    GRANT_CLIENT_CREDENTIALS,
    GRANT_DEVICE_CODE,
    GRANT_REFRESH_TOKEN,
    USER_SCOPES,
    new_client_secret,
    secret_hash,
)
from media_gateway.auth.repository import ClientRow
from media_gateway.auth.state import auth_state
from media_gateway.core.app import ServiceContext
from media_gateway.core.settings import Settings

logger = logging.getLogger(__name__)

SERVICES_CLIENT_SECRET_FILE = "services-client-secret"  # noqa: S105 - a file name
SERVICES_SCOPES = ["admin", "internal"]


def services_client_secret(settings: Settings) -> str:
    """The services' client secret, kept 0600 in the data dir (made on first call)."""
    configured = settings.auth.services_client_secret.get_secret_value().strip()
    if configured:
        return configured
    path = Path(settings.data_dir) / SERVICES_CLIENT_SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(new_client_secret())
    return path.read_text().strip()


async def ensure_clients(ctx: ServiceContext) -> None:
    settings = ctx.settings
    redirect_uris = settings.auth.first_party_redirect_uris or [
        f"{settings.service_url('gateway')}/auth/callback"
    ]
    first_party = ClientRow(
        client_id=settings.auth.first_party_client_id,
        secret_hash=None,
        name="Media Gateway",
        redirect_uris=redirect_uris,
        grant_types=[GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN, GRANT_DEVICE_CODE],
        scopes=list(USER_SCOPES),
    )
    services = ClientRow(
        client_id=settings.auth.services_client_id,
        secret_hash=secret_hash(services_client_secret(settings)),
        name="Media Gateway services",
        redirect_uris=[],
        grant_types=[GRANT_CLIENT_CREDENTIALS],
        scopes=SERVICES_SCOPES,
    )
    async with ctx.engine.begin() as conn:
        await repository.upsert_client(conn, first_party)
        await repository.upsert_client(conn, services)


async def _purge_periodically(ctx: ServiceContext) -> None:
    while True:
        await asyncio.sleep(ctx.settings.auth.purge_interval_sec)
        try:
            async with ctx.engine.begin() as conn:
                deleted = await repository.purge_expired(conn)
            logger.info("auth purge", extra={"deleted": deleted})
        except (SQLAlchemyError, OSError) as exc:
            logger.warning("auth purge failed", extra={"error": type(exc).__name__})


@asynccontextmanager
async def auth_bootstrap(ctx: ServiceContext) -> AsyncIterator[None]:
    keys = await auth_state(ctx).keys.get()
    logger.info("auth signing key ready", extra={"kid": keys.current.kid})
    if ctx.settings.auth.bootstrap_clients:
        await ensure_clients(ctx)
    purge = asyncio.create_task(_purge_periodically(ctx), name="auth-purge")
    try:
        yield
    finally:
        purge.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purge
        await auth_state(ctx).keys.close()
