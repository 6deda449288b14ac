"""Search endpoints: hybrid search (keyword + semantic) and autocomplete (keyword index alone)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from media_gateway.catalog.schemas import ContentKind, Monetization
from media_gateway.core.errors import ProblemError
from media_gateway.core.security.dependencies import OptionalPrincipal
from media_gateway.discovery.search.documents import Suggestion
from media_gateway.discovery.search.keyword import KeywordIndex
from media_gateway.discovery.search_schemas import (
    MAX_PAGE,
    MAX_PAGE_SIZE,
    MAX_QUERY_CHARS,
    SearchFilters,
    SearchRequest,
    SearchResponse,
)
from media_gateway.discovery.search_service import SearchService

router = APIRouter(prefix="/api/v1/search", tags=["search"])

MAX_PREFIX_CHARS = 100


class AutocompleteOut(BaseModel):
    query: str
    suggestions: list[Suggestion]


def keyword_index(request: Request) -> KeywordIndex:
    index = request.app.state.ctx.extras.get("keyword_index")
    if not isinstance(index, KeywordIndex) or not index.ready:
        raise ProblemError(503, "The search index is not ready yet.", headers={"Retry-After": "1"})
    return index


@router.get("/autocomplete", response_model=AutocompleteOut)
async def autocomplete(
    request: Request,
    q: str = Query(min_length=1, max_length=MAX_PREFIX_CHARS, description="What was typed so far."),
    limit: int = Query(10, ge=1, le=50),
) -> AutocompleteOut:
    """Titles and people whose words start with what was typed, one typo allowed in words of
    four characters or more; best first."""
    if not q.strip():
        raise ProblemError(
            422,
            "q must contain something to search for.",
            title="Validation failed",
            type_="https://media-gateway.dev/problems/validation",
        )
    suggestions = await keyword_index(request).autocomplete(q, limit)
    return AutocompleteOut(query=q, suggestions=suggestions)


def _respond(body: bytes) -> Response:
    # A `SearchResponse` already serialized: cached data goes to the wire without the models.
    return Response(body, media_type="application/json")


def search_service(request: Request) -> SearchService:
    search = request.app.state.ctx.extras.get("search_service")
    if not isinstance(search, SearchService):
        raise ProblemError(503, "Search is not ready yet.", headers={"Retry-After": "1"})
    # Ready means the keyword index is built; the semantic half degrades on its own.
    keyword_index(request)
    return search


@router.post("", response_model=SearchResponse)
async def search_post(request: Request, body: SearchRequest, principal: OptionalPrincipal) -> Response:
    """Keyword and semantic matches fused into one ranked page, with facets over the candidates.
    An exact or near-exact title match ranks first; a page past the end is empty, not an error.
    With a user's bearer token the results are re-ranked by their affinities (`personalized`)."""
    return _respond(await search_service(request).search(body, principal))


@router.get("", response_model=SearchResponse)
async def search_get(
    request: Request,
    principal: OptionalPrincipal,
    q: str = Query(min_length=1, max_length=MAX_QUERY_CHARS),
    page: int = Query(1, ge=1, le=MAX_PAGE),
    page_size: int = Query(20, ge=1, le=MAX_PAGE_SIZE),
    region: str | None = Query(None, pattern=r"^[A-Za-z]{2}$"),
    genres: list[str] = Query([]),
    platforms: list[str] = Query([]),
    monetization: list[Monetization] = Query([]),
    year_from: int | None = Query(None),
    year_to: int | None = Query(None),
    min_rating: float | None = Query(None),
    max_runtime: int | None = Query(None),
    kind: ContentKind | None = Query(None),
    max_certification: str | None = Query(None),
    only_my_services: bool = Query(False),
) -> Response:
    """`POST /search` with the request in the query string: filters repeat (`genres=A&genres=B`)."""
    try:
        body = SearchRequest(
            query=q,
            filters=SearchFilters(
                genres=genres,
                platforms=platforms,
                monetization=monetization,
                year_from=year_from,
                year_to=year_to,
                min_rating=min_rating,
                max_runtime=max_runtime,
                kind=kind,
                max_certification=max_certification,
                only_my_services=only_my_services,
            ),
            region=region,
            page=page,
            page_size=page_size,
        )
    except ValidationError as exc:
        # The same problem+json as a body that fails validation.
        raise RequestValidationError(
            [err | {"loc": ("query", *err.get("loc", ()))} for err in exc.errors(include_url=False)]
        ) from exc
    return _respond(await search_service(request).search(body, principal))
