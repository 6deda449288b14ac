"""The MCP server's one upstream: the gateway's public API, called with the MCP caller's own token.

The models below read only the fields the tools use, so a service adding fields changes nothing here.
A failed call becomes a `GatewayError`, a tool error whose text the assistant reads: the problem
detail of a 4xx (the caller can fix the request), "unavailable, try again" for a 5xx or a timeout."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final, TypeVar

import httpx
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, ValidationError

from media_gateway.core.breaker import CircuitOpenError
from media_gateway.core.http import ServiceClient

PROBLEM_TYPES: Final = ("application/problem+json", "application/json")
# A validation problem lists every failing field; a handful is what a model can act on.
MAX_REPORTED_ERRORS: Final = 5

ModelT = TypeVar("ModelT", bound=BaseModel)


class GatewayError(ToolError):
    """A gateway call that did not succeed, worded for the assistant. `status` is None when no answer came."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DeepLinksIn(BaseModel):
    app: str | None = None
    web: str | None = None
    tv: str | None = None


class OfferIn(BaseModel):
    platform: str
    monetization: str
    price: float | None = None
    currency: str | None = None
    quality: str | None = None
    # Discovery gives all three links; SONA's cards carry the web one alone.
    deep_links: DeepLinksIn = DeepLinksIn()
    deep_link: str | None = None

    @property
    def link(self) -> str | None:
        return self.deep_link or self.deep_links.web or self.deep_links.app or self.deep_links.tv


class CardIn(BaseModel):
    id: str
    title: str
    kind: str | None = None
    year: int | None = None
    genres: list[str] = []
    runtime_minutes: int | None = None
    rating: float | None = None
    offers: list[OfferIn] = []


class SearchOut(BaseModel):
    query: str
    region: str
    total: int
    personalized: bool = False
    results: list[CardIn]


class CastIn(BaseModel):
    name: str
    order: int = 0


class ContentOut(BaseModel):
    id: str
    title: str
    kind: str | None = None
    original_title: str | None = None
    year: int | None = None
    runtime_minutes: int | None = None
    overview: str | None = None
    genres: list[str] = []
    cast: list[CastIn] = []
    directors: list[str] = []
    certifications: dict[str, str] = {}
    rating: float | None = None


class OfferGroupIn(BaseModel):
    offers: list[OfferIn]


class AvailabilityOut(BaseModel):
    region: str
    total: int
    groups: list[OfferGroupIn]


class PickIn(BaseModel):
    content: CardIn
    explanation: str = ""


class RecommendationsOut(BaseModel):
    recommendations: list[PickIn]
    cold_start: bool = False


class SimilarOut(BaseModel):
    content_id: str
    similar: list[PickIn]


class WatchlistItemIn(BaseModel):
    content_id: str
    added_at: dt.datetime | None = None


class WatchlistOut(BaseModel):
    items: list[WatchlistItemIn]
    count: int


class WatchlistResultOut(BaseModel):
    content_id: str
    in_watchlist: bool


class ResumeLinkIn(BaseModel):
    platform: str
    app: str | None = None
    web: str | None = None
    tv: str | None = None


class InProgressIn(BaseModel):
    content_id: str
    title: str
    kind: str | None = None
    year: int | None = None
    position_seconds: float
    duration_seconds: float | None = None
    completion: float | None = None
    updated_at: dt.datetime
    deep_link: ResumeLinkIn | None = None


class ContinueWatchingOut(BaseModel):
    items: list[InProgressIn]


