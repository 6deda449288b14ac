"""Experiment administration (admin), the signed-in user's assignment and conversions, and the
admin training trigger."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from media_gateway.core.admin import require_admin
from media_gateway.core.security.dependencies import CurrentUser
from media_gateway.sona.routes import experiments, runtime
from media_gateway.sona.runtime import describe
from media_gateway.sona.schemas import (
    Assignment,
    ConversionIn,
    ConversionResult,
    Experiment,
    ExperimentCreate,
    ExperimentList,
    ExperimentMetrics,
    ExperimentStatus,
    StatusChange,
    TrainingReport,
)

router = APIRouter(prefix="/api/v1", tags=["experiments"])


# The project's one admin guard: the operator admin token, or a client token with the `admin` scope.
Admin = Annotated[None, Depends(require_admin)]


@router.post("/experiments", response_model=Experiment, status_code=201)
async def create_experiment(body: ExperimentCreate, _: Admin, request: Request) -> Experiment:
    """A new experiment, in draft."""
    return await experiments(request).create(body)


@router.get("/experiments", response_model=ExperimentList)
async def list_experiments(
    _: Admin, request: Request, status: Annotated[ExperimentStatus | None, Query()] = None
) -> ExperimentList:
    return ExperimentList(experiments=await experiments(request).list_all(status))


@router.get("/experiments/{experiment_id}", response_model=Experiment)
async def get_experiment(experiment_id: uuid.UUID, _: Admin, request: Request) -> Experiment:
    return await experiments(request).get(experiment_id)


@router.patch("/experiments/{experiment_id}", response_model=Experiment)
async def change_status(
    experiment_id: uuid.UUID, body: StatusChange, _: Admin, request: Request
) -> Experiment:
    """draft → running | completed; running ⇄ paused; running | paused → completed (final)."""
    return await experiments(request).change_status(experiment_id, body.status)


@router.get("/experiments/{experiment_id}/assignment", response_model=Assignment)
async def assignment(experiment_id: uuid.UUID, principal: CurrentUser, request: Request) -> Assignment:
    """Your variant: a stable hash of (experiment, you). While the experiment runs this is an exposure."""
    assert principal.user_id is not None
    return await experiments(request).assignment(experiment_id, principal.user_id)


@router.post("/experiments/{experiment_id}/conversions", response_model=ConversionResult, status_code=201)
async def conversion(
    experiment_id: uuid.UUID, body: ConversionIn, principal: CurrentUser, request: Request
) -> ConversionResult:
    assert principal.user_id is not None
    return await experiments(request).convert(experiment_id, principal.user_id, body)


@router.get("/experiments/{experiment_id}/metrics", response_model=ExperimentMetrics)
async def metrics(experiment_id: uuid.UUID, _: Admin, request: Request) -> ExperimentMetrics:
    """Per variant: exposures, converting users, rate, mean value, and the difference to the control
    with a two-proportion z-test."""
    return await experiments(request).metrics(experiment_id)


@router.post("/admin/sona/train", response_model=TrainingReport)
async def train(_: Admin, request: Request, all_adapters: Annotated[bool, Query()] = False) -> TrainingReport:
    """Run the training job now (EASE, graph edges, LoRA adapters of users with new events) and
    swap the new models in."""
    outcome = await runtime(request).train_now(train_all_adapters=all_adapters)
    return TrainingReport(**describe(outcome))
