"""Search endpoints backed by the keyword index alone: autocomplete."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from media_gateway.core.errors import ProblemError
from media_gateway.discovery.search.documents import Suggestion
from media_gateway.discovery.search.keyword import KeywordIndex

router = APIRouter(prefix="/api/v1/search", tags=["search"])

MAX_QUERY_CHARS = 100


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
    q: str = Query(min_length=1, max_length=MAX_QUERY_CHARS, description="What was typed so far."),
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
