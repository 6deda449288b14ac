from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from media_gateway.catalog import repository as catalog
from media_gateway.core.admin import require_admin
from media_gateway.core.errors import ProblemError
from media_gateway.ingestion import repository
from media_gateway.ingestion.datasets import TMDB_ATTRIBUTION
from media_gateway.ingestion.demo import DEMO_NOTICE
from media_gateway.ingestion.resolution import repository as mappings
from media_gateway.ingestion.schemas import CatalogStats, IngestRequest, JobOut, MappingOut
from media_gateway.ingestion.service import IngestionJobs

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])


def _jobs(request: Request) -> IngestionJobs:
    jobs: IngestionJobs = request.app.state.ctx.extras["jobs"]
    return jobs


@router.post("/ingest", status_code=202, response_model=JobOut)
async def ingest(body: IngestRequest, request: Request) -> dict[str, Any]:
    return await _jobs(request).start_ingest(body.source, body.path)


@router.post("/enrichment/run", status_code=202, response_model=JobOut)
async def run_enrichment(request: Request) -> dict[str, Any]:
    return await _jobs(request).start_enrichment()


@router.get("/jobs", response_model=list[JobOut])
async def list_jobs(request: Request, limit: int = Query(20, ge=1, le=100)) -> list[dict[str, Any]]:
    async with request.app.state.ctx.engine.connect() as conn:
        return await repository.list_jobs(conn, limit)


@router.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(job_id: uuid.UUID, request: Request) -> dict[str, Any]:
    async with request.app.state.ctx.engine.connect() as conn:
        job = await repository.get_job(conn, job_id)
    if job is None:
        raise ProblemError(404, f"No job {job_id}.")
    return job


@router.get("/entity-mappings", response_model=list[MappingOut])
async def entity_mappings(
    request: Request,
    entity_id: uuid.UUID | None = None,
    id_type: str | None = Query(None, min_length=2, max_length=40),
    external_id: str | None = Query(None, min_length=1, max_length=200),
) -> list[dict[str, Any]]:
    if entity_id is None and not (id_type and external_id):
        raise ProblemError(422, "Give entity_id, or id_type and external_id.")
    async with request.app.state.ctx.engine.connect() as conn:
        return await mappings.list_mappings(
            conn, entity_id=entity_id, id_type=id_type, external_id=external_id
        )


@router.get("/catalog/stats", response_model=CatalogStats)
async def catalog_stats(request: Request) -> CatalogStats:
    ctx = request.app.state.ctx
    async with ctx.engine.connect() as conn:
        titles = await catalog.count_content(conn)
        offer_count = await catalog.count_offers(conn)
        by_platform = await catalog.offers_by_platform(conn)
        vectors = await catalog.count_vectors(conn, ctx.extras["pipeline"].embedder.model_id)
    return CatalogStats(
        titles=titles,
        offers=offer_count,
        titles_by_platform=by_platform,
        vectors=vectors,
        notice=f"{DEMO_NOTICE} {TMDB_ATTRIBUTION}" if _jobs(request).has_demo_data else None,
    )
