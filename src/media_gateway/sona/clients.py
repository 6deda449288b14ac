"""Calls SONA makes to other services: the user's onboarding answers from auth."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from media_gateway.core.breaker import CircuitOpenError
from media_gateway.core.http import HttpClientFactory, ServiceClient
from media_gateway.core.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Onboarding:
    region: str | None
    platforms: tuple[str, ...]
    favourite_genres: tuple[str, ...]


class AuthClient:
    """`GET /api/v1/users/me` with the user's own token. Auth being down means no onboarding data,
    never a failed recommendation."""

    def __init__(self, settings: Settings, http: HttpClientFactory) -> None:
        # Cold start waits on this call, so it gets a short budget and a single retry.
        self._client: ServiceClient = http.client(
            "auth", settings.service_url("auth"), read_timeout_sec=1.0, connect_timeout_sec=0.5, retries=1
        )

    async def onboarding(self, token: str) -> Onboarding | None:
        try:
            response = await self._client.get(
                "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
            )
        except (httpx.HTTPError, CircuitOpenError) as exc:
            logger.warning("auth unreachable; cold start without onboarding", extra={"error": repr(exc)})
            return None
        if response.status_code != 200:
            logger.warning("auth refused the profile lookup", extra={"status": response.status_code})
            return None
        try:
            body = response.json()
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        region = body.get("region")
        return Onboarding(
            region=region.upper() if isinstance(region, str) and len(region) == 2 else None,
            platforms=tuple(p for p in body.get("platforms") or [] if isinstance(p, str)),
            favourite_genres=tuple(g for g in body.get("favourite_genres") or [] if isinstance(g, str)),
        )

    async def aclose(self) -> None:
        await self._client.aclose()
