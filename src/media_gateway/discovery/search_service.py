"""Search for a caller: the user-dependent steps around the user-agnostic, cached `HybridSearch`.

request ─ only my services? ─ cache / hybrid search ─ personalized for a signed-in user ─ response

"Only my services" (`only_my_services: true`) needs a signed-in user (401 otherwise). Their
platforms, region and maximum certification come from `GET {auth}/api/v1/users/me` with their
token (auth unreachable: 503, since the filter cannot be honoured). The request then becomes an
ordinary one: platforms = the user's (intersected with any the request names), the stricter of the
two maximum certifications, the profile's region when the request names none. So the cache stays
keyed on what is asked, never on who asks. The profile's maximum certification applies only
together with `only_my_services`: that is the one time search reads the profile, and an anonymous
or plain search must not cost a call to auth.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson

from media_gateway.catalog.schemas import PLATFORMS
from media_gateway.core.app import ServiceContext
from media_gateway.core.errors import ProblemError
from media_gateway.core.security.tokens import Principal
from media_gateway.discovery.clients import (
    AuthClient,
    ProfileRejected,
    ProfileUnavailable,
    SonaClient,
    UserProfile,
)
from media_gateway.discovery.personalization import Personalizer
from media_gateway.discovery.search.certification import LADDER, NAMED_AGES, certification_age
from media_gateway.discovery.search.hybrid_runtime import CachedSearch
from media_gateway.discovery.search_schemas import SearchRequest


def stricter_certification(requested: str | None, profile: str | None) -> str | None:
    """The lower of two maxima; a profile rating this service cannot place is ignored."""
    profile_age = certification_age(profile)
    if profile_age is None or profile is None:
        return requested
    if requested is None:
        return profile.strip().upper() if profile.strip().upper() in LADDER else _rung(profile_age)
    return requested if (certification_age(requested) or 0) <= profile_age else _rung(profile_age)


def _rung(age: int) -> str:
    """The highest accepted maximum not above `age`."""
    return max((r for r in LADDER if NAMED_AGES[r] <= age), key=lambda r: NAMED_AGES[r], default=LADDER[0])


class SearchService:
    def __init__(self, cached: CachedSearch, personalizer: Personalizer, auth: AuthClient) -> None:
        self.cached = cached
        self.personalizer = personalizer
        self._auth = auth

    async def search(self, request: SearchRequest, principal: Principal | None) -> bytes:
        """The response as JSON: the cached data goes to the wire through orjson, without the models."""
        outcome: dict[str, Any]
        if request.filters.only_my_services:
            mine = await self._only_my_services(request, principal)
            if mine is None:
                nothing = await self.cached.engine.nothing(request)
                outcome = nothing.model_dump(mode="json")
            else:
                outcome = await self.cached.search(mine)
        else:
            outcome = await self.cached.search(request)
        if principal is None or principal.user_id is None:
            return orjson.dumps(outcome["response"])
        response = await self.personalizer.apply(
            outcome, principal, request.page, request.page_size, self.cached.engine.summaries
        )
        return orjson.dumps(response)

    async def _only_my_services(
        self, request: SearchRequest, principal: Principal | None
    ) -> SearchRequest | None:
        """The request with the user's services as its platforms; None when that leaves none."""
        if principal is None or principal.user_id is None:
            raise ProblemError(
                401,
                "only_my_services needs a signed-in user's bearer token.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            profile = await self._auth.profile(principal.token)
        except ProfileRejected as exc:
            raise ProblemError(
                401, "auth did not accept the token.", headers={"WWW-Authenticate": "Bearer"}
            ) from exc
        except ProfileUnavailable as exc:
            raise ProblemError(
                503,
                "Your subscribed services cannot be read right now; try again or search without "
                "only_my_services.",
                headers={"Retry-After": "5"},
            ) from exc
        return my_services_request(request, profile)


def my_services_request(request: SearchRequest, profile: UserProfile) -> SearchRequest | None:
    platforms = {p.strip().casefold() for p in profile.platforms} & set(PLATFORMS)
    if request.filters.platforms:
        platforms &= set(request.filters.platforms)
    if not platforms:
        return None
    filters = request.filters.model_copy(
        update={
            "platforms": sorted(platforms),
            "only_my_services": False,
            "max_certification": stricter_certification(
                request.filters.max_certification, profile.max_certification
            ),
        }
    )
    region = request.region
    if region is None and profile.region and len(profile.region) == 2 and profile.region.isalpha():
        region = profile.region.upper()
    return request.model_copy(update={"filters": filters, "region": region})


@asynccontextmanager
async def search_service_runtime(ctx: ServiceContext) -> AsyncIterator[None]:
    """Publish `ctx.extras["search_service"]`; needs `search_runtime` before it."""
    cached = ctx.extras.get("hybrid_search")
    if not isinstance(cached, CachedSearch):
        raise RuntimeError("search_service_runtime needs search_runtime to run first")
    sona = SonaClient(ctx.settings, ctx.http)
    auth = AuthClient(ctx.settings, ctx.http)
    personalizer = Personalizer(ctx.settings, ctx.redis, sona, ctx.registry)
    try:
        ctx.extras.update(search_service=SearchService(cached, personalizer, auth))
        yield
    finally:
        await personalizer.aclose()
        await sona.aclose()
        await auth.aclose()
