"""SONA's user endpoints: thin wrappers over the services; the user always comes from the token."""

from __future__ import annotations

import uuid
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request, Response

from media_gateway.core.security.dependencies import CurrentUser
from media_gateway.sona import inference
from media_gateway.sona.events import record_api_events
from media_gateway.sona.experiments import ExperimentService
from media_gateway.sona.profile import profile
from media_gateway.sona.recommend import Recommender
from media_gateway.sona.runtime import SonaRuntime, sona_runtime_of
from media_gateway.sona.schemas import (
    EmbeddingRequest,
    EmbeddingResponse,
    EventBatch,
    EventBatchResult,
    ProfileResponse,
    RecommendationRequest,
    RecommendationResponse,
    ScoreRequest,
    ScoreResponse,
    SimilarResponse,
)

router = APIRouter(prefix="/api/v1", tags=["sona"])


def runtime(request: Request) -> SonaRuntime:
    return sona_runtime_of(request.app.state.ctx)


def experiments(request: Request) -> ExperimentService:
    ctx = request.app.state.ctx
    service = ctx.extras.get("sona_experiments")
    if not isinstance(service, ExperimentService):
        service = ExperimentService(ctx.engine, ctx.settings.sona)
        ctx.extras["sona_experiments"] = service
    return service


def recommender(request: Request) -> Recommender:
    ctx = request.app.state.ctx
    service = ctx.extras.get("sona_recommender")
    sona = runtime(request)
    if not isinstance(service, Recommender) or service.runtime is not sona:
        service = Recommender(sona, experiments(request))
        ctx.extras["sona_recommender"] = service
    return service


@router.post("/recommendations", response_model=RecommendationResponse)
async def recommendations(
    body: RecommendationRequest, principal: CurrentUser, request: Request
) -> RecommendationResponse:
    """Personalized picks blended from collaborative, content, graph and context sources (or cold start)."""
    return await recommender(request).recommend(principal, body)


@router.get("/content/{content_id}/similar", response_model=SimilarResponse)
async def similar(
    content_id: uuid.UUID,
    principal: CurrentUser,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    region: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$")] = None,
) -> SimilarResponse:
    """Titles like this one: co-viewed, sharing genres, cast or crew, or close in the embedding space."""
    return await recommender(request).similar(content_id, limit, region.upper() if region else None)


@router.post("/personalization/score", response_model=ScoreResponse)
async def personalization_score(body: ScoreRequest, principal: CurrentUser, request: Request) -> Response:
    """The user's affinity (0..1) for each title, with its components and the user's blend weight.

    Unknown ids score 0. Serialized directly: validating 500 entries again would double the cost."""
    scored = await recommender(request).score(principal, body.content_ids)
    return Response(orjson.dumps(scored), media_type="application/json")


@router.post("/events", response_model=EventBatchResult)
async def events(body: EventBatch, principal: CurrentUser, request: Request) -> EventBatchResult:
    """Viewing events from an app; resending an event id is harmless."""
    assert principal.user_id is not None
    return await record_api_events(runtime(request), principal.user_id, body)


@router.get("/profile", response_model=ProfileResponse)
async def user_profile(principal: CurrentUser, request: Request) -> ProfileResponse:
    """Genre and people affinities, interaction counts, cold-start state and the active LoRA adapter."""
    return await profile(runtime(request), principal)


@router.post("/embeddings", response_model=EmbeddingResponse)
async def embeddings(body: EmbeddingRequest, principal: CurrentUser, request: Request) -> EmbeddingResponse:
    """MiniLM embeddings (ONNX), optionally through your LoRA adapter ('personal' or an adapter id)."""
    return await inference.embed(runtime(request), principal, body)
