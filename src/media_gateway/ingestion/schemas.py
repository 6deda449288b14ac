from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class RawBatch(BaseModel):
    """Records in one platform's own raw shape, as a source delivers them.

    `cursor` is where the source resumes after this batch has been committed (None: not resumable)."""

    source: str
    platform: str
    records: list[dict[str, Any]] = Field(max_length=10_000)
    cursor: str | None = None


class IngestRequest(BaseModel):
    source: Literal["demo", "file", "aggregator"]
    # For `file`: a path inside `<data dir>/feeds`.
    path: str | None = Field(default=None, max_length=500)


class JobOut(BaseModel):
    id: uuid.UUID
    kind: str
    source: str | None
    status: str
    counts: dict[str, Any]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class MappingOut(BaseModel):
    id_type: str
    external_id: str
    entity_id: uuid.UUID
    confidence: float
    method: str
    updated_at: datetime


class CatalogStats(BaseModel):
    titles: int
    offers: int
    titles_by_platform: dict[str, int]
    vectors: int
    # Set while the catalog holds the generated demo data.
    notice: str | None = None