class GatewayClient:
    """Typed calls to the gateway. `token` is the MCP caller's access token, forwarded as is: the
    gateway and the services behind it decide who the user is and what they may do."""

    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    async def live(self) -> None:
        response = await self._client.get("/health/live")
        response.raise_for_status()

    async def search(self, token: str | None, body: dict[str, Any]) -> SearchOut:
        return await self._json(SearchOut, "POST", "/api/v1/search", token, "search", json=body)

    async def content(self, token: str | None, content_id: str) -> ContentOut:
        return await self._json(ContentOut, "GET", f"/api/v1/content/{content_id}", token, "the catalog")

    async def availability(self, token: str | None, content_id: str, region: str | None) -> AvailabilityOut:
        params = {"region": region} if region else {}
        path = f"/api/v1/content/{content_id}/availability"
        return await self._json(AvailabilityOut, "GET", path, token, "the catalog", params=params)

    async def recommendations(self, token: str, body: dict[str, Any]) -> RecommendationsOut:
        path = "/api/v1/recommendations"
        return await self._json(RecommendationsOut, "POST", path, token, "recommendations", json=body)

    async def similar(self, token: str, content_id: str, limit: int, region: str | None) -> SimilarOut:
        params: dict[str, str | int] = {"limit": limit}
        if region:
            params["region"] = region
        path = f"/api/v1/content/{content_id}/similar"
        return await self._json(SimilarOut, "GET", path, token, "recommendations", params=params)

    async def watchlist(self, token: str) -> WatchlistOut:
        return await self._json(WatchlistOut, "GET", "/api/v1/sync/watchlist", token, "the watchlist")

    async def add_to_watchlist(self, token: str, content_id: str) -> WatchlistResultOut:
        path = f"/api/v1/sync/watchlist/{content_id}"
        return await self._json(WatchlistResultOut, "PUT", path, token, "the watchlist")

    async def remove_from_watchlist(self, token: str, content_id: str) -> WatchlistResultOut:
        path = f"/api/v1/sync/watchlist/{content_id}"
        return await self._json(WatchlistResultOut, "DELETE", path, token, "the watchlist")

    async def continue_watching(self, token: str, limit: int) -> ContinueWatchingOut:
        path = "/api/v1/playback/continue-watching"
        params = {"limit": limit}
        return await self._json(ContinueWatchingOut, "GET", path, token, "playback", params=params)

    async def raw(self, token: str | None, path: str, what: str) -> bytes:
        """A GET whose JSON body is passed on unchanged (resources)."""
        return (await self._send("GET", path, token, what)).content

    async def _json(
        self, model: type[ModelT], method: str, path: str, token: str | None, what: str, **kwargs: Any
    ) -> ModelT:
        response = await self._send(method, path, token, what, **kwargs)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise GatewayError(f"{what} gave an answer this server cannot read; try again later.") from exc

    async def _send(
        self, method: str, path: str, token: str | None, what: str, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = await self._client.request(method, path, headers=headers, **kwargs)
        except CircuitOpenError as exc:
            raise GatewayError(
                f"{what} is unavailable right now after repeated failures; try again shortly."
            ) from exc
        except httpx.TimeoutException as exc:
            raise GatewayError(f"{what} did not answer in time; try again later.") from exc
        except httpx.HTTPError as exc:
            raise GatewayError(f"{what} could not be reached; try again later.") from exc
        if response.status_code >= 400:
            raise _error_from(response, what)
        return response


def _error_from(response: httpx.Response, what: str) -> GatewayError:
    status = response.status_code
    problem = _problem(response)
    detail = str(problem.get("detail") or problem.get("title") or response.reason_phrase or status)
    errors = problem.get("errors")
    if isinstance(errors, list) and errors:
        reasons = [_validation_reason(error) for error in errors[:MAX_REPORTED_ERRORS]]
        detail = f"{detail} " + "; ".join(reason for reason in reasons if reason)
    if status >= 500:
        return GatewayError(f"{what} is unavailable right now ({status}: {detail}); try again later.", status)
    if status == 401:
        return GatewayError(f"The access token was refused ({detail}); sign in again.", status)
    if status == 429:
        wait = response.headers.get("retry-after")
        later = f" in {wait} s" if wait else " later"
        return GatewayError(f"Too many requests ({detail}); try again{later}.", status)
    return GatewayError(f"{detail} ({status} from {what})", status)


def _problem(response: httpx.Response) -> dict[str, Any]:
    # Only a problem document's own fields reach the assistant, never a raw body (an HTML error page,
    # a proxy's text).
    if not response.headers.get("content-type", "").startswith(PROBLEM_TYPES):
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _validation_reason(error: Any) -> str:
    if not isinstance(error, dict):
        return ""
    # FastAPI's location starts with where the field was ("body", "query", "path").
    location = [str(part) for part in error.get("loc", [])[1:]]
    message = str(error.get("msg", ""))
    return f"{'.'.join(location)}: {message}" if location else message
