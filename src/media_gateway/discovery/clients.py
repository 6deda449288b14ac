"""Discovery's calls to other services: SONA (personalization scores) and auth (the user's profile).

Both forward the user's own bearer token: the upstream decides what that user may see."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import httpx
from pydantic import BaseModel, Field, ValidationError

from media_gateway.core.breaker import CircuitOpenError
from media_gateway.core.http import HttpClientFactory, ServiceClient
from media_gateway.core.settings import Settings
from media_gateway.discovery.search_schemas import Experiment

logger = logging.getLogger(__name__)

SCORE_PATH: Final = "/api/v1/personalization/score"
PROFILE_PATH: Final = "/api/v1/users/me"
MAX_SCORED_IDS: Final = 500
PROFILE_TIMEOUT_SEC: Final = 2.0
# A score call past the search's budget finishes in the background (to fill the affinity cache),
# but no later than this.
SCORE_TIMEOUT_SEC: Final = 2.0

FallbackReason = Literal["timeout", "error", "circuit_open"]


class PersonalizationUnavailable(Exception):
    def __init__(self, reason: FallbackReason, detail: str) -> None:
        super().__init__(detail)
        self.reason: FallbackReason = reason


class _ScoreBody(BaseModel):
    scores: dict[uuid.UUID, float] = {}
    components: dict[str, Any] = {}
    weight: float | None = Field(default=None, ge=0, le=1)
    experiment: Experiment | None = None


@dataclass(frozen=True, slots=True)
class Affinities:
    """The user's affinity (0 to 1) per content id; `weight` and `experiment` from their A/B variant."""

    scores: dict[uuid.UUID, float] = field(default_factory=dict)
    weight: float | None = None
    experiment: Experiment | None = None


class SonaClient:
    """`POST {sona}/api/v1/personalization/score`. Slow (past `SCORE_TIMEOUT_SEC`), failing or broken
    (breaker open) all raise `PersonalizationUnavailable`, whose reason the caller counts. The search
    budget (50 ms) is the caller's: see `Personalizer`."""

    def __init__(self, settings: Settings, http: HttpClientFactory) -> None:
        # No retries: a retry cannot fit in the budget.
        self._client: ServiceClient = http.client("sona", settings.service_url("sona"), retries=0)

    async def score(self, token: str, ids: list[uuid.UUID]) -> Affinities:
        body = {"content_ids": [str(i) for i in ids[:MAX_SCORED_IDS]]}
        try:
            async with asyncio.timeout(SCORE_TIMEOUT_SEC):
                response = await self._client.post(
                    SCORE_PATH, json=body, headers={"Authorization": f"Bearer {token}"}
                )
        except TimeoutError as exc:
            raise PersonalizationUnavailable("timeout", "SONA answered too slowly") from exc
        except CircuitOpenError as exc:
            raise PersonalizationUnavailable("circuit_open", str(exc)) from exc
        except httpx.HTTPError as exc:
            raise PersonalizationUnavailable("error", repr(exc)) from exc
        if response.status_code != 200:
            raise PersonalizationUnavailable("error", f"SONA answered {response.status_code}")
        try:
            parsed = _ScoreBody.model_validate_json(response.content)
        except ValidationError as exc:
            raise PersonalizationUnavailable("error", f"SONA's answer is malformed: {exc}") from exc
        scores = {i: min(1.0, max(0.0, s)) for i, s in parsed.scores.items()}
        return Affinities(scores=scores, weight=parsed.weight, experiment=parsed.experiment)

    async def aclose(self) -> None:
        await self._client.aclose()


class UserProfile(BaseModel):
    """The part of `GET {auth}/api/v1/users/me` search uses."""

    platforms: list[str] = []
    region: str | None = None
    max_certification: str | None = None


class ProfileUnavailable(Exception):
    """Auth could not say what the user subscribes to."""


class ProfileRejected(Exception):
    """Auth refused the token (401/403)."""


class AuthClient:
    def __init__(self, settings: Settings, http: HttpClientFactory) -> None:
        self._client: ServiceClient = http.client("auth", settings.service_url("auth"))

    async def profile(self, token: str) -> UserProfile:
        try:
            async with asyncio.timeout(PROFILE_TIMEOUT_SEC):
                response = await self._client.get(PROFILE_PATH, headers={"Authorization": f"Bearer {token}"})
        except (TimeoutError, CircuitOpenError, httpx.HTTPError) as exc:
            raise ProfileUnavailable(repr(exc)) from exc
        if response.status_code in (401, 403):
            raise ProfileRejected(f"auth answered {response.status_code}")
        if response.status_code != 200:
            raise ProfileUnavailable(f"auth answered {response.status_code}")
        try:
            return UserProfile.model_validate_json(response.content)
        except ValidationError as exc:
            raise ProfileUnavailable(f"auth's profile is malformed: {exc}") from exc

    async def aclose(self) -> None:
        await self._client.aclose()
