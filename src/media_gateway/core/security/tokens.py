"""Access-token verification shared by every service: a cached JWKS, pinned algorithms, issuer,
audience and expiry with leeway. The user always comes from here, never from a body or query."""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from media_gateway.core.settings import Settings

logger = logging.getLogger(__name__)

JwksFetcher = Callable[[], Awaitable[dict[str, Any]]]


class InvalidTokenError(Exception):
    """The bearer token is missing, malformed, expired, or not signed by a key we trust."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (`user_id` set) or a client acting for itself (client credentials)."""

    subject: str
    client_id: str | None
    scopes: frozenset[str]
    token_id: str | None
    expires_at: int
    # The raw bearer token, so a service can forward it to another on the user's behalf.
    token: str = field(repr=False)
    claims: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def user_id(self) -> uuid.UUID | None:
        if self.claims.get("token_use") == "client":
            return None
        try:
            return uuid.UUID(self.subject)
        except ValueError:
            return None

    def has_scopes(self, *required: str) -> bool:
        return all(scope in self.scopes for scope in required)


class JwksCache:
    """The issuer's public keys by `kid`, refreshed after a TTL, and early (rate limited) when a
    token names a key we do not have yet, which is how a key rotation reaches every service."""

    def __init__(self, fetch: JwksFetcher, *, ttl_sec: float, refetch_min_interval_sec: float) -> None:
        self._fetch = fetch
        self._ttl = ttl_sec
        self._min_interval = refetch_min_interval_sec
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return time.monotonic() - self._fetched_at < self._ttl

    async def get(self, kid: str) -> jwt.PyJWK | None:
        key = self._keys.get(kid)
        if key is not None and self._fresh():
            return key
        async with self._lock:
            key = self._keys.get(kid)
            if key is not None and self._fresh():
                return key
            since = time.monotonic() - self._fetched_at
            if key is None and since < self._min_interval:
                return None
            try:
                await self._refresh()
            except (httpx.HTTPError, ValueError, KeyError, jwt.PyJWTError) as exc:
                # Keep verifying with the keys we have: a blip at the issuer must not sign everyone out.
                logger.warning("jwks refresh failed", extra={"error": type(exc).__name__})
                self._fetched_at = time.monotonic() - self._ttl + self._min_interval
            return self._keys.get(kid)

    async def _refresh(self) -> None:
        document = await self._fetch()
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document["keys"]:
            kid = entry.get("kid")
            if not kid or entry.get("use", "sig") != "sig":
                continue
            try:
                keys[kid] = jwt.PyJWK(entry)
            except jwt.PyJWKError:
                continue
        self._keys = keys
        self._fetched_at = time.monotonic()


@functools.lru_cache(maxsize=256)
def _cached_header(segment: str) -> dict[str, Any] | None:
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error):
        return None
    return header if isinstance(header, dict) else None


def _token_header(segment: str) -> dict[str, Any]:
    """The JOSE header of a token (not yet verified). Every token signed with one key has the same
    header segment, so parsing it once per key, not per request, takes a third off `verify`."""
    header = _cached_header(segment) if len(segment) <= 512 else None
    if header is None:
        raise InvalidTokenError("malformed token")
    return header


class TokenVerifier:
    # A client sends the same access token on every call for an hour; PyJWT spends most of a
    # verification (~0.2 ms) re-parsing it. A verified token is remembered briefly, never past its
    # expiry, and never longer than a withdrawn signing key could otherwise stay trusted.
    VERIFIED_CACHE_SIZE = 10_000
    VERIFIED_CACHE_TTL_SEC = 60.0

    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        audience: str,
        algorithms: list[str],
        leeway_sec: int,
    ) -> None:
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience
        self._algorithms = algorithms
        self._leeway = leeway_sec
        self._verified: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.AsyncClient) -> TokenVerifier:
        url = settings.jwks_url

        async def fetch() -> dict[str, Any]:
            response = await http.get(url)
            response.raise_for_status()
            document: dict[str, Any] = response.json()
            return document

        jwks = JwksCache(
            fetch,
            ttl_sec=settings.auth.jwks_cache_ttl_sec,
            refetch_min_interval_sec=settings.auth.jwks_refetch_min_interval_sec,
        )
        return cls(
            jwks,
            issuer=settings.token_issuer,
            audience=settings.auth.audience,
            algorithms=list(settings.auth.algorithms),
            leeway_sec=settings.auth.leeway_sec,
        )

    async def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None:
            valid_until, principal = cached
            if time.time() < valid_until:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        principal = await self._verify_signature(token)
        valid_until = min(principal.expires_at + self._leeway, time.time() + self.VERIFIED_CACHE_TTL_SEC)
        self._verified[token] = (valid_until, principal)
        if len(self._verified) > self.VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    async def _verify_signature(self, token: str) -> Principal:
        header = _token_header(token.partition(".")[0])
        alg = header.get("alg")
        kid = header.get("kid")
        # Pinned before any key is looked up: `none` and HS256-keyed-with-the-public-key never pass.
        if alg not in self._algorithms or not isinstance(kid, str):
            raise InvalidTokenError("token algorithm or key id not accepted")
        key = await self._jwks.get(kid)
        if key is None:
            raise InvalidTokenError("token signed by an unknown key")
        if key.algorithm_name != alg:
            raise InvalidTokenError("token algorithm does not match its key")
        return self.verify_with_key(token, key)

    def verify_with_key(self, token: str, key: jwt.PyJWK) -> Principal:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[key.algorithm_name],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(str(exc)) from exc
        scope = claims.get("scope", "")
        return Principal(
            subject=str(claims["sub"]),
            client_id=claims.get("client_id"),
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            token_id=claims.get("jti"),
            expires_at=int(claims["exp"]),
            token=token,
            claims=claims,
        )
