from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class RawBatch(BaseModel):
    """Records in one platform's own raw shape, as a source delivers them.

    `cursor` is where the source resumes after this batch has been committed (None: not resumable)."""

    source: str
    platform: str
    records: list[dict[str, Any]] = Field(max_length=10_000)
    cursor: str | None = None
