"""The auth app's own plumbing, kept on `ctx.extras`: the signing keys and a verifier that reads
them straight from the database instead of over HTTP."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from media_gateway.auth import repository
from media_gateway.auth.keys import KeyStore
from media_gateway.auth.repository import ClientRow
from media_gateway.core.app import ServiceContext
from media_gateway.core.security.tokens import JwksCache, TokenVerifier

_STATE = "auth_state"
# core.security.dependencies looks the app's verifier up under this key.
_VERIFIER = "token_verifier"


class ClientCache:
    """Registered clients by id for the token endpoints, kept `ttl_sec`: every token request
    authenticates its client, and clients change rarely. Unknown ids are never cached, so a client
    registered on another replica works at once; a changed secret reaches every replica within the TTL."""

    MAX_ENTRIES = 1024

    def __init__(self, engine: AsyncEngine, ttl_sec: float) -> None:
        self._engine = engine
        self._ttl = ttl_sec
        self._entries: dict[str, tuple[float, ClientRow]] = {}

    async def get(self, client_id: str) -> ClientRow | None:
        entry = self._entries.get(client_id)
        if entry is not None and time.monotonic() - entry[0] < self._ttl:
            return entry[1]
        async with self._engine.connect() as conn:
            client = await repository.client_by_id(conn, client_id)
        if client is None:
            self._entries.pop(client_id, None)
            return None
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[client_id] = (time.monotonic(), client)
        return client

    def invalidate(self, client_id: str) -> None:
        self._entries.pop(client_id, None)


@dataclass(frozen=True)
class AuthState:
    keys: KeyStore
    verifier: TokenVerifier
    clients: ClientCache


def install_auth_state(ctx: ServiceContext) -> AuthState:
    keys = KeyStore(ctx.engine, ctx.settings)

    async def fetch() -> dict[str, Any]:
        return (await keys.get()).jwks()

    jwks = JwksCache(fetch, ttl_sec=max(ctx.settings.auth.keys_reload_sec, 1.0), refetch_min_interval_sec=1.0)
    verifier = TokenVerifier(
        jwks,
        issuer=ctx.settings.token_issuer,
        audience=ctx.settings.auth.audience,
        algorithms=list(ctx.settings.auth.algorithms),
        leeway_sec=ctx.settings.auth.leeway_sec,
    )
    clients = ClientCache(ctx.engine, ctx.settings.auth.client_cache_ttl_sec)
    state = AuthState(keys=keys, verifier=verifier, clients=clients)
    ctx.extras[_STATE] = state
    ctx.extras[_VERIFIER] = verifier
    return state


def auth_state(ctx: ServiceContext) -> AuthState:
    state = ctx.extras.get(_STATE)
    if isinstance(state, AuthState):
        return state
    return install_auth_state(ctx)
